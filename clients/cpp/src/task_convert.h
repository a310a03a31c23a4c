// Conversions of Tasks messages shared by tasks.cc and taken_task.cc. Pure.
#pragma once

#include "baton/tasks.h"
#include "baton/v1/task.pb.h"

namespace baton::internal {

inline TaskState FromProto(v1::TaskState state) {
  switch (state) {
    case v1::TASK_STATE_PENDING:
      return TaskState::kPending;
    case v1::TASK_STATE_RUNNING:
      return TaskState::kRunning;
    case v1::TASK_STATE_SUCCEEDED:
      return TaskState::kSucceeded;
    case v1::TASK_STATE_FAILED:
      return TaskState::kFailed;
    case v1::TASK_STATE_CANCELLED:
      return TaskState::kCancelled;
    default:
      return TaskState::kUnspecified;
  }
}

inline TaskOutcome FromProto(const v1::TaskOutcome& o) {
  TaskOutcome out;
  out.task_id = o.task_id();
  out.state = FromProto(o.state());
  out.result = o.result();
  if (o.has_error())
    out.error = TaskError{.code = o.error().code(), .message = o.error().message()};
  out.attempts = o.attempts();
  return out;
}

}  // namespace baton::internal
