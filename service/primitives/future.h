// Future is the state of an asyncio.Future: pending until it gets a result,
// an exception or is cancelled, then done for good; awaiters park until then.
//
// Invariants: a done future has no awaiters; it never changes again.
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <cstdint>
#include <string>

#include "service/primitives/archive.h"
#include "service/primitives/field_count.h"
#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

enum class FutureState : uint8_t { kPending = 1, kResult, kException, kCancelled };

struct FutureValue {
  FutureState state = FutureState::kPending;
  std::string value;          // kResult
  int32_t error_code = 0;     // kException
  std::string error_message;  // kException

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(archive::Enum(state, FutureState::kPending, FutureState::kCancelled), value, error_code,
       error_message);
  }
};
static_assert(FieldCount<FutureValue>() == 4, "store the new field in FutureValue::Serialize");

class Future {
 public:
  bool done() const { return value_.state != FutureState::kPending; }
  const FutureValue& value() const { return value_; }
  WaiterQueue& waiters() { return waiters_; }
  const WaiterQueue& waiters() const { return waiters_; }

  // Completes the future. REQUIRES: !done(); v.state != kPending.
  // Returns the awaiters to wake, oldest first.
  std::vector<Waiter> Complete(FutureValue v, Time now, Time expires, uint64_t timer_id) {
    value_ = std::move(v);
    done_at_ = now;
    expires_ = expires;
    timer_id_ = timer_id;
    return waiters_.RemoveAll();
  }
  Time done_at() const { return done_at_; }
  Time expires() const { return expires_; }
  uint64_t timer_id() const { return timer_id_; }

  // Pending with nobody awaiting: the default state. A done future is kept
  // until its retention timer reclaims it.
  bool idle() const { return !done() && waiters_.empty(); }

  // The stored form (archive.h).
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(value_, done_at_, expires_, timer_id_, waiters_);
  }

 private:
  FutureValue value_;
  Time done_at_ = 0;
  Time expires_ = kForever;
  uint64_t timer_id_ = 0;
  WaiterQueue waiters_;
};

}  // namespace baton::primitives
