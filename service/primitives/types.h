// Plain data shared by the primitives: who waits, who holds, where a reply
// goes. No behaviour lives here.
#pragma once

#include <cstdint>
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

// A pending blocking operation, parked until granted, timed out, cancelled
// or aborted.
struct Waiter {
  uint64_t id = 0;           // unique on the server (ShardState::NextId)
  OpRef op;                  // where the outcome goes
  uint64_t session = 0;      // owning session, 0 for none
  Time since = 0;            // when it started waiting
  Time deadline = kForever;  // when it times out
  int64_t count = 1;         // permits wanted (locks: 1)
  Duration lease = 0;        // lease TTL for the holding once granted, 0: none
  std::string request_id;    // idempotency key, may be empty
  // Which line of its resource the waiter stands in (apply::Line), and for a
  // condition wait the condition's name.
  uint8_t line = 0;
  std::string condition;
  // A condition waiter re-acquiring its lock: why it woke.
  ConditionOutcome condition_outcome = ConditionOutcome::kNone;
  // A condition waiter: when its own `timeout` ends the wait for a notify
  // (it then re-acquires the lock), and when its RPC's deadline does (it
  // then just ends: the client is giving up). `deadline` is the earlier.
  Time condition_timeout = kForever;
  Time rpc_deadline = kForever;
  bool dead_letters = false;  // queue getters: read the dead letters
  // Its RPC belonged to a previous process (op is {}): a retry with the
  // same session and request_id may take the wait over (apply::Recover).
  bool orphaned = false;
  // The principal that asked (OwnerTag), handed to what it is granted; 0:
  // none (the server checked no principals). State format 4 on.
  uint64_t owner = 0;

  template <class Ar>
  void Serialize(Ar& ar) {
    // The outcome is stored as its plain number (format 2 did so).
    auto outcome = static_cast<uint8_t>(condition_outcome);
    ar(id, op, session, since, deadline, count, lease, request_id,
       archive::Ranged<uint8_t>(line, 0, 3), condition, archive::Ranged<uint8_t>(outcome, 0, 2),
       condition_timeout, rpc_deadline, dead_letters, orphaned);
    if (ar.version() >= 4) ar(owner);
    if constexpr (Ar::kLoading) condition_outcome = static_cast<ConditionOutcome>(outcome);
  }
};
static_assert(FieldCount<Waiter>() == 16, "store the new field in Waiter::Serialize");

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

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(token, session, count, since, expires, request_id, delivery);
    if (ar.version() >= 4) ar(owner);
  }
};
static_assert(FieldCount<Holding>() == 8, "store the new field in Holding::Serialize");

}  // namespace baton::primitives
