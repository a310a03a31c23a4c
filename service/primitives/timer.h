// Timer is the state of a named timer (loop.call_later / call_at, or a
// periodic call): when it is due next, its period, and how often it fired.
// What it does when it fires is the apply layer's business (an action
// command kept beside it).
//
// Invariants: a periodic timer is never done; a one-shot timer is done once
// it has fired, and is then kept only to be described.
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <cstdint>

#include "runtime/clock.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

struct Timer {
  Time due = kForever;  // next firing; for a done timer: when it is reclaimed
  Duration every = 0;   // 0: one-shot
  uint64_t fired = 0;
  Time last_fired = -1;  // -1: never
  Time created = 0;
  bool done = false;  // a one-shot timer that has fired
  uint64_t seq = 0;   // identifies its entry in the shard's timer index

  // Fires at `now`: returns the next due time, skipping periods that were
  // missed (late rather than never, and only once), or kForever if one-shot.
  Time Fire(Time now) {
    ++fired;
    last_fired = now;
    if (every <= 0) {
      done = true;
      return kForever;
    }
    Time next = due + every;
    if (next <= now) next = now + every - (now - due) % every;
    due = next;
    return next;
  }

  // A timer is never "default state" while scheduled; a done one is
  // reclaimed by its retention timer, not by idleness.
  bool idle() const { return false; }

  // Nobody waits on a timer; the line exists so that every resource has one.
  WaiterQueue& waiters() { return no_waiters_; }

  // The stored form (archive.h). no_waiters_ is not stored: nobody ever
  // parks on a timer.
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(due, every, fired, last_fired, created, done, seq);
  }

 private:
  WaiterQueue no_waiters_;
};

}  // namespace baton::primitives
