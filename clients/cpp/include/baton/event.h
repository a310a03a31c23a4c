// Event: a named asyncio.Event shared between processes (baton.v1.Events): a
// flag, initially clear. Wait returns once it is set; Set wakes every waiter;
// Clear makes later waiters wait again. Watch streams its changes.
//
//   baton::Event warm = client.Event("cache-warm");
//   warm.Wait(absl::Seconds(30));      // in one process
//   warm.Set();                        // in another
//
// Every call has an asynchronous form (Async*, see call.h).
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/stream.h"
#include "baton/wait_options.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

struct EventSetResult {
  bool was_set = false;  // the state before the call
  uint32_t woken = 0;    // waiters released
};

class Event {
 public:
  const std::string& name() const { return name_; }

  // Sets the flag and wakes every waiter. Idempotent.
  absl::StatusOr<EventSetResult> Set() const;
  Call AsyncSet(Callback<EventSetResult> done) const;
  // Clears the flag; returns whether it was set. Idempotent.
  absl::StatusOr<bool> Clear() const;
  Call AsyncClear(Callback<bool> done) const;
  // Whether the flag is set now (a Wait that does not wait).
  absl::StatusOr<bool> IsSet() const;

  // Returns once the flag is set (at once if it is). Errors:
  // kDeadlineExceeded (timeout; with a zero timeout: the event is clear),
  // kCancelled, kAborted (bind_to_session and the session ended),
  // kFailedPrecondition (the name is another kind), kUnavailable.
  absl::StatusOr<GrantOutcome> Wait(WaitOptions options = {}) const;
  absl::StatusOr<GrantOutcome> Wait(absl::Duration timeout) const;
  // The asynchronous form. Cancellation: the server drops the wait; a reply
  // that raced with the cancel is delivered as it is (the event was set).
  Call AsyncWait(WaitOptions options, Callback<GrantOutcome> done) const;

  // Streams the event's state: first the current state, then every change
  // (a slow reader sees the latest state rather than every intermediate one).
  // `on_change(is_set, sequence)` runs per change, `on_end` once at the end
  // (kCancelled after Stream::Cancel or `cancel`, kUnavailable on shutdown).
  Stream Watch(std::function<void(bool is_set, uint64_t sequence)> on_change,
               std::function<void(absl::Status)> on_end, CancelToken cancel = {}) const;

 private:
  friend class Client;
  Event(std::shared_ptr<internal::Core> core, std::string name)
      : core_(std::move(core)), name_(std::move(name)) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
};

}  // namespace baton
