// Future: a named asyncio.Future shared between processes (baton.v1.Futures):
// a single-assignment value that any number of clients can await.
//
//   client.Future("report/2026-11").SetResult("42 rows");         // producer
//   auto outcome = client.Future("report/2026-11").Await();       // anyone
//
// A future is pending until SetResult, SetException or Cancel makes it done;
// a done future cannot change again (kFailedPrecondition). An exception or a
// cancellation is data in the outcome, not an error of Await.
//
// Every call has an asynchronous form (Async*, see call.h).
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
#include "baton/wait_options.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

enum class FutureState { kPending, kResult, kException, kCancelled };

struct FutureOutcome {
  FutureState state = FutureState::kPending;
  std::string value{};          // kResult
  int32_t error_code = 0;       // kException
  std::string error_message{};  // kException
};

struct FutureCancelResult {
  bool cancelled = false;  // false: it was already done
  FutureState state = FutureState::kPending;
};

class Future {
 public:
  const std::string& name() const { return name_; }

  // Completes the future with `value` and wakes every awaiter; returns how
  // many. `retention`: how long the done future is kept (default: the
  // server's). Errors: kFailedPrecondition (already done), kInvalidArgument
  // (too large).
  absl::StatusOr<uint32_t> SetResult(std::string value,
                                     std::optional<absl::Duration> retention = std::nullopt) const;
  Call AsyncSetResult(std::string value, std::optional<absl::Duration> retention,
                      Callback<uint32_t> done) const;
  // Completes the future with an application error (code and message).
  absl::StatusOr<uint32_t> SetException(
      int32_t code, std::string message,
      std::optional<absl::Duration> retention = std::nullopt) const;
  // Cancels a pending future (awaiters see kCancelled).
  absl::StatusOr<FutureCancelResult> Cancel(
      std::optional<absl::Duration> retention = std::nullopt) const;

  // Waits until the future is done. Errors: kDeadlineExceeded (zero timeout:
  // still pending), kCancelled (this call), kAborted (bind_to_session and the
  // session ended), kUnavailable.
  absl::StatusOr<FutureOutcome> Await(WaitOptions options = {}) const;
  absl::StatusOr<FutureOutcome> Await(absl::Duration timeout) const;
  // The asynchronous form; a reply that raced with a cancel is delivered.
  Call AsyncAwait(WaitOptions options, Callback<FutureOutcome> done) const;

 private:
  friend class Client;
  Future(std::shared_ptr<internal::Core> core, std::string name)
      : core_(std::move(core)), name_(std::move(name)) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
};

}  // namespace baton
