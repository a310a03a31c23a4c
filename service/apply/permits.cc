// Locks and semaphores: Acquire, Release, Refresh, Undeliver, lease expiry.
// A lock is a permit pool of capacity 1 (primitives/permit_pool.h).
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Holding;
using primitives::PermitPool;
using primitives::Waiter;

namespace {

const char* What(Kind k) { return k == Kind::kLock ? "lock" : "semaphore"; }

Duration ExpiresIn(Time expires, Time now) {
  return expires == kForever ? kForever : expires - now;
}

}  // namespace

void ShardState::GrantHolding(const std::string& name, PermitPool& pool, uint64_t session,
                              uint64_t owner, int64_t count, Duration lease,
                              const std::string& request_id, OpRef op, GrantHow how, Time now,
                              Effects& out, primitives::ConditionOutcome condition_outcome) {
  Holding h;
  last_token_ = OwnIdAtLeast(std::max(last_token_ + 1, now > 0 ? static_cast<uint64_t>(now) : 0));
  h.token = last_token_;
  h.session = session;
  h.owner = owner;
  h.count = count;
  h.since = now;
  h.expires = lease > 0 ? AddSaturating(now, lease) : kForever;
  h.lease = lease;
  h.request_id = request_id;
  h.delivery = NextId(next_delivery_);
  if (h.expires != kForever) {
    AddTimer(h.expires, TimerKind::kLease, h.token);
    lease_names_[h.token] = name;
  }
  Ref(session, name);
  const Holding& held = pool.Grant(std::move(h));
  if (observer_ != nullptr) {
    observer_->Granted(pool.capacity() == 1 && count == 1 ? Kind::kLock : Kind::kSemaphore, name,
                       held.token, session, count);
  }
  out.push_back(Reply{
      op, Result::Ok(Granted{held.token, held.count, pool.available(), how,
                             ExpiresIn(held.expires, now), held.delivery, condition_outcome})});
}

int ShardState::GrantWaiters(const std::string& name, PermitPool& pool, Time now, Effects& out) {
  std::vector<Waiter> ready = pool.PopGrantable();
  for (const Waiter& w : ready) {
    Unpark(name, w);
    NoteGrant(name, w);
    GrantHolding(name, pool, w.session, w.owner, w.count, w.lease, w.request_id, w.op,
                 GrantHow::kAfterWait, now, out, w.condition_outcome);
  }
  return static_cast<int>(ready.size());
}

void ShardState::ForgetHolding(const std::string& name, const Holding& h) {
  if (observer_ != nullptr) observer_->HoldingEnded(name, h.token, h.since);
  if (h.expires != kForever) {
    RemoveTimer(h.expires, TimerKind::kLease, h.token);
    lease_names_.erase(h.token);
  }
  Unref(h.session, name);
}

void ShardState::PoolWaiterLeft(const std::string& name, Resource& r, uint8_t, uint64_t, EndReason,
                                Time now, Effects& out) {
  // The waiter may have been the head of the line, holding back smaller
  // requests behind it.
  GrantWaiters(name, r.pool(), now, out);
}

void ShardState::PoolSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                                  Effects& out) {
  PermitPool& pool = r.pool();
  std::vector<primitives::Holding> gone;
  for (const auto& [token, h] : pool.holdings()) {
    if (h.session == session) gone.push_back(h);
  }
  pool.RemoveSession(session);
  for (const auto& h : gone) ForgetHolding(name, h);
  GrantWaiters(name, pool, now, out);
}

