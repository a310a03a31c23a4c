// Timer: a named loop.call_later / call_at / periodic call shared between
// processes (baton.v1.Timers). A timer fires an action on another Baton
// resource (set an event, put an item, set a future, submit a task) after a
// delay, at a time, or every period, until cancelled.
//
//   client.Timer("warmup").Schedule(
//       {.after = absl::Seconds(30), .action = baton::TimerAction::SetEvent("cache-warm")});
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/queue.h"
#include "baton/v1/timer.pb.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

// What a timer does when it fires.
class TimerAction {
 public:
  static TimerAction SetEvent(std::string event);
  static TimerAction ClearEvent(std::string event);
  static TimerAction Put(std::string queue, Item item);
  static TimerAction SetFuture(std::string future, std::string value);
  static TimerAction SubmitTask(std::string queue, std::string payload, uint32_t max_attempts = 1);

  TimerAction() = default;
  const v1::TimerAction& proto() const { return proto_; }

 private:
  v1::TimerAction proto_;
};

struct TimerSchedule {
  // Exactly one of `after` and `at` gives the first firing.
  std::optional<absl::Duration> after{};
  std::optional<absl::Time> at{};
  // Periodic: fire every this long (at least 1 ms). nullopt: once.
  std::optional<absl::Duration> every{};
  TimerAction action{};
  // Replace a timer of the same name instead of failing
  // (kFailedPrecondition).
  bool replace = false;
};

struct TimerCancelResult {
  bool cancelled = false;  // false: no such timer, or a one-shot already fired
  uint64_t fired = 0;      // times it had fired
};

class Timer {
 public:
  const std::string& name() const { return name_; }

  // Schedules the timer; returns the time until its first firing. Errors:
  // kInvalidArgument (no action, both or neither of after/at),
  // kFailedPrecondition (exists and not `replace`; kind mismatch).
  absl::StatusOr<absl::Duration> Schedule(const TimerSchedule& schedule) const;
  Call AsyncSchedule(const TimerSchedule& schedule, Callback<absl::Duration> done) const;
  // Cancels the timer (TimerHandle.cancel()).
  absl::StatusOr<TimerCancelResult> Cancel() const;

 private:
  friend class Client;
  Timer(std::shared_ptr<internal::Core> core, std::string name)
      : core_(std::move(core)), name_(std::move(name)) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
};

}  // namespace baton
