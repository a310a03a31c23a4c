// Handlers of baton.v1.Timers: a request becomes a ScheduleTimer command
// carrying the action as a ready-made command for the target resource.
#include <chrono>

#include "absl/strings/str_cat.h"
#include "baton/v1/stream.pb.h"
#include "baton/v1/timer.grpc.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using ScheduleCall = Op<v1::ScheduleTimerRequest, v1::ScheduleTimerResponse>;
using CancelCall = Op<v1::CancelTimerRequest, v1::CancelTimerResponse>;

constexpr Duration kMaxTimerDelay = 366LL * 24 * 3600 * kSecond;

// The action as a command, and the name of the resource it acts on.
absl::StatusOr<std::pair<std::string, apply::Command>> Action(const Env& env,
                                                              const v1::TimerAction& a) {
  switch (a.action_case()) {
    case v1::TimerAction::kSetEvent: {
      if (auto s = ValidateName(a.set_event().name(), "action.set_event.name"); !s.ok()) return s;
      return std::pair<std::string, apply::Command>{a.set_event().name(),
                                                    apply::SetEvent{a.set_event().name()}};
    }
    case v1::TimerAction::kClearEvent: {
      const std::string& name = a.clear_event().name();
      if (auto s = ValidateName(name, "action.clear_event.name"); !s.ok()) return s;
      return std::pair<std::string, apply::Command>{name, apply::ClearEvent{name}};
    }
    case v1::TimerAction::kPut: {
      const v1::PutAction& p = a.put();
      if (auto s = ValidateName(p.queue(), "action.put.queue"); !s.ok()) return s;
      if (!p.item().data().empty() && !p.item().text().empty()) {
        return absl::InvalidArgumentError("action.put.item has both data and text; give one");
      }
      apply::PutItems put;
      put.name = p.queue();
      apply::NewQueueItem item;
      item.data = p.item().data().empty() ? p.item().text() : p.item().data();
      if (item.data.size() > env.limits.max_item_bytes) {
        return absl::InvalidArgumentError(absl::StrCat("action.put.item is ", item.data.size(),
                                                       " bytes; the limit is ",
                                                       env.limits.max_item_bytes));
      }
      item.priority = p.item().priority();
      put.items.push_back(std::move(item));
      put.deadline = kForever;  // wait for room rather than drop the item
      return std::pair<std::string, apply::Command>{p.queue(), std::move(put)};
    }
    case v1::TimerAction::kSetFuture: {
      const v1::SetFutureAction& f = a.set_future();
      if (auto s = ValidateName(f.name(), "action.set_future.name"); !s.ok()) return s;
      if (!f.value().empty() && !f.text().empty()) {
        return absl::InvalidArgumentError("action.set_future has both value and text; give one");
      }
      apply::CompleteFuture c;
      c.name = f.name();
      c.value.state = primitives::FutureState::kResult;
      c.value.value = f.value().empty() ? f.text() : f.value();
      if (c.value.value.size() > env.limits.max_item_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("action.set_future value is ", c.value.value.size(),
                         " bytes; the limit is ", env.limits.max_item_bytes));
      }
      return std::pair<std::string, apply::Command>{f.name(), std::move(c)};
    }
    case v1::TimerAction::kSubmitTask: {
      const v1::SubmitTaskAction& t = a.submit_task();
      if (auto s = ValidateName(t.queue(), "action.submit_task.queue"); !s.ok()) return s;
      if (!t.payload().empty() && !t.text().empty()) {
        return absl::InvalidArgumentError("action.submit_task has both payload and text");
      }
      apply::SubmitTask c;
      c.queue = t.queue();
      c.payload = t.payload().empty() ? t.text() : t.payload();
      if (c.payload.size() > env.limits.max_item_bytes) {
        return absl::InvalidArgumentError("action.submit_task payload is over --max_item_bytes");
      }
      c.max_attempts = std::min(t.max_attempts(), 1000u);
      return std::pair<std::string, apply::Command>{t.queue(), std::move(c)};
    }
    case v1::TimerAction::ACTION_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "action is missing: give one of set_event, clear_event, put, set_future, submit_task");
}

runtime::Task<void> Schedule(Env& env, ScheduleCall& call) {
  const auto& req = call.request;
  apply::ScheduleTimer c;
  absl::Status bad = ValidateName(req.name());
  if (bad.ok() && req.has_after() == req.has_at()) {
    bad = absl::InvalidArgumentError("give exactly one of after (a delay) and at (a time)");
  }
  if (!bad.ok()) co_return co_await call.Fail(bad);
  auto action = Action(env, req.action());
  if (!action.ok()) co_return co_await call.Fail(action.status());
  Time now = call.Now();
  if (req.has_after()) {
    auto after = ToMicros(req.after(), "after", kMaxTimerDelay, /*allow_zero=*/true);
    if (!after.ok()) co_return co_await call.Fail(after.status());
    c.due = now + *after;
  } else {
    auto in = DelayUntil(req.at(), "at", kMaxTimerDelay);
    if (!in.ok()) co_return co_await call.Fail(in.status());
    c.due = now + *in;
  }
  if (req.has_every()) {
    auto every = ToMicros(req.every(), "every", kMaxTimerDelay, /*allow_zero=*/true);
    if (!every.ok()) co_return co_await call.Fail(every.status());
    if (*every != 0 && *every < kMillisecond) {
      co_return co_await call.Fail(absl::InvalidArgumentError("every must be at least 1ms"));
    }
    c.every = *every;
  }
  c.name = req.name();
  c.replace = req.replace();
  c.target = action->first;
  // The action acts for whoever scheduled it: what it creates counts
  // against that principal's names limit.
  c.action = std::make_shared<const apply::Command>(call.Signed(std::move(action->second)));
  uint32_t target = env.cluster->ShardOfName(c.name);
  auto& cmd = c;
  auto r = co_await call.Submit(target, cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::ScheduleTimerResponse resp;
  ToProto(r->due_in, resp.mutable_due_in());
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Cancel(Env& env, CancelCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::CancelTimer cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::CancelTimerResponse resp;
  resp.set_cancelled(r->cancelled);
  resp.set_fired(r->fired);
  co_await call.Reply(std::move(resp));
}

}  // namespace

void ListenTimers(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* t = &svc.timers;
  Listen(env, shard, out, "Schedule", t, &Schedule, v1::Operation::kScheduleTimer);
  Listen(env, shard, out, "Cancel", t, &Cancel, v1::Operation::kCancelTimer);
}

}  // namespace baton::rpc
