#include "baton/tasks.h"

#include "acquire.h"
#include "core.h"
#include "proto_time.h"
#include "task_convert.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

absl::StatusOr<std::string> Tasks::Submit(std::string payload, SubmitOptions options) const {
  return internal::Block<std::string>([&](Callback<std::string> done) {
    return AsyncSubmit(std::move(payload), std::move(options), std::move(done));
  });
}

Call Tasks::AsyncSubmit(std::string payload, SubmitOptions options,
                        Callback<std::string> done) const {
  v1::SubmitTaskRequest request;
  request.set_queue(queue_);
  request.set_payload(std::move(payload));
  if (options.delay > absl::ZeroDuration())
    *request.mutable_delay() = internal::ToProto(options.delay);
  if (options.at.has_value()) *request.mutable_at() = internal::ToProtoTime(*options.at);
  request.set_max_attempts(options.max_attempts);
  request.set_group(options.group);
  request.set_shielded(options.shielded);
  if (options.run_timeout.has_value()) {
    *request.mutable_run_timeout() = internal::ToProto(*options.run_timeout);
  }
  return internal::StartUnary<std::string, v1::SubmitTaskResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.tasks().async()->Submit(args...); },
      BATON_ROUTE(submit_task),
      internal::Converting<std::string, v1::SubmitTaskResponse>(
          [](const v1::SubmitTaskResponse& r) { return r.task_id(); }),
      std::move(done));
}

absl::StatusOr<TaskOutcome> Tasks::Await(const std::string& task_id, WaitOptions options) const {
  return internal::Block<TaskOutcome>([&](Callback<TaskOutcome> done) {
    return AsyncAwait(task_id, std::move(options), std::move(done));
  });
}

Call Tasks::AsyncAwait(const std::string& task_id, WaitOptions options,
                       Callback<TaskOutcome> done) const {
  v1::AwaitTaskRequest request;
  request.set_task_id(task_id);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.retries = 3;  // a read: safe to repeat
  return internal::StartUnary<TaskOutcome, v1::TaskOutcome>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.tasks().async()->Await(args...); },
      BATON_ROUTE(await_task),
      internal::Converting<TaskOutcome, v1::TaskOutcome>(
          [](const v1::TaskOutcome& r) { return internal::FromProto(r); }),
      std::move(done));
}

absl::StatusOr<bool> Tasks::Cancel(const std::string& task_id) const {
  v1::CancelTaskRequest request;
  request.set_task_id(task_id);
  return internal::Block<bool>([&](Callback<bool> done) {
    return internal::StartUnary<bool, v1::CancelTaskResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.tasks().async()->Cancel(args...); },
        BATON_ROUTE(cancel_task),
        internal::Converting<bool, v1::CancelTaskResponse>(
            [](const v1::CancelTaskResponse& r) { return r.cancelled(); }),
        std::move(done));
  });
}

absl::StatusOr<TasksWaitResult> Tasks::Wait(std::vector<std::string> task_ids, WaitMode mode,
                                            WaitOptions options) const {
  return internal::Block<TasksWaitResult>([&](Callback<TasksWaitResult> done) {
    return AsyncWait(std::move(task_ids), "", mode, std::move(options), std::move(done));
  });
}

absl::StatusOr<TasksWaitResult> Tasks::WaitGroup(const std::string& group, WaitMode mode,
                                                 WaitOptions options) const {
  return internal::Block<TasksWaitResult>([&](Callback<TasksWaitResult> done) {
    return AsyncWait({}, group, mode, std::move(options), std::move(done));
  });
}

Call Tasks::AsyncWait(std::vector<std::string> task_ids, std::string group, WaitMode mode,
                      WaitOptions options, Callback<TasksWaitResult> done) const {
  v1::WaitTasksRequest request;
  for (std::string& id : task_ids) request.add_task_ids(std::move(id));
  switch (mode) {
    case WaitMode::kAllCompleted:
      request.set_mode(v1::WAIT_MODE_ALL_COMPLETED);
      break;
    case WaitMode::kFirstCompleted:
      request.set_mode(v1::WAIT_MODE_FIRST_COMPLETED);
      break;
    case WaitMode::kFirstException:
      request.set_mode(v1::WAIT_MODE_FIRST_EXCEPTION);
      break;
  }
  if (!group.empty()) {
    request.set_queue(queue_);
    request.set_group(std::move(group));
  }
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.retries = 3;  // a read: safe to repeat
  return internal::StartUnary<TasksWaitResult, v1::WaitTasksResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.tasks().async()->Wait(args...); },
      BATON_ROUTE(wait_tasks),
      internal::Converting<TasksWaitResult, v1::WaitTasksResponse>(
          [](const v1::WaitTasksResponse& r) {
            TasksWaitResult out;
            for (const v1::TaskOutcome& o : r.done()) out.done.push_back(internal::FromProto(o));
            out.pending.assign(r.pending().begin(), r.pending().end());
            return out;
          }),
      std::move(done));
}

absl::StatusOr<TakenTask> Tasks::Take(TakeOptions options) const {
  return internal::Block<TakenTask>(
      [&](Callback<TakenTask> done) { return AsyncTake(std::move(options), std::move(done)); });
}

Call Tasks::AsyncTake(TakeOptions options, Callback<TakenTask> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.use_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::TakeTaskRequest request;
  request.set_queue(queue_);
  request.set_session_id(*session);
  if (options.lease.has_value()) *request.mutable_ttl() = internal::ToProto(*options.lease);
  request.set_request_id(options.request_id.empty() ? core_->NewRequestId() : options.request_id);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  internal::Grant<TakenTask, v1::TakeTaskResponse> grant{
      .accept = [core = core_](const v1::TakeTaskResponse& r) -> absl::StatusOr<TakenTask> {
        return TakenTask(core, r.task_id(), r.payload(), r.attempt());
      },
      // Gives the task back untried (CompleteTaskRequest.give_back): it is
      // taken again at once, the attempt not counted against max_attempts.
      .give_back =
          [core = core_](const v1::TakeTaskResponse& r, std::function<void()> then) {
            v1::CompleteTaskRequest complete;
            complete.set_task_id(r.task_id());
            complete.set_attempt(r.attempt());
            complete.set_give_back(true);
            internal::StartDetached<v1::CompleteTaskResponse>(
                core, std::move(complete),
                [](Core& core, auto... args) { core.tasks().async()->Complete(args...); },
                BATON_ROUTE(complete_task), [then = std::move(then)](absl::Status) { then(); });
          },
      .recover_on_unary = false,
  };
  return internal::StartAcquire<TakenTask, v1::TakeTaskResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.tasks().async()->Take(args...); }, BATON_ROUTE(take_task),
      std::move(grant), std::move(done));
}

}  // namespace baton
