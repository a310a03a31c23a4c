// Lock: a named asyncio.Lock shared between processes (baton.v1.Locks), and
// LockGuard, the RAII holding it grants.
//
//   baton::Lock lock = client.Lock("billing/nightly-migration");
//   {
//     absl::StatusOr<baton::LockGuard> held = lock.Acquire();
//     if (!held.ok()) return held.status();
//     storage.Write(data, /*fence=*/held->fence());
//   }  // released here
//
// Waiters are served FIFO. Every grant carries a fencing token strictly
// greater than any token handed out before, so storage can reject a stale
// holder. A holding is owned by the client's session (released by the server
// if the session is lost) and/or by a lease (AcquireOptions::lease).
//
// Thread safety: a Lock is a cheap, copyable handle; its methods may be called
// from any thread. A LockGuard is a move-only value: use it from one thread at
// a time (it may be moved to, and destroyed on, any thread).
#pragma once

#include <cstdint>
#include <functional>
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
class LostSignal;
class LeaseWatch;
}  // namespace internal

class Condition;

class LockGuard {
 public:
  // Holds nothing.
  LockGuard() = default;
  LockGuard(LockGuard&& other) noexcept;
  // Releases what this guard held, then takes over `other`'s holding.
  LockGuard& operator=(LockGuard&& other) noexcept;
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;
  // Releases the lock if still held (errors are ignored: the session or
  // lease releases it anyway). Blocks for the Release RPC; safe on any thread,
  // also in a completion callback.
  ~LockGuard();

  // True while this guard holds the lock, as far as the client knows: not
  // released, and not lost with the session (see Client::session_lost).
  bool holds() const;
  explicit operator bool() const { return holds(); }

  // The fencing token of the holding (changes after Condition::Wait, which
  // re-acquires). Pass it to the storage the lock protects.
  uint64_t fence() const { return token_; }
  const std::string& name() const { return name_; }
  // The owning session; 0 for a lease-only holding.
  uint64_t session_id() const { return session_id_; }
  GrantOutcome outcome() const { return outcome_; }
  // Lease left at the time of the grant (or last Refresh); nullopt without a
  // lease.
  std::optional<absl::Duration> expires_in() const { return expires_in_; }

  // Releases the lock now. OK if this guard holds nothing. kAborted if the
  // session was lost (the server released it already), kFailedPrecondition
  // if the server says it is not held with this token (e.g. the lease ran
  // out). Either way the guard holds nothing afterwards.
  absl::Status Release();
  // Extends the lease to `ttl` from now; returns the time left.
  absl::StatusOr<absl::Duration> Refresh(absl::Duration ttl);

  // The lost signal: `callback` runs once when the holding is known to be
  // gone without a Release (its session was lost, or the server answered a
  // Refresh or Release NOT_FOUND / FAILED_PRECONDITION), with the reason; on
  // the client thread that noticed (or at once on this thread if lost
  // already). It must not block. Survives moves of the guard; a guard that
  // holds nothing never fires. Any thread.
  void OnLost(std::function<void(absl::Status why)> callback) const;
  // True once the lost signal fired (a lease-only holding: also once its
  // lease, as last known, has run out).
  bool lost() const;

 private:
  friend class Lock;
  friend class Condition;
  LockGuard(std::shared_ptr<internal::Core> core, std::string name, uint64_t token,
            uint64_t session_id, std::optional<absl::Duration> lease, GrantOutcome outcome,
            std::optional<absl::Duration> expires_in);
  // Gives the lock back without blocking; `then` runs once it is released.
  void ReleaseAsync(std::function<void(absl::Status)> then);
  // Lease-only: fires the lost signal when the lease runs out.
  void WatchLease();

  std::shared_ptr<internal::Core> core_;  // null: holds nothing
  std::string name_;
  uint64_t token_ = 0;
  uint64_t session_id_ = 0;
  std::optional<absl::Duration> lease_;  // the lease TTL asked for
  GrantOutcome outcome_ = GrantOutcome::kUnspecified;
  std::optional<absl::Duration> expires_in_;
  absl::Time expires_at_ = absl::InfiniteFuture();  // lease-only holdings
  std::shared_ptr<internal::LostSignal> lost_;
  std::shared_ptr<internal::LeaseWatch> lease_watch_;  // lease-only holdings
};

class Lock {
 public:
  const std::string& name() const { return name_; }

  // Acquires the lock, waiting in line (see AcquireOptions). Errors:
  // kDeadlineExceeded (not granted within the timeout; with a zero timeout:
  // the lock is held), kCancelled, kAborted (the session ended while
  // waiting), kFailedPrecondition (the name is another kind), kInvalidArgument,
  // kResourceExhausted, kUnavailable.
  absl::StatusOr<LockGuard> Acquire(AcquireOptions options = {}) const;
  absl::StatusOr<LockGuard> Acquire(absl::Duration timeout) const;
  // Acquires the lock only if it is free now; kDeadlineExceeded if it is held.
  absl::StatusOr<LockGuard> TryAcquire() const;

  // The asynchronous form of Acquire. Result: the guard. Cancellation
  // (Call::Cancel or options.cancel): the server drops the wait; a grant that
  // raced with the cancel (its reply arrived after Cancel()) is released
  // before `done` gets kCancelled, so a cancelled acquire never leaves the
  // lock held. Timeout: kDeadlineExceeded. Shutdown of the server:
  // kUnavailable.
  Call AsyncAcquire(AcquireOptions options, Callback<LockGuard> done) const;

 private:
  friend class Client;
  Lock(std::shared_ptr<internal::Core> core, std::string name)
      : core_(std::move(core)), name_(std::move(name)) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
};

}  // namespace baton
