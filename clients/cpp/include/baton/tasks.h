// Tasks: a named work queue of tasks, asyncio's create_task / Task.cancel /
// wait / TaskGroup shared between processes (baton.v1.Tasks). Submitters
// submit and await; workers Take (taken_task.h) and report back.
//
//   baton::Tasks thumbnails = client.Tasks("thumbnails");
//   auto id = thumbnails.Submit("42.png", {.max_attempts = 3});
//   auto outcome = thumbnails.Await(*id);          // result, error or cancelled
//
// A task is pending, running (taken by a worker whose session or heartbeat
// lease keeps it), or done. A worker that is lost loses the task, which is
// retried until max_attempts runs out. Tasks submitted with the same `group`
// are cancelled together when one of them fails, unless `shielded`.
//
// Every waiting call has an asynchronous form (Async*, see call.h).
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/taken_task.h"
#include "baton/wait_options.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

struct TaskError {
  int32_t code = 0;
  std::string message{};
};

struct TaskOutcome {
  std::string task_id{};
  TaskState state = TaskState::kUnspecified;
  std::string result{};              // kSucceeded
  std::optional<TaskError> error{};  // kFailed
  uint32_t attempts = 0;
};

struct SubmitOptions {
  // Pending only after this delay (call_later)...
  absl::Duration delay = absl::ZeroDuration();
  // ...or from this wall-clock time (call_at).
  std::optional<absl::Time> at{};
  // Attempts before the task fails for good; 0 means 1.
  uint32_t max_attempts = 1;
  std::string group{};
  bool shielded = false;
  // Longest an attempt may run, heartbeats or not.
  std::optional<absl::Duration> run_timeout{};
};

enum class WaitMode { kAllCompleted, kFirstCompleted, kFirstException };

struct TasksWaitResult {
  std::vector<TaskOutcome> done{};
  std::vector<std::string> pending{};
};

struct TakeOptions {
  // How long to wait for a task; zero: only if one is pending now.
  absl::Duration timeout = absl::InfiniteDuration();
  CancelToken cancel{};
  // The heartbeat lease: the task is lost unless Heartbeat or Complete comes
  // within it. Without one (and with use_session) the session alone keeps it.
  std::optional<absl::Duration> lease{};
  bool use_session = true;
  // Makes the Take safe to retry (task.proto): empty, a fresh one per call;
  // re-sent after a broken stream, asked again after a cancel to give back
  // the task it may have got.
  std::string request_id{};
};

class Tasks {
 public:
  const std::string& queue() const { return queue_; }

  // Submits a task; returns its id ("queue#17").
  absl::StatusOr<std::string> Submit(std::string payload, SubmitOptions options = {}) const;
  Call AsyncSubmit(std::string payload, SubmitOptions options, Callback<std::string> done) const;

  // Waits until the task is done; its outcome is data (result, error,
  // cancelled). Errors: kNotFound (no such task), kDeadlineExceeded, kCancelled.
  absl::StatusOr<TaskOutcome> Await(const std::string& task_id, WaitOptions options = {}) const;
  Call AsyncAwait(const std::string& task_id, WaitOptions options,
                  Callback<TaskOutcome> done) const;

  // Cancels a task: a pending one at once, a running one at its worker's
  // next Heartbeat or Complete. Returns false if it was already done.
  absl::StatusOr<bool> Cancel(const std::string& task_id) const;

  // asyncio.wait over tasks of this queue: returns when `mode` is met or the
  // timeout passes (then OK with what is done so far).
  absl::StatusOr<TasksWaitResult> Wait(std::vector<std::string> task_ids,
                                       WaitMode mode = WaitMode::kAllCompleted,
                                       WaitOptions options = {}) const;
  // The same over every task of `group` (a TaskGroup awaited as a whole).
  absl::StatusOr<TasksWaitResult> WaitGroup(const std::string& group,
                                            WaitMode mode = WaitMode::kAllCompleted,
                                            WaitOptions options = {}) const;
  Call AsyncWait(std::vector<std::string> task_ids, std::string group, WaitMode mode,
                 WaitOptions options, Callback<TasksWaitResult> done) const;

  // Worker side: takes the oldest pending task, waiting while there is none.
  // Errors: kDeadlineExceeded, kCancelled, kAborted (session ended).
  absl::StatusOr<TakenTask> Take(TakeOptions options = {}) const;
  // The asynchronous form. Cancellation: the server drops the wait; a task
  // whose reply raced with the cancel is delivered (giving it back would
  // count an attempt); dropping it fails the attempt (see TakenTask).
  Call AsyncTake(TakeOptions options, Callback<TakenTask> done) const;

 private:
  friend class Client;
  Tasks(std::shared_ptr<internal::Core> core, std::string queue)
      : core_(std::move(core)), queue_(std::move(queue)) {}

  std::shared_ptr<internal::Core> core_;
  std::string queue_;
};

}  // namespace baton
