// TakenTask: a task a worker took from a work queue (Tasks::Take), with the
// calls that report on it: Heartbeat, Complete, Fail.
//
//   auto task = client.Tasks("thumbnails").Take({.lease = absl::Seconds(30)});
//   if (task.ok()) {
//     std::string out = Resize(task->payload());
//     task->Complete(out);                 // or task->Fail(code, message)
//   }
//
// The task runs under the worker's session and/or a lease that Heartbeat
// renews. Cancellation is cooperative: Heartbeat (and Complete) tell the
// worker that the task was cancelled; it should stop and Complete it. A
// TakenTask destroyed without Complete or Fail fails its attempt (not for
// good: it is retried while attempts remain), so a worker that gives up on a
// task does not leave it waiting for its lease.
//
// Thread safety: a move-only value: one thread at a time (it may be moved to,
// and destroyed on, any thread).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "baton/call.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

enum class TaskState { kUnspecified, kPending, kRunning, kSucceeded, kFailed, kCancelled };

struct TaskCompletion {
  TaskState state = TaskState::kUnspecified;
  // The task had been cancelled: its outcome is "cancelled".
  bool cancelled = false;
};

class TakenTask {
 public:
  TakenTask() = default;
  TakenTask(TakenTask&& other) noexcept;
  TakenTask& operator=(TakenTask&& other) noexcept;
  TakenTask(const TakenTask&) = delete;
  TakenTask& operator=(const TakenTask&) = delete;
  // Fails the attempt (retryable) unless it was completed or failed.
  ~TakenTask();

  // "queue#17": pass to Tasks::Await / Cancel.
  const std::string& id() const { return id_; }
  const std::string& payload() const { return payload_; }
  // 1 for the first attempt.
  uint32_t attempt() const { return attempt_; }
  // True until Complete or Fail succeeded.
  bool running() const { return core_ != nullptr; }

  // Renews the lease; returns true if the task was cancelled (stop, then
  // Complete). kFailedPrecondition: the attempt was lost (retried elsewhere)
  // or the task is done.
  absl::StatusOr<bool> Heartbeat() const;
  Call AsyncHeartbeat(Callback<bool> done) const;
  // Finishes the task with a result.
  absl::StatusOr<TaskCompletion> Complete(std::string result);
  // Fails the attempt with an application error; retried while attempts
  // remain, unless `final`.
  absl::StatusOr<TaskCompletion> Fail(int32_t code, std::string message, bool final = false);

 private:
  friend class Tasks;
  TakenTask(std::shared_ptr<internal::Core> core, std::string id, std::string payload,
            uint32_t attempt)
      : core_(std::move(core)),
        id_(std::move(id)),
        payload_(std::move(payload)),
        attempt_(attempt) {}
  absl::StatusOr<TaskCompletion> Finish(std::optional<std::string> result, int32_t code,
                                        std::string message, bool final);

  std::shared_ptr<internal::Core> core_;  // null: finished (or empty)
  std::string id_;
  std::string payload_;
  uint32_t attempt_ = 0;
};

}  // namespace baton
