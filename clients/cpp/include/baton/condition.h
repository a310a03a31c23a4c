// Condition: a named asyncio.Condition bound to a Baton lock
// (baton.v1.Conditions).
//
//   baton::Lock orders = client.Lock("orders");
//   baton::Condition non_empty = client.Condition("orders", "non-empty");
//   auto held = orders.Acquire();
//   while (!HaveOrders()) non_empty.Wait(*held);   // releases, waits, re-acquires
//   ...
//   non_empty.Notify(*held);                        // elsewhere, holding the lock
//
// Wait requires the caller to hold the lock (its LockGuard): it atomically
// releases it, waits for a notify (or the timeout), and re-acquires it before
// it returns OK; the guard then carries the new fencing token. If Wait fails
// (cancelled, session ended, the deadline passed), the caller no longer holds
// the lock and the guard holds nothing.
//
// Thread safety: a cheap, copyable handle; any thread. The guard passed to
// Wait must not be used by another thread during the call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/cancel_token.h"
#include "baton/lock.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

enum class ConditionOutcome {
  kNotified,  // a Notify woke the wait
  kTimedOut,  // the timeout ended the wait for a notify (the lock is held again)
};

struct ConditionWaitOptions {
  // Longest wait for a notify; when it runs out the lock is re-acquired and
  // Wait returns OK with kTimedOut. The re-acquire is not bounded by it.
  absl::Duration timeout = absl::InfiniteDuration();
  // Bounds the whole call (wait and re-acquire): when it passes, Wait fails
  // with kDeadlineExceeded and the lock is not held.
  absl::Duration deadline = absl::InfiniteDuration();
  CancelToken cancel{};
};

class Condition {
 public:
  const std::string& lock_name() const { return lock_; }
  const std::string& name() const { return condition_; }

  // Releases `held`, waits for a notify, re-acquires; `held` then has the new
  // fence. REQUIRES: `held` is a guard of this condition's lock.
  // Errors: kFailedPrecondition (the lock is not held with this guard's token),
  // kCancelled, kDeadlineExceeded (options.deadline), kAborted (session
  // ended), kInvalidArgument, kUnavailable; after an error `held` holds
  // nothing.
  absl::StatusOr<ConditionOutcome> Wait(LockGuard& held, ConditionWaitOptions options = {}) const;
  // Waits until `predicate()` is true (asyncio's wait_for), checking it with
  // the lock held before each wait. kDeadlineExceeded if options.timeout
  // passes first (the lock is still held then).
  absl::Status WaitUntil(LockGuard& held, const std::function<bool()>& predicate,
                         ConditionWaitOptions options = {}) const;
  // The asynchronous form of Wait; `*held` is updated before `done` runs.
  // REQUIRES: `*held` outlives the call and is not touched until `done`.
  // Cancellation: the server ends the wait and the lock is not held; a reply
  // that raced with the cancel is delivered as it is (the lock held again).
  Call AsyncWait(LockGuard* held, ConditionWaitOptions options,
                 Callback<ConditionOutcome> done) const;

  // Wakes up to `n` waiters, oldest first. The caller must hold the lock
  // (kFailedPrecondition otherwise). Returns how many were woken.
  absl::StatusOr<uint32_t> Notify(const LockGuard& held, uint32_t n = 1) const;
  // Wakes every waiter.
  absl::StatusOr<uint32_t> NotifyAll(const LockGuard& held) const;

 private:
  friend class Client;
  Condition(std::shared_ptr<internal::Core> core, std::string lock, std::string condition)
      : core_(std::move(core)), lock_(std::move(lock)), condition_(std::move(condition)) {}
  absl::StatusOr<uint32_t> DoNotify(const LockGuard& held, uint32_t n, bool all) const;

  std::shared_ptr<internal::Core> core_;
  std::string lock_;
  std::string condition_;
};

}  // namespace baton
