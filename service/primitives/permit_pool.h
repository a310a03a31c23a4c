// PermitPool is the state of a lock or a semaphore: a fixed number of
// permits, the holdings that took them, and the line of waiters.
//
// A Lock is a PermitPool of capacity 1 whose waiters each want 1 permit.
// Grants are strictly FIFO without barging: a request is granted at once only
// if nobody waits ahead of it, and a large request at the head of the line
// holds back small ones behind it until it fits.
//
// Invariants: used() == sum of holdings' counts <= capacity(); holdings are
// keyed by their token. Pure state: no clock, no I/O. Used only on its
// shard's loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/status/statusor.h"
#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

class PermitPool {
 public:
  explicit PermitPool(int64_t capacity) : capacity_(capacity) {}

  int64_t capacity() const { return capacity_; }
  int64_t available() const { return capacity_ - used_; }
  const absl::btree_map<uint64_t, Holding>& holdings() const { return holdings_; }
  // For changes that keep the invariants (a lease's end; not a count).
  absl::btree_map<uint64_t, Holding>& mutable_holdings() { return holdings_; }
  WaiterQueue& waiters() { return waiters_; }
  const WaiterQueue& waiters() const { return waiters_; }

  // True when nothing is held and nobody waits: the default state.
  bool idle() const { return holdings_.empty() && waiters_.empty(); }

  // True if a request for `count` permits may be granted now: nobody waits
  // ahead of it and enough permits are free.
  bool CanGrantNow(int64_t count) const { return waiters_.empty() && count <= available(); }

  // Records a grant. REQUIRES: h.count <= available(); h.token unused.
  const Holding& Grant(Holding h);

  // The holding that a retry with this session and request id refers to, or
  // nullptr. An empty request id never matches.
  Holding* FindReplay(uint64_t session, const std::string& request_id);

  // The holding `token` if it exists and is owned by `session`; otherwise
  // FAILED_PRECONDITION saying why. `what` names the resource in messages.
  absl::StatusOr<Holding*> FindOwned(uint64_t token, uint64_t session, const std::string& what);

  // Returns `count` permits of holding `token` (all of them if count <= 0 or
  // count >= held) and returns the permits it still holds.
  // REQUIRES: the holding exists.
  int64_t Return(uint64_t token, int64_t count);

  // Removes every holding owned by `session`; returns their tokens.
  std::vector<uint64_t> RemoveSession(uint64_t session);

  // Removes the waiters at the head of the line that fit into the free
  // permits, oldest first; stops at the first that does not fit.
  std::vector<Waiter> PopGrantable();

  // The stored form (archive.h).
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(capacity_, used_, holdings_, waiters_);
  }

 private:
  int64_t capacity_;
  int64_t used_ = 0;
  absl::btree_map<uint64_t, Holding> holdings_;
  WaiterQueue waiters_;
};

}  // namespace baton::primitives
