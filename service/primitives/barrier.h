// Barrier is the state of an asyncio.Barrier: `parties` arrivals release
// everyone together and start a new cycle; a broken barrier refuses every
// arrival until it is reset.
//
// Invariants: waiters().size() < parties(); a broken barrier has no waiters;
// each waiter's `count` holds its arrival index.
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <cstdint>

#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

class Barrier {
 public:
  explicit Barrier(uint32_t parties) : parties_(parties) {}

  uint32_t parties() const { return parties_; }
  bool broken() const { return broken_; }
  uint64_t cycles() const { return cycles_; }
  WaiterQueue& waiters() { return waiters_; }
  const WaiterQueue& waiters() const { return waiters_; }

  // The index the next arrival gets.
  uint32_t next_index() const { return static_cast<uint32_t>(waiters_.size()); }
  // True if the next arrival trips the barrier.
  bool next_trips() const { return next_index() + 1 >= parties_; }

  // Trips: returns the waiters to release, oldest first, and counts a cycle.
  std::vector<Waiter> Trip() {
    ++cycles_;
    return waiters_.RemoveAll();
  }
  // Breaks or resets: returns the waiters to abort.
  std::vector<Waiter> Break() {
    broken_ = true;
    return waiters_.RemoveAll();
  }
  std::vector<Waiter> Reset() {
    broken_ = false;
    return waiters_.RemoveAll();
  }

  // Empty and unbroken: the default state.
  bool idle() const { return !broken_ && waiters_.empty(); }

  // The stored form (archive.h).
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(parties_, broken_, cycles_, waiters_);
  }

 private:
  uint32_t parties_;
  bool broken_ = false;
  uint64_t cycles_ = 0;
  WaiterQueue waiters_;
};

}  // namespace baton::primitives
