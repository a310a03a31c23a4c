// Options shared by the calls that wait, and how a wait was granted.
// Plain data; designated initializers read well:
//
//   lock.Acquire({.timeout = absl::Seconds(2), .cancel = token});
#pragma once

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "baton/cancel_token.h"

namespace baton {

// How a wait ended successfully (baton.v1.GrantOutcome).
enum class GrantOutcome {
  kUnspecified,
  kImmediate,  // without waiting
  kAfterWait,  // after waiting in line
  kReplayed,   // a retry (same request_id) of a grant still held: the same grant
};

// For calls that wait without taking anything: Event::Wait, Barrier::Wait,
// Future::Await, Queue::Join, Tasks::Await and Tasks::Wait.
struct WaitOptions {
  // How long to wait. Infinite: until granted (or cancelled); zero: try once,
  // don't wait (fails with kDeadlineExceeded if not granted at once).
  absl::Duration timeout = absl::InfiniteDuration();
  // Cancel() from any thread ends the wait with kCancelled.
  CancelToken cancel{};
  // End the wait with kAborted if the client's session ends (where the rpc
  // takes a session_id: Events, Futures, Barriers).
  bool bind_to_session = true;
};

// For calls that take a holding: Lock::Acquire, Semaphore::Acquire.
struct AcquireOptions {
  // As WaitOptions::timeout.
  absl::Duration timeout = absl::InfiniteDuration();
  // As WaitOptions::cancel. A grant that races with the cancel is given back.
  CancelToken cancel{};
  // Also (or, with use_session = false, only) own the holding by a lease that
  // runs out this long after the grant unless refreshed. 1 ms to the server's
  // maximum (24 h by default).
  std::optional<absl::Duration> lease{};
  // Own the holding by the client's session (released when it ends).
  bool use_session = true;
  // Idempotency key (at most 128 bytes); empty: a fresh one per call. The
  // client retries an acquire whose connection failed with the same key, so a
  // grant whose reply was lost is recovered rather than leaked or doubled.
  std::string request_id{};
};

}  // namespace baton
