#include "baton/taken_task.h"

#include "acquire.h"
#include "core.h"
#include "proto_time.h"
#include "task_convert.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

TakenTask::TakenTask(TakenTask&& other) noexcept
    : core_(std::move(other.core_)),
      id_(std::move(other.id_)),
      payload_(std::move(other.payload_)),
      attempt_(other.attempt_) {
  other.core_.reset();
}

TakenTask& TakenTask::operator=(TakenTask&& other) noexcept {
  if (this != &other) {
    if (core_) (void)Fail(10, "the worker dropped the task without completing it");
    core_ = std::move(other.core_);
    other.core_.reset();
    id_ = std::move(other.id_);
    payload_ = std::move(other.payload_);
    attempt_ = other.attempt_;
  }
  return *this;
}

TakenTask::~TakenTask() {
  // 10 is ABORTED in gRPC's numbering: the attempt was abandoned.
  if (core_) (void)Fail(10, "the worker dropped the task without completing it");
}

absl::StatusOr<bool> TakenTask::Heartbeat() const {
  if (!core_) return absl::FailedPreconditionError("the task is finished");
  v1::TaskHeartbeatRequest request;
  request.set_task_id(id_);
  request.set_attempt(attempt_);
  absl::StatusOr<v1::TaskHeartbeatResponse> response = internal::CallNow<v1::TaskHeartbeatResponse>(
      core_, request, [](Core& core, auto... args) { core.tasks().async()->Heartbeat(args...); },
      BATON_ROUTE(task_heartbeat),
      [](Core& c, auto... args) { return c.tasks().Heartbeat(args...); });
  if (!response.ok()) return response.status();
  return response->cancelled();
}

Call TakenTask::AsyncHeartbeat(Callback<bool> done) const {
  if (!core_)
    return internal::FailNow<bool>(absl::FailedPreconditionError("the task is finished"), done);
  v1::TaskHeartbeatRequest request;
  request.set_task_id(id_);
  request.set_attempt(attempt_);
  return internal::StartUnary<bool, v1::TaskHeartbeatResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.tasks().async()->Heartbeat(args...); },
      BATON_ROUTE(task_heartbeat),
      internal::Converting<bool, v1::TaskHeartbeatResponse>(
          [](const v1::TaskHeartbeatResponse& r) { return r.cancelled(); }),
      std::move(done));
}

absl::StatusOr<TaskCompletion> TakenTask::Complete(std::string result) {
  return Finish(std::move(result), 0, "", false);
}

absl::StatusOr<TaskCompletion> TakenTask::Fail(int32_t code, std::string message, bool final) {
  return Finish(std::nullopt, code, std::move(message), final);
}

absl::StatusOr<TaskCompletion> TakenTask::Finish(std::optional<std::string> result, int32_t code,
                                                 std::string message, bool final) {
  if (!core_) return absl::FailedPreconditionError("the task is finished");
  // Finish also runs from the destructor, which may be on a callback thread:
  // CallNow then uses the synchronous unary API.
  v1::CompleteTaskRequest request;
  request.set_task_id(id_);
  request.set_attempt(attempt_);
  if (result.has_value()) {
    request.set_result(std::move(*result));
  } else {
    request.mutable_error()->set_code(code);
    request.mutable_error()->set_message(std::move(message));
    request.set_final(final);
  }
  absl::StatusOr<v1::CompleteTaskResponse> response = internal::CallNow<v1::CompleteTaskResponse>(
      core_, request, [](Core& core, auto... args) { core.tasks().async()->Complete(args...); },
      BATON_ROUTE(complete_task),
      [](Core& c, auto... args) { return c.tasks().Complete(args...); });
  absl::Status status = response.status();
  // Failed with FAILED_PRECONDITION: the attempt is no longer ours (lost,
  // done); nothing more to report either way.
  if (status.ok() || status.code() == absl::StatusCode::kFailedPrecondition) core_.reset();
  if (!status.ok()) return status;
  return TaskCompletion{.state = internal::FromProto(response->state()),
                        .cancelled = response->cancelled()};
}

}  // namespace baton
