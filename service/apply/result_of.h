// Which result each command gets: ResultOf<Cmd> is the one type a reply to
// Cmd carries when it is OK, and TakeResult<Cmd> unpacks a Result into it.
//
// The RPC layer's Submit returns absl::StatusOr<ResultOf<Cmd>> (rpc/call.h),
// so a handler never picks an alternative of the variant by hand. Commands
// with nothing to say (Undeliver*, broadcasts, Tick ...) get Done.
//
// Adding a command: add a line below (it does not compile until you do).
// Adding a result type: add it to ResultValue (result.h) first.
#pragma once

#include <type_traits>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "service/apply/command.h"
#include "service/apply/result.h"

namespace baton::apply {

template <class Cmd>
struct ResultOfT;  // not defined: a command without a line below

#define BATON_RESULT_OF(Cmd, R) \
  template <>                   \
  struct ResultOfT<Cmd> {       \
    using type = R;             \
  }

// Locks, semaphores, conditions.
BATON_RESULT_OF(AcquirePermits, Granted);
BATON_RESULT_OF(ReleasePermits, Released);
BATON_RESULT_OF(RefreshPermits, Refreshed);
BATON_RESULT_OF(Undeliver, Done);
BATON_RESULT_OF(DeleteSemaphore, Deleted);
BATON_RESULT_OF(ConditionWait, Granted);  // the lock, re-acquired
BATON_RESULT_OF(Notify, Notified);
// Events.
BATON_RESULT_OF(SetEvent, EventOutcome);
BATON_RESULT_OF(ClearEvent, EventOutcome);
BATON_RESULT_OF(WaitEvent, EventOutcome);
BATON_RESULT_OF(WatchEvent, EventChange);  // one per change
BATON_RESULT_OF(UnwatchEvent, Done);
// Queues.
BATON_RESULT_OF(PutItems, PutDone);
BATON_RESULT_OF(GetItems, GotItems);
BATON_RESULT_OF(AckItems, Acked);
BATON_RESULT_OF(NackItems, Nacked);
BATON_RESULT_OF(JoinQueue, Passed);
BATON_RESULT_OF(PurgeQueue, Purged);
BATON_RESULT_OF(DeleteQueue, Deleted);
BATON_RESULT_OF(ConsumeQueue, GotItems);  // one per push
BATON_RESULT_OF(StopConsuming, Done);
BATON_RESULT_OF(UndeliverItems, Done);
BATON_RESULT_OF(UndeliverPut, Done);
// Futures and barriers.
BATON_RESULT_OF(CompleteFuture, FutureOutcome);
BATON_RESULT_OF(AwaitFuture, FutureOutcome);
BATON_RESULT_OF(BarrierWait, Passed);
BATON_RESULT_OF(AbortBarrier, BarrierAborted);
BATON_RESULT_OF(ResetBarrier, BarrierAborted);
// Timers.
BATON_RESULT_OF(ScheduleTimer, TimerScheduled);
BATON_RESULT_OF(CancelTimer, TimerCancelled);
// Tasks.
BATON_RESULT_OF(SubmitTask, TaskReport);
BATON_RESULT_OF(TakeTask, TakenTask);
BATON_RESULT_OF(UndeliverTask, Done);
BATON_RESULT_OF(HeartbeatTask, TaskHeartbeat);
BATON_RESULT_OF(CompleteTask, TaskCompleted);
BATON_RESULT_OF(AwaitTask, TaskReports);
BATON_RESULT_OF(CancelTask, TaskCancelled);
BATON_RESULT_OF(WaitTasks, TaskReports);
// Sessions.
BATON_RESULT_OF(OpenSession, SessionInfo);
BATON_RESULT_OF(KeepAlive, SessionInfo);
BATON_RESULT_OF(AttachStream, SessionInfo);
BATON_RESULT_OF(DetachStream, Done);
BATON_RESULT_OF(CloseSession, Done);
BATON_RESULT_OF(DescribeSession, SessionInfo);
BATON_RESULT_OF(SessionStarted, Done);
BATON_RESULT_OF(SessionEnded, Done);
// Inspection and lifecycle.
BATON_RESULT_OF(ListResources, ResourceList);
BATON_RESULT_OF(DescribeResource, ResourceInfo);
BATON_RESULT_OF(CancelWait, Done);  // the wait itself gets its own result
BATON_RESULT_OF(BeginShutdown, Done);
BATON_RESULT_OF(Tick, Done);
BATON_RESULT_OF(Recover, Done);

#undef BATON_RESULT_OF

template <class Cmd>
using ResultOf = typename ResultOfT<Cmd>::type;

namespace result_of_detail {

template <class T, class Variant>
struct InVariant;
template <class T, class... Ts>
struct InVariant<T, std::variant<Ts...>> : std::bool_constant<(std::is_same_v<T, Ts> || ...)> {};

// Every command has a result, and every result type is one the variant can
// carry (itself, or boxed).
template <class... Cmds>
constexpr bool AllMapped(std::variant<Cmds...>*) {
  return ((InVariant<ResultOf<Cmds>, ResultValue>::value ||
           InVariant<Boxed<ResultOf<Cmds>>, ResultValue>::value) &&
          ...);
}
static_assert(AllMapped(static_cast<CommandVariant*>(nullptr)),
              "a command's ResultOf is missing from ResultValue");

}  // namespace result_of_detail

// `r` unpacked as the result of a `Cmd`: its status if not OK, else its
// value. A value of another type (a bug in the apply layer) is INTERNAL,
// never a crash.
template <class Cmd>
absl::StatusOr<ResultOf<Cmd>> TakeResult(Result&& r) {
  using R = ResultOf<Cmd>;
  if (!r.ok()) return std::move(r.status);
  if constexpr (result_of_detail::InVariant<R, ResultValue>::value) {
    if (auto* v = std::get_if<R>(&r.value)) return std::move(*v);
  } else {
    if (auto* v = std::get_if<Boxed<R>>(&r.value)) return std::move(**v);
  }
  return absl::InternalError(absl::StrCat("a command got a result of the wrong type (alternative ",
                                          r.value.index(), "); this is a bug in batond"));
}

// The reply to `op`, the origin of command `c`, with `value`: the type of
// `value` is checked against ResultOf at compile time.
template <class Cmd>
Reply Answer(const Cmd& /*c*/, OpRef op, ResultOf<Cmd> value) {
  return Reply{op, Result::Ok(std::move(value))};
}

}  // namespace baton::apply