void ShardState::Do(const AcquirePermits& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  bool exists = resources_.contains(c.name);
  if (!exists && c.kind == Kind::kSemaphore && c.capacity <= 0) {
    return fail(absl::InvalidArgumentError(absl::StrCat(
        "semaphore '", c.name, "' does not exist yet: give its capacity on first use")));
  }
  auto r = Lookup(c.name, c.kind, /*create=*/true, c.kind == Kind::kLock ? 1 : c.capacity);
  if (!r.ok()) return fail(r.status());
  PermitPool& pool = (*r)->pool();
  if (c.kind == Kind::kSemaphore && c.capacity != 0 && c.capacity != pool.capacity()) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("semaphore '", c.name, "' was declared with capacity ", pool.capacity(),
                     ", not ", c.capacity, " (pass 0 to use the declared capacity)")));
  }
  if (c.count > pool.capacity()) {
    absl::Status error =
        absl::InvalidArgumentError(absl::StrCat("count ", c.count, " exceeds the capacity ",
                                                pool.capacity(), " of semaphore '", c.name, "'"));
    return fail(std::move(error));
  }
  if (absl::Status s = Superseded(c.name, c.session, c.request_id, c.nowait, now); !s.ok()) {
    return fail(s);
  }
  // (Another principal's request id is not this caller's retry.)
  if (Holding* h = pool.FindReplay(c.session, c.request_id); h != nullptr && h->owner == caller_) {
    // This reply now carries the holding: a lost earlier reply must no
    // longer roll it back, but a loss of this one must.
    h->delivery = NextId(next_delivery_);
    Claim(c.name, c.session, c.request_id);
    out.push_back(Answer(c, origin,
                         Granted{h->token, h->count, pool.available(), GrantHow::kReplayed,
                                 ExpiresIn(h->expires, now), h->delivery}));
    return;
  }
  // The retry of a wait that a restart orphaned: it keeps its place.
  if (Adopt(c.name, pool.waiters(), c.session, c.request_id, origin, c.deadline, now, out)) return;
  NoteNothingFound(c.name, c.session, c.request_id, c.nowait, now);
  if (pool.CanGrantNow(c.count)) {
    GrantHolding(c.name, pool, c.session, caller_, c.count, c.lease, c.request_id, origin,
                 GrantHow::kImmediate, now, out);
    return;
  }
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(
        c.kind == Kind::kLock ? absl::StrCat("lock '", c.name, "' is held")
                              : absl::StrCat("semaphore '", c.name, "' has ", pool.available(),
                                             " of ", pool.capacity(), " permits free and ",
                                             pool.waiters().size(), " waiters ahead")));
  }
  if (absl::Status s = CheckCanPark(**r, c.name); !s.ok()) return fail(s);
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.owner = caller_;
  w.since = now;
  w.deadline = c.deadline;
  w.count = c.count;
  w.lease = c.lease;
  w.request_id = c.request_id;
  Park(**r, c.name, std::move(w));
}

void ShardState::Do(const ReleasePermits& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, c.kind, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr) {
    return fail(
        absl::FailedPreconditionError(absl::StrCat(What(c.kind), " '", c.name,
                                                   "' is not held (released, expired, or never "
                                                   "acquired)")));
  }
  PermitPool& pool = (*r)->pool();
  auto held = pool.FindOwned(c.token, c.session, absl::StrCat(What(c.kind), " '", c.name, "'"));
  if (!held.ok()) return fail(held.status());
  if (!MayUse((*held)->owner)) {
    return fail(NotYours(absl::StrCat(What(c.kind), " '", c.name, "' token ", c.token)));
  }
  if (c.count > (*held)->count) {
    return fail(absl::FailedPreconditionError(absl::StrCat("cannot release ", c.count,
                                                           " permits of '", c.name, "': holding ",
                                                           c.token, " has ", (*held)->count)));
  }
  Holding before = **held;
  int64_t remaining = pool.Return(c.token, c.count);
  if (remaining == 0) ForgetHolding(c.name, before);
  int granted = GrantWaiters(c.name, pool, now, out);
  out.push_back(Answer(c, origin, Released{granted > 0, pool.available(), remaining}));
  MaybeReclaim(c.name);
}

void ShardState::Do(const RefreshPermits& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, c.kind, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr) {
    return fail(
        absl::FailedPreconditionError(absl::StrCat(What(c.kind), " '", c.name, "' is not held")));
  }
  auto held =
      (*r)->pool().FindOwned(c.token, c.session, absl::StrCat(What(c.kind), " '", c.name, "'"));
  if (!held.ok()) return fail(held.status());
  if (!MayUse((*held)->owner)) {
    return fail(NotYours(absl::StrCat(What(c.kind), " '", c.name, "' token ", c.token)));
  }
  Holding& h = **held;
  if (h.expires != kForever) RemoveTimer(h.expires, TimerKind::kLease, h.token);
  h.expires = AddSaturating(now, c.lease);
  h.lease = c.lease;
  AddTimer(h.expires, TimerKind::kLease, h.token);
  lease_names_[h.token] = c.name;
  out.push_back(Answer(c, origin, Refreshed{h.expires - now}));
}

