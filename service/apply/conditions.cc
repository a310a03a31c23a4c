// Conditions: Wait and Notify. A condition lives in its lock's resource
// (Resource::conditions), so that releasing the lock and parking on the
// condition happen in one command, on one shard, atomically.
//
// A waiter goes through two lines: first its condition's line (until a
// notify or its timeout), then the lock's own line, where it re-acquires
// the lock like any Acquire (FIFO). Its outcome rides along in
// Waiter::condition_outcome and comes back in Granted.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Holding;
using primitives::PermitPool;
using primitives::Waiter;

// A lock's waiter_leaving hook: a condition waiter whose own timeout passed
// (not its RPC's deadline) re-acquires the lock, as asyncio does; the wait
// then ends with OK and outcome "timed out".
bool ShardState::PoolWaiterLeaving(const std::string& name, Resource& r, Waiter& w, EndReason why,
                                   Time now, Effects& out) {
  if (w.line != kCondition || why != EndReason::kTimedOut || w.condition_timeout() > now) {
    return false;
  }
  Unpark(name, w);
  Reacquire(r, name, std::move(w), primitives::ConditionOutcome::kTimedOut, now, out);
  return true;
}

void ShardState::Reacquire(Resource& lock, const std::string& name, Waiter w,
                           primitives::ConditionOutcome outcome, Time now, Effects& out) {
  w.line = kMain;  // the condition stays, for Describe
  w.condition_outcome = outcome;
  // The re-acquire is bounded by the RPC's deadline only: past it the client
  // has given up, so the server ends the wait itself, a little before.
  w.deadline = w.rpc_deadline();
  w.since = now;
  Park(lock.pool().waiters(), name, std::move(w));
  GrantWaiters(name, lock.pool(), now, out);
}

void ShardState::Do(const ConditionWait& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.lock, Kind::kLock, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        "lock '", c.lock, "' is not held; a condition wait needs the lock (Locks/Acquire)")));
  }
  Resource& lock = **r;
  PermitPool& pool = lock.pool();
  auto held = pool.FindOwned(c.token, c.session, absl::StrCat("lock '", c.lock, "'"));
  if (!held.ok()) return fail(held.status());
  if (!MayUse((*held)->owner)) {
    return fail(NotYours(absl::StrCat("lock '", c.lock, "' token ", c.token)));
  }
  const Holding& h = **held;
  Duration lease = c.lease;
  if (lease == 0 && h.expires != kForever) lease = std::max(h.expires - h.since, kMillisecond);
  auto [it, inserted] = lock.conditions.try_emplace(c.condition);
  if (absl::Status s = CheckCanPark(it->second, c.lock); !s.ok()) {
    if (inserted) lock.conditions.erase(it);
    return fail(s);
  }
  // Release the lock and park on the condition: one step, so no notify can
  // fall between them.
  Holding gone = h;
  pool.Return(c.token, 0);
  ForgetHolding(c.lock, gone);
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.owner = gone.owner;  // the re-acquired lock is the same principal's
  w.since = now;
  w.deadline = std::min(c.deadline, c.rpc_deadline);
  w.count = 1;
  w.lease = lease;
  w.line = kCondition;
  w.in_condition.Mutable() = {c.condition, c.deadline, c.rpc_deadline};
  Park(it->second, c.lock, std::move(w));
  GrantWaiters(c.lock, pool, now, out);
}

void ShardState::Do(const Notify& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.lock, Kind::kLock, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("lock '", c.lock, "' is not held; notify needs the lock, as in asyncio")));
  }
  Resource& lock = **r;
  auto held = lock.pool().FindOwned(c.token, c.session, absl::StrCat("lock '", c.lock, "'"));
  if (!held.ok()) return fail(held.status());
  if (!MayUse((*held)->owner)) {
    return fail(NotYours(absl::StrCat("lock '", c.lock, "' token ", c.token)));
  }
  uint32_t woken = 0;
  auto it = lock.conditions.find(c.condition);
  if (it != lock.conditions.end()) {
    while (!it->second.empty() && (c.all || woken < c.n)) {
      Waiter w = it->second.PopFront();
      Unpark(c.lock, w);
      Reacquire(lock, c.lock, std::move(w), primitives::ConditionOutcome::kNotified, now, out);
      ++woken;
    }
    if (it->second.empty()) lock.conditions.erase(it);
  }
  out.push_back(Answer(c, origin, Notified{woken}));
}

}  // namespace baton::apply
