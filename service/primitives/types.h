// Plain data shared by the primitives: who waits, who holds, where a reply
// goes. No behaviour lives here.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/clock.h"
#include "service/primitives/archive.h"
#include "service/primitives/field_count.h"

namespace baton::primitives {

// Identifies the RPC (or stream) that an outcome must be delivered to: the
// shard whose loop runs it and an id unique on that shard. id 0: nobody.
struct OpRef {
  uint32_t shard = 0;
  uint64_t id = 0;
  auto operator<=>(const OpRef&) const = default;  // (shard, id): snapshots sort by it
  bool operator==(const OpRef&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, const OpRef& r) {
    return H::combine(std::move(h), r.shard, r.id);
  }
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(shard, id);
  }
};
static_assert(FieldCount<OpRef>() == 2, "store the new field in OpRef::Serialize");

// Why a condition waiter re-acquires its lock (kNone: any other waiter).
enum class ConditionOutcome : uint8_t { kNone = 0, kNotified = 1, kTimedOut = 2 };

// What only a condition's waiter has (and a task's result waiter, which
// stands in a sub-line named like a condition).
struct ConditionPart {
  std::string condition;  // the condition's (or sub-line's) name
  // When the waiter's own `timeout` ends the wait for a notify (it then
  // re-acquires the lock), and when its RPC's deadline does (it then just
  // ends: the client is giving up). Waiter::deadline is the earlier.
  Time condition_timeout = kForever;
  Time rpc_deadline = kForever;
};

// A ConditionPart kept on the heap, or none: every other waiter, which a
// lock's line may hold by the hundred thousand, is 40 bytes smaller for it.
// Copies are deep.
class ConditionBox {
 public:
  ConditionBox() = default;
  ConditionBox(const ConditionBox& o)
      : p_(o.p_ ? std::make_unique<ConditionPart>(*o.p_) : nullptr) {}
  ConditionBox(ConditionBox&&) noexcept = default;
  ConditionBox& operator=(const ConditionBox& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<ConditionPart>(*o.p_) : nullptr;
    return *this;
  }
  ConditionBox& operator=(ConditionBox&&) noexcept = default;

  // The part, or defaults (no condition, no deadlines) if there is none.
  const ConditionPart& get() const { return p_ ? *p_ : Empty(); }
  // The part, made if there was none.
  ConditionPart& Mutable() {
    if (!p_) p_ = std::make_unique<ConditionPart>();
    return *p_;
  }

 private:
  static const ConditionPart& Empty() {
    static const ConditionPart empty;
    return empty;
  }
  std::unique_ptr<ConditionPart> p_;
};

// A pending blocking operation, parked until granted, timed out, cancelled
// or aborted.
struct Waiter {
  // Members are in an order that packs them (the small ones last); what only
  // condition waiters need is in `in_condition`, on the heap: 120 bytes, not
  // 176, and a lock's line keeps one per pending wait. Serialize gives the
  // order they are stored in.
  uint64_t id = 0;            // unique on the server (ShardState::NextId)
  OpRef op;                   // where the outcome goes
  uint64_t session = 0;       // owning session, 0 for none
  Time since = 0;             // when it started waiting
  Time deadline = kForever;   // when it times out
  int64_t count = 1;          // permits wanted (locks: 1)
  Duration lease = 0;         // lease TTL for the holding once granted, 0: none
  std::string request_id;     // idempotency key, may be empty
  ConditionBox in_condition;  // a condition waiter's condition and deadlines
  // The principal that asked (OwnerTag), handed to what it is granted; 0:
  // none (the server checked no principals). State format 4 on.
  uint64_t owner = 0;
  // Which line of its resource the waiter stands in (apply::Line).
  uint8_t line = 0;
  // A condition waiter re-acquiring its lock: why it woke.
  ConditionOutcome condition_outcome = ConditionOutcome::kNone;
  bool dead_letters = false;  // queue getters: read the dead letters
  // Its RPC belonged to a previous process (op is {}): a retry with the
  // same session and request_id may take the wait over (apply::Recover).
  bool orphaned = false;

  const std::string& condition() const { return in_condition.get().condition; }
  Time condition_timeout() const { return in_condition.get().condition_timeout; }
  Time rpc_deadline() const { return in_condition.get().rpc_deadline; }

  template <class Ar>
  void Serialize(Ar& ar) {
    // The outcome is stored as its plain number (format 2 did so); the
    // condition part as three plain fields (defaults for other waiters).
    auto outcome = static_cast<uint8_t>(condition_outcome);
    ConditionPart part = in_condition.get();
    ar(id, op, session, since, deadline, count, lease, request_id,
       archive::Ranged<uint8_t>(line, 0, 3), part.condition,
       archive::Ranged<uint8_t>(outcome, 0, 2), part.condition_timeout, part.rpc_deadline,
       dead_letters, orphaned);
    if (ar.version() >= 4) ar(owner);
    if constexpr (Ar::kLoading) {
      condition_outcome = static_cast<ConditionOutcome>(outcome);
      if (!part.condition.empty() || part.condition_timeout != kForever ||
          part.rpc_deadline != kForever) {
        in_condition.Mutable() = std::move(part);
      }
    }
  }
};
static_assert(FieldCount<Waiter>() == 14, "store the new field in Waiter::Serialize");
static_assert(sizeof(Waiter) <= 120, "Waiter grew: a lock's line keeps one per pending wait");

// One grant of a lock or of semaphore permits.
struct Holding {
  uint64_t token = 0;    // fencing token; identifies the holding
  uint64_t session = 0;  // owning session, 0 for none
  int64_t count = 1;
  Time since = 0;
  Time expires = kForever;  // lease end; kForever without a lease
  std::string request_id;
  // Identifies the latest reply that carried this holding to a client (a
  // grant, or a replay of it). A rollback applies only to the latest one.
  uint64_t delivery = 0;
  // The principal it was granted to (OwnerTag): only it, or an admin, may
  // release or refresh it. 0: anyone who may write the name. Format 4 on.
  uint64_t owner = 0;
  // The lease it was granted or last refreshed with (0: none, or granted
  // before format 5): a new leader gives it a whole lease again (Recover).
  Duration lease = 0;

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(token, session, count, since, expires, request_id, delivery);
    if (ar.version() >= 4) ar(owner);
    if (ar.version() >= 5) ar(lease);
  }
};
static_assert(FieldCount<Holding>() == 9, "store the new field in Holding::Serialize");

}  // namespace baton::primitives
