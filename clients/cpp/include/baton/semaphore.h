// Semaphore: a named asyncio.BoundedSemaphore with weighted acquire, shared
// between processes (baton.v1.Semaphores), and SemaphoreGuard, the RAII
// holding of permits it grants.
//
//   baton::Semaphore api = client.Semaphore("payment-api", /*capacity=*/3);
//   {
//     auto permits = api.Acquire(2);   // absl::StatusOr<SemaphoreGuard>
//     ...
//   }  // both permits returned here
//
// The capacity is declared by the first user and cannot change while the
// semaphore exists. Waiters are served strictly FIFO: a large request at the
// head of the line is not starved by small ones behind it.
//
// Thread safety: a Semaphore is a cheap, copyable handle usable from any
// thread. A SemaphoreGuard is a move-only value: one thread at a time (it may
// be moved to, and destroyed on, any thread).
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

class SemaphoreGuard {
 public:
  SemaphoreGuard() = default;
  SemaphoreGuard(SemaphoreGuard&& other) noexcept;
  SemaphoreGuard& operator=(SemaphoreGuard&& other) noexcept;
  SemaphoreGuard(const SemaphoreGuard&) = delete;
  SemaphoreGuard& operator=(const SemaphoreGuard&) = delete;
  // Returns the permits still held (errors ignored). Blocks for the RPC; safe
  // on any thread, also in a completion callback.
  ~SemaphoreGuard();

  // True while this guard holds permits (not released, session not lost).
  bool holds() const;
  explicit operator bool() const { return holds(); }

  // Identifies the holding; strictly increasing across grants.
  uint64_t token() const { return token_; }
  const std::string& name() const { return name_; }
  // Permits held now.
  int64_t count() const { return count_; }
  // Permits that were still free right after the grant.
  int64_t available_at_grant() const { return available_at_grant_; }
  uint64_t session_id() const { return session_id_; }
  GrantOutcome outcome() const { return outcome_; }

  // Returns every permit held. Errors as LockGuard::Release.
  absl::Status Release();
  // Returns `count` of the permits held (1..count()); the rest stay held.
  // Returns the permits free on the semaphore afterwards.
  absl::StatusOr<int64_t> Release(int64_t count);
  // Extends the holding's lease to `ttl` from now; returns the time left.
  absl::StatusOr<absl::Duration> Refresh(absl::Duration ttl);

  // The lost signal, as LockGuard::OnLost / lost().
  void OnLost(std::function<void(absl::Status why)> callback) const;
  bool lost() const;

 private:
  friend class Semaphore;
  SemaphoreGuard(std::shared_ptr<internal::Core> core, std::string name, uint64_t token,
                 int64_t count, int64_t available, uint64_t session_id, GrantOutcome outcome);
  void ReleaseAsync(std::function<void(absl::Status)> then);
  // Lease-only: fires the lost signal when the lease, `expires_in` from
  // now, runs out.
  void WatchLease(std::optional<absl::Duration> expires_in);

  std::shared_ptr<internal::Core> core_;  // null: holds nothing
  std::string name_;
  uint64_t token_ = 0;
  int64_t count_ = 0;
  int64_t available_at_grant_ = 0;
  uint64_t session_id_ = 0;
  GrantOutcome outcome_ = GrantOutcome::kUnspecified;
  std::shared_ptr<internal::LostSignal> lost_;
  std::shared_ptr<internal::LeaseWatch> lease_watch_;  // lease-only holdings
};

class Semaphore {
 public:
  const std::string& name() const { return name_; }
  // The capacity this handle declares (0: as declared by the first user).
  int64_t capacity() const { return capacity_; }

  // Acquires `count` permits (1..capacity), waiting in line while too few are
  // free. Errors as Lock::Acquire, plus kInvalidArgument for a count outside
  // 1..capacity and kFailedPrecondition for a capacity that differs from the
  // declared one (or none given for a semaphore that does not exist).
  absl::StatusOr<SemaphoreGuard> Acquire(int64_t count = 1, AcquireOptions options = {}) const;
  // Acquires only if `count` permits are free now; kDeadlineExceeded if not.
  absl::StatusOr<SemaphoreGuard> TryAcquire(int64_t count = 1) const;
  // The asynchronous form; cancellation as Lock::AsyncAcquire (a grant that
  // raced with the cancel is returned before `done` gets kCancelled).
  Call AsyncAcquire(int64_t count, AcquireOptions options, Callback<SemaphoreGuard> done) const;

  // Ends the semaphore's declaration (its capacity lasts while idle until
  // then), so the name may be declared anew. Returns false if there was no
  // such semaphore; kFailedPrecondition while permits are held.
  absl::StatusOr<bool> Delete() const;

 private:
  friend class Client;
  Semaphore(std::shared_ptr<internal::Core> core, std::string name, int64_t capacity)
      : core_(std::move(core)), name_(std::move(name)), capacity_(capacity) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
  int64_t capacity_ = 0;
};

}  // namespace baton
