#include "baton/taken_task.h"

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
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core_->RpcDeadline()));
  v1::TaskHeartbeatRequest request;
  request.set_task_id(id_);
  request.set_attempt(attempt_);
  v1::TaskHeartbeatResponse response;
  absl::Status status = FromGrpcStatus(core_->tasks().Heartbeat(&context, request, &response));
  if (!status.ok()) return status;
  return response.cancelled();
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
  // The synchronous API: Finish also runs from the destructor, which may be
  // on a gRPC callback thread.
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core_->RpcDeadline()));
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
  v1::CompleteTaskResponse response;
  absl::Status status = FromGrpcStatus(core_->tasks().Complete(&context, request, &response));
  // Failed with FAILED_PRECONDITION: the attempt is no longer ours (lost,
  // done); nothing more to report either way.
  if (status.ok() || status.code() == absl::StatusCode::kFailedPrecondition) core_.reset();
  if (!status.ok()) return status;
  return TaskCompletion{.state = internal::FromProto(response.state()),
                        .cancelled = response.cancelled()};
}

}  // namespace baton