void ShardState::Do(const Undeliver& c, OpRef, Time now, Effects& out) {
  auto r = Lookup(c.name, c.kind, /*create=*/false, 0);
  if (!r.ok() || *r == nullptr) return;
  PermitPool& pool = (*r)->pool();
  auto it = pool.holdings().find(c.token);
  if (it == pool.holdings().end()) return;        // already released or expired
  if (it->second.delivery != c.delivery) return;  // delivered again since (a replay)
  DropHolding(c.name, pool, c.token, now, out);
}

void ShardState::DropHolding(const std::string& name, PermitPool& pool, uint64_t token, Time now,
                             Effects& out) {
  Holding gone = pool.holdings().at(token);
  pool.Return(token, 0);
  ForgetHolding(name, gone);
  GrantWaiters(name, pool, now, out);
  MaybeReclaim(name);
}

void ShardState::Do(const DeleteSemaphore& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kSemaphore, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) return out.push_back(Answer(c, origin, Deleted{false}));
  const PermitPool& pool = (*r)->pool();
  // Nobody waits unless permits are held (grants are made as soon as they fit).
  if (!pool.holdings().empty()) {
    return out.push_back(
        Reply{origin, Result::Error(absl::FailedPreconditionError(absl::StrCat(
                          "semaphore '", c.name, "' has ", pool.capacity() - pool.available(),
                          " of ", pool.capacity(), " permits held and ", pool.waiters().size(),
                          " waiters: release the permits first")))});
  }
  EraseResource(c.name);
  out.push_back(Answer(c, origin, Deleted{true}));
}

void ShardState::ExpireLease(uint64_t token, Time now, Effects& out) {
  auto n = lease_names_.find(token);
  if (n == lease_names_.end()) return;
  std::string name = n->second;
  auto it = resources_.find(name);
  if (it == resources_.end() || !it->second.is_pool()) return;
  PermitPool& pool = it->second.pool();
  auto h = pool.holdings().find(token);
  if (h == pool.holdings().end() || h->second.expires > now) return;
  if (observer_ != nullptr) observer_->LeaseExpired(name, token, h->second.session);
  DropHolding(name, pool, token, now, out);
}

// Describe: the pool (lock or semaphore) and its conditions.
// --- the kind's hooks (kinds.cc) ---

ShardState::PrimitiveState ShardState::PoolBlank(int64_t capacity) {
  return primitives::PermitPool(capacity);
}

// A semaphore's capacity is a declaration: it lasts until DeleteSemaphore.
bool ShardState::SemaphoreDeclared(const Resource&) { return true; }

void ShardState::DescribePool(const std::string&, Resource& r, Time now, ResourceInfo& info) {
  const primitives::PermitPool& pool = r.pool();
  info.capacity = pool.capacity();
  info.available = pool.available();
  for (const auto& [token, h] : pool.holdings()) {
    info.holders.push_back(HolderInfo{token, h.session, h.count, now - h.since,
                                      h.expires == kForever ? kForever : h.expires - now,
                                      h.request_id});
    info.last_token = std::max(info.last_token, token);
  }
  absl::btree_map<std::string, ConditionSummary> conds;
  for (const auto& [cond, line] : r.conditions) {
    conds[cond] = ConditionSummary{cond, static_cast<uint32_t>(line.size()), 0};
  }
  for (const auto& [seq, w] : pool.waiters()) {
    if (w.condition_outcome == primitives::ConditionOutcome::kNone) continue;
    ConditionSummary& cs = conds[w.condition()];
    cs.condition = w.condition();
    ++cs.reacquiring;
  }
  for (auto& [cond, cs] : conds) info.conditions.push_back(std::move(cs));
}

// Orphans: an acquire may stay in line across a restart, a condition's
// re-acquire may not (its condition wait is gone).
bool ShardState::PoolOrphanable(const Waiter& w) {
  return w.condition_outcome == primitives::ConditionOutcome::kNone;
}

void ShardState::PoolRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                              Effects& out) {
  PermitPool& pool = r.pool();
  if (Holding* h = pool.FindReplay(k.session, k.request_id)) {
    DropHolding(name, pool, h->token, now, out);
  }
}

uint32_t ShardState::PoolHolders(Resource& r) {
  return static_cast<uint32_t>(r.pool().holdings().size());
}

}  // namespace baton::apply
