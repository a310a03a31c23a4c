#include "baton/timer.h"

#include "core.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

TimerAction TimerAction::SetEvent(std::string event) {
  TimerAction a;
  a.proto_.mutable_set_event()->set_name(std::move(event));
  return a;
}

TimerAction TimerAction::ClearEvent(std::string event) {
  TimerAction a;
  a.proto_.mutable_clear_event()->set_name(std::move(event));
  return a;
}

TimerAction TimerAction::Put(std::string queue, Item item) {
  TimerAction a;
  v1::PutAction* put = a.proto_.mutable_put();
  put->set_queue(std::move(queue));
  put->mutable_item()->set_data(std::move(item.data));
  put->mutable_item()->set_priority(item.priority);
  if (item.delay > absl::ZeroDuration()) {
    *put->mutable_item()->mutable_delay() = internal::ToProto(item.delay);
  }
  return a;
}

TimerAction TimerAction::SetFuture(std::string future, std::string value) {
  TimerAction a;
  a.proto_.mutable_set_future()->set_name(std::move(future));
  a.proto_.mutable_set_future()->set_value(std::move(value));
  return a;
}

TimerAction TimerAction::SubmitTask(std::string queue, std::string payload, uint32_t max_attempts) {
  TimerAction a;
  v1::SubmitTaskAction* submit = a.proto_.mutable_submit_task();
  submit->set_queue(std::move(queue));
  submit->set_payload(std::move(payload));
  submit->set_max_attempts(max_attempts);
  return a;
}

absl::StatusOr<absl::Duration> Timer::Schedule(const TimerSchedule& schedule) const {
  return internal::Block<absl::Duration>(
      [&](Callback<absl::Duration> done) { return AsyncSchedule(schedule, std::move(done)); });
}

Call Timer::AsyncSchedule(const TimerSchedule& schedule, Callback<absl::Duration> done) const {
  v1::ScheduleTimerRequest request;
  request.set_name(name_);
  if (schedule.after.has_value()) *request.mutable_after() = internal::ToProto(*schedule.after);
  if (schedule.at.has_value()) *request.mutable_at() = internal::ToProtoTime(*schedule.at);
  if (schedule.every.has_value()) *request.mutable_every() = internal::ToProto(*schedule.every);
  if (schedule.action.proto().action_case() != v1::TimerAction::ACTION_NOT_SET) {
    *request.mutable_action() = schedule.action.proto();
  }
  request.set_replace(schedule.replace);
  return internal::StartUnary<absl::Duration, v1::ScheduleTimerResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.timers().async()->Schedule(args...); },
      BATON_ROUTE(schedule_timer),
      internal::Converting<absl::Duration, v1::ScheduleTimerResponse>(
          [](const v1::ScheduleTimerResponse& r) { return internal::FromProto(r.due_in()); }),
      std::move(done));
}

absl::StatusOr<TimerCancelResult> Timer::Cancel() const {
  v1::CancelTimerRequest request;
  request.set_name(name_);
  return internal::Block<TimerCancelResult>([&](Callback<TimerCancelResult> done) {
    return internal::StartUnary<TimerCancelResult, v1::CancelTimerResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.timers().async()->Cancel(args...); },
        BATON_ROUTE(cancel_timer),
        internal::Converting<TimerCancelResult, v1::CancelTimerResponse>(
            [](const v1::CancelTimerResponse& r) {
              return TimerCancelResult{.cancelled = r.cancelled(), .fired = r.fired()};
            }),
        std::move(done));
  });
}

}  // namespace baton
