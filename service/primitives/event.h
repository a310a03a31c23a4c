// Event is the state of an asyncio.Event: a flag, the waiters parked until it
// is set, and the Watch streams told about every change.
//
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <vector>

#include "absl/container/btree_set.h"
#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

class Event {
 public:
  bool is_set() const { return set_; }
  WaiterQueue& waiters() { return waiters_; }
  const WaiterQueue& waiters() const { return waiters_; }

  // Watch streams, ordered by (shard, id) so notifications are deterministic.
  const absl::btree_set<std::pair<uint32_t, uint64_t>>& watchers() const { return watchers_; }
  void AddWatcher(OpRef op) { watchers_.insert({op.shard, op.id}); }
  bool RemoveWatcher(OpRef op) { return watchers_.erase({op.shard, op.id}) > 0; }

  // Sets the flag; returns every waiter, oldest first, to be woken.
  std::vector<Waiter> Set() {
    set_ = true;
    return waiters_.RemoveAll();
  }
  void Clear() { set_ = false; }

  // Clear, nobody waiting or watching: the default state.
  bool idle() const { return !set_ && waiters_.empty() && watchers_.empty(); }

  // The stored form (archive.h).
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(set_, waiters_, watchers_);
  }

 private:
  bool set_ = false;
  WaiterQueue waiters_;
  absl::btree_set<std::pair<uint32_t, uint64_t>> watchers_;
};

}  // namespace baton::primitives
