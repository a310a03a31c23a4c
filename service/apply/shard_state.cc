// ShardState: dispatch, resources, the waiting mechanism and timers. The
// commands of each primitive live in permits.cc, events.cc, sessions.cc and
// admin.cc.
#include "service/apply/shard_state.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace baton::apply {

using primitives::Waiter;

primitives::WaiterQueue& ShardState::Resource::waiters() {
  return std::visit(
      [](auto& s) -> primitives::WaiterQueue& {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, primitives::Queue>) {
          return s.getters;
        } else {
          return s.waiters();
        }
      },
      state);
}

primitives::WaiterQueue* ShardState::Resource::LineOf(uint8_t line, const std::string& condition) {
  switch (line) {
    case kMain:
      return &waiters();
    case kPutters:
    case kJoiners: {
      auto extra = HooksOf(kind).line;
      return extra == nullptr ? nullptr : extra(*this, line);
    }
    case kCondition: {
      auto it = conditions.find(condition);
      return it == conditions.end() ? nullptr : &it->second;
    }
  }
  return nullptr;
}

primitives::WaiterQueue* ShardState::Resource::LineHolding(uint64_t id) {
  for (uint8_t l : {kMain, kPutters, kJoiners}) {
    primitives::WaiterQueue* line = LineOf(l, "");
    if (line != nullptr && line->Find(id) != nullptr) return line;
  }
  for (auto& [condition, q] : conditions) {
    if (q.Find(id) != nullptr) return &q;
  }
  return nullptr;
}

bool ShardState::Resource::idle() const {
  // Declarations last: a semaphore's capacity, and the options a queue was
  // declared with, stay until deleted (DeleteSemaphore, DeleteQueue).
  auto declared = HooksOf(kind).declared;
  if (declared != nullptr && declared(*this)) return false;
  return unused();
}

bool ShardState::Resource::unused() const {
  return conditions.empty() && std::visit([](const auto& s) { return s.idle(); }, state);
}

ShardState::ShardState(uint32_t shard, uint32_t shard_count, Limits limits)
    : shard_(shard), shard_count_(shard_count), limits_(limits) {}

uint32_t ShardState::ShardOfName(std::string_view name, uint32_t shard_count) {
  // FNV-1a: stable across processes and platforms, unlike absl::Hash, so a
  // name maps to the same shard after a restart with the same shard count.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : name) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h % shard_count);
}

void ShardState::Apply(const Command& command, OpRef origin, Time now, Effects& out) {
  caller_ = command.principal;
  caller_admin_ = command.admin;
  caller_names_limit_ = command.names_limit;
  std::visit(
      [&](const auto& c) {
        using C = std::decay_t<decltype(c)>;
        // The checks every command of its class makes first (command.h).
        // Shutdown refuses what clients ask for; a command derived from one
        // already applied (a timer's action, no origin) must still happen.
        if constexpr (kGatesOf<C> & kRefusedAtShutdown) {
          if (shutting_down_ && origin.id != 0) {
            return out.push_back(
                Reply{origin, Result::Error(absl::UnavailableError("server shutting down"))});
          }
        }
        if constexpr (kGatesOf<C> & kNeedsLiveSession) {
          if (absl::Status s = CheckSession(c.session); !s.ok()) {
            return out.push_back(Reply{origin, Result::Error(std::move(s))});
          }
        }
        size_t first = out.size();
        Do(c, origin, now, out);
        // A rollback asked by an op (not a replay of the log with no op)
        // is answered once applied: a stream op answers CANCELLED only then,
        // so whoever hears of the cancel can no longer see what it undid.
        if constexpr (kIsRollback<C>) {
          if (origin.id != 0) out.push_back(Reply{origin, Result::Ok(Done{})});
        }
        // A refused command creates nothing, not even a declaration. (A wait
        // that ran out of time was not refused: a Get with options that
        // finds the new queue empty has still declared it.)
        if (!created_.empty()) {
          for (size_t i = first; i < out.size(); ++i) {
            const Reply* r = std::get_if<Reply>(&out[i]);
            if (r == nullptr || r->op != origin || r->result.ok() ||
                r->result.status.code() == absl::StatusCode::kDeadlineExceeded) {
              continue;
            }
            for (const std::string& name : created_) {
              auto it = resources_.find(name);
              if (it != resources_.end() && it->second.unused()) EraseResource(it);
            }
            break;
          }
        }
      },
      command);
  created_.clear();
  caller_ = 0;
  caller_admin_ = false;
  caller_names_limit_ = 0;
  ReclaimTouched();
}

absl::Status ShardState::NotYours(const std::string& what) {
  return absl::PermissionDeniedError(absl::StrCat(what, " belongs to another principal"));
}

// --- resources ---

absl::StatusOr<ShardState::Resource*> ShardState::Lookup(const std::string& name, Kind kind,
                                                         bool create, int64_t capacity) {
  auto it = resources_.find(name);
  if (it != resources_.end()) {
    if (it->second.kind != kind) {
      return absl::FailedPreconditionError(absl::StrCat(
          "'", name, "' is a ", HooksOf(it->second.kind).name, ", not a ", HooksOf(kind).name));
    }
    return &it->second;
  }
  if (!create) return nullptr;
  // A queue's options are set by its own lookup (queues.cc).
  return AddResource(name, Resource{kind, HooksOf(kind).blank(capacity), {}, 0});
}

absl::StatusOr<ShardState::Resource*> ShardState::AddResource(const std::string& name, Resource r) {
  if (static_cast<int64_t>(resources_.size()) >= limits_.max_resources) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many live resources (limit ", limits_.max_resources,
                     " per shard): release or delete some, or raise --max_resources"));
  }
  if (caller_ != 0 && caller_names_limit_ > 0) {
    uint64_t share = (caller_names_limit_ + shard_count_ - 1) / shard_count_;
    int64_t mine = NamesCreatedBy(caller_);
    if (static_cast<uint64_t>(mine) >= share) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "this principal's names limit (", caller_names_limit_, ", so ", share, " on each of the ",
          shard_count_, " shards) is reached: '", name, "' would be its ", mine + 1,
          "th live name on shard ", shard_, "; delete or release some"));
    }
  }
  r.creator = caller_;
  if (caller_ != 0) ++names_by_creator_[caller_];
  touched_.push_back(name);  // reclaimed at the end of the command if left idle
  created_.push_back(name);  // and erased if the command is refused
  return &resources_.emplace(name, std::move(r)).first->second;
}

void ShardState::EraseResource(absl::btree_map<std::string, Resource>::iterator it) {
  if (uint64_t creator = it->second.creator; creator != 0) {
    auto n = names_by_creator_.find(creator);
    if (n != names_by_creator_.end() && --n->second <= 0) names_by_creator_.erase(n);
  }
  resources_.erase(it);
}

void ShardState::EraseResource(const std::string& name) {
  auto it = resources_.find(name);
  if (it != resources_.end()) EraseResource(it);
}

void ShardState::CountNames() {
  names_by_creator_.clear();
  for (const auto& [name, r] : resources_) {
    if (r.creator != 0) ++names_by_creator_[r.creator];
  }
}

void ShardState::ReclaimTouched() {
  for (const std::string& name : touched_) {
    auto it = resources_.find(name);
    if (it == resources_.end()) continue;  // gone already (deleted, or noted twice)
    // The last change may not be counted yet (kept or not).
    if (auto settle = HooksOf(it->second.kind).settle) (this->*settle)(it->second);
    if (!it->second.idle()) continue;
    EraseResource(it);
  }
  touched_.clear();
}

// --- waiting ---

absl::Status ShardState::CheckCanPark(primitives::WaiterQueue& line,
                                      const std::string& name) const {
  if (static_cast<int64_t>(line.size()) >= limits_.max_waiters_per_resource) {
    return absl::ResourceExhaustedError(absl::StrCat("too many waiters on '", name, "' (limit ",
                                                     limits_.max_waiters_per_resource, ")"));
  }
  if (static_cast<int64_t>(waiters_by_id_.size()) >= limits_.max_waiters) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many pending waits on this server (limit ", limits_.max_waiters, ")"));
  }
  return absl::OkStatus();
}

uint64_t ShardState::Park(primitives::WaiterQueue& line, const std::string& name, Waiter w) {
  w.id = NextId(next_waiter_id_);
  if (w.deadline != kForever) AddTimer(w.deadline, TimerKind::kWaiter, w.id);
  if (w.op.id != 0) waiters_by_op_[w.op] = w.id;
  if (w.orphaned) ++orphans_;
  waiters_by_id_[w.id] = WaiterLoc{name, w.id};
  Ref(w.session, name);
  uint64_t id = w.id;
  line.PushBack(std::move(w));
  return id;
}

void ShardState::Unpark(const std::string& name, const Waiter& w) {
  if (w.deadline != kForever) RemoveTimer(w.deadline, TimerKind::kWaiter, w.id);
  if (w.op.id != 0) waiters_by_op_.erase(w.op);
  if (w.orphaned) --orphans_;
  waiters_by_id_.erase(w.id);
  if (!get_acks_.empty()) get_acks_.erase(w.id);
  Unref(w.session, name);
}

void ShardState::EndWait(const std::string& name, const Waiter& w, absl::Status status,
                         Effects& out) {
  Unpark(name, w);
  out.push_back(Reply{w.op, Result::Error(std::move(status))});
}

void ShardState::RemoveWaiter(const std::string& name, uint64_t id, EndReason why, Time now,
                              Effects& out) {
  auto rit = resources_.find(name);
  if (rit == resources_.end()) return;
  Resource& r = rit->second;
  primitives::WaiterQueue* line = r.LineHolding(id);
  if (line == nullptr) return;
  std::optional<Waiter> w = line->Remove(id);
  uint8_t which = w->line;
  if (which == kCondition && r.conditions[w->condition()].empty()) {
    r.conditions.erase(w->condition());
  }
  if (auto leaving = HooksOf(r.kind).waiter_leaving;
      leaving != nullptr && (this->*leaving)(name, r, *w, why, now, out)) {
    return;
  }

  absl::Status status;
  switch (why) {
    case EndReason::kCancelled:
      status = absl::CancelledError("cancelled by the client");
      break;
    case EndReason::kTimedOut:
      status = absl::DeadlineExceededError(absl::StrCat("timed out waiting for '", name, "'"));
      break;
    case EndReason::kSessionEnded:
      status = absl::AbortedError(absl::StrCat("session ", w->session, " ended while waiting"));
      break;
  }
  EndWait(name, *w, std::move(status), out);

  // Let the resource react to the departure.
  if (auto hook = HooksOf(r.kind).waiter_left) (this->*hook)(name, r, which, id, why, now, out);
  MaybeReclaim(name);
}

void ShardState::Do(const CancelWait&, OpRef origin, Time now, Effects& out) {
  auto by_op = waiters_by_op_.find(origin);
  if (by_op == waiters_by_op_.end()) return;  // already ended; its outcome is on the way
  auto loc = waiters_by_id_.find(by_op->second);
  std::string name = loc->second.name;
  RemoveWaiter(name, loc->second.waiter_id, EndReason::kCancelled, now, out);
}

// --- timers ---

void ShardState::AddTimer(Time at, TimerKind kind, uint64_t id) {
  timers_.insert(TimerKey{at, kind, id});
}

void ShardState::RemoveTimer(Time at, TimerKind kind, uint64_t id) {
  timers_.erase(TimerKey{at, kind, id});
}

Time ShardState::NextDeadline() const { return timers_.empty() ? kForever : timers_.begin()->at; }

void ShardState::OnTimer(Time now, Effects& out) {
  while (!timers_.empty() && timers_.begin()->at <= now) {
    TimerKey key = *timers_.begin();
    timers_.erase(timers_.begin());
    switch (key.kind) {
      case TimerKind::kWaiter: {
        auto loc = waiters_by_id_.find(key.id);
        if (loc == waiters_by_id_.end()) break;
        std::string name = loc->second.name;
        RemoveWaiter(name, key.id, EndReason::kTimedOut, now, out);
        break;
      }
      case TimerKind::kQueueDelay:
        PromoteDelayed(key.id, now, out);
        break;
      case TimerKind::kInFlight:
        ExpireInFlight(key.id, now, out);
        break;
      case TimerKind::kFutureExpiry:
        ExpireFuture(key.id);
        break;
      case TimerKind::kUserTimer:
        FireTimer(key.id, now, out);
        break;
      case TimerKind::kTask:
        OnTaskTimer(key.id, now, out);
        break;
      case TimerKind::kLease:
        ExpireLease(key.id, now, out);
        break;
      case TimerKind::kSession: {
        auto it = sessions_.find(key.id);
        if (it != sessions_.end() && it->second.expires <= now) EndSession(key.id, now, out);
        break;
      }
      case TimerKind::kOrphanGrace:
        orphan_grace_end_ = kForever;
        RollBackUnclaimed(now, out);
        break;
    }
  }
  created_.clear();
  ReclaimTouched();
}

// --- lifecycle ---

void ShardState::Do(const BeginShutdown&, OpRef, Time now, Effects& out) {
  shutting_down_ = true;
  // Waits a retry can claim stay in line (their RPCs end): if the server is
  // restarted, Recover gives them their grace.
  EndEveryWait(absl::UnavailableError("server shutting down"), now, out, /*keep_orphans=*/true);
}

void ShardState::Do(const Recover& c, OpRef, Time now, Effects& out) {
  // Every op recorded in the state belongs to the previous process: end
  // them all (their replies go nowhere). Clients retry: a retry with a
  // request_id finds what a lost reply had granted (replay caches), or takes
  // over its orphaned wait, which keeps its place in line for the grace.
  bool grace = c.orphan_grace > 0;
  Time until = grace ? AddSaturating(now, c.orphan_grace) : now;
  EndEveryWait(absl::UnavailableError("server restarted"), now, out, grace, until);
  if (orphan_grace_end_ != kForever) RemoveTimer(orphan_grace_end_, TimerKind::kOrphanGrace, 0);
  orphan_grace_end_ = kForever;
  if (!grace) {
    RollBackUnclaimed(now, out);
  } else if (orphans_ > 0 || !unclaimed_.empty()) {
    orphan_grace_end_ = until;
    AddTimer(until, TimerKind::kOrphanGrace, 0);
  }
  shutting_down_ = false;
  // No stream is attached any more, and no client could keep its session
  // alive while the server was down: every session starts a fresh TTL.
  for (auto& [id, session] : sessions_) {
    if (session.expires != kForever) RemoveTimer(session.expires, TimerKind::kSession, id);
    session.streams = 0;
    session.expires = AddSaturating(now, session.ttl);
    AddTimer(session.expires, TimerKind::kSession, id);
  }
  // Likewise leases of locks and semaphores (a holder could not refresh
  // while no leader served), and so that a new leader whose clock runs ahead
  // of its predecessor's does not end them early by the difference (etcd's
  // lessor does the same when a leader is promoted): at least a whole lease
  // from now. Never shortened.
  for (auto& [name, r] : resources_) {
    if (!r.is_pool()) continue;
    for (auto& [token, h] : r.pool().mutable_holdings()) {
      if (h.expires == kForever || h.lease <= 0) continue;
      Time renewed = AddSaturating(now, h.lease);
      if (renewed <= h.expires) continue;
      RemoveTimer(h.expires, TimerKind::kLease, token);
      h.expires = renewed;
      AddTimer(h.expires, TimerKind::kLease, token);
    }
  }
}

void ShardState::Do(const Tick&, OpRef, Time now, Effects& out) { OnTimer(now, out); }

void ShardState::EndEveryWait(const absl::Status& status, Time now, Effects& out, bool keep_orphans,
                              Time orphan_until) {
  for (auto it = resources_.begin(); it != resources_.end(); ++it) {
    const std::string& name = it->first;
    Resource& r = it->second;
    std::vector<Waiter> kept;
    for (Waiter& w : r.waiters().RemoveAll()) {
      if (!keep_orphans || !Orphanable(r, w)) {
        EndWait(name, w, status, out);
        continue;
      }
      if (w.op.id != 0) out.push_back(Reply{w.op, Result::Error(status)});
      Unpark(name, w);
      w.op = OpRef{};
      // Its client's deadline bounds it, and so does the grace; an orphan
      // of an earlier restart (its deadline already the earlier grace's
      // end) gets the new grace, since nobody could retry while the server
      // was down.
      if (orphan_until != kForever) {
        w.deadline = w.orphaned ? orphan_until : std::min(w.deadline, orphan_until);
      }
      w.orphaned = true;
      kept.push_back(std::move(w));
    }
    // Back in line in the same order (under new ids).
    bool orphans = !kept.empty();
    for (Waiter& w : kept) Park(r.waiters(), name, std::move(w));
    // A semaphore's head of line may have left: the orphans behind it that
    // now fit are granted (and await their claim).
    if (orphans && r.is_pool()) GrantWaiters(name, r.pool(), now, out);
    for (auto& [cond, line] : r.conditions) EndLine(name, line, status, out);
    r.conditions.clear();
    if (auto hook = HooksOf(r.kind).end_all) (this->*hook)(name, r, status, out);
    MaybeReclaim(name);
  }
}

void ShardState::EndLine(const std::string& name, primitives::WaiterQueue& line,
                         const absl::Status& status, Effects& out) {
  for (Waiter& w : line.RemoveAll()) EndWait(name, w, status, out);
}

// --- orphans ---

bool ShardState::Orphanable(const Resource& r, const Waiter& w) {
  if (w.request_id.empty() || w.line != kMain) return false;
  auto hook = HooksOf(r.kind).orphanable;
  return hook != nullptr && hook(w);
}

bool ShardState::Adopt(const std::string& name, primitives::WaiterQueue& line, uint64_t session,
                       const std::string& request_id, OpRef origin, Time deadline, Time now,
                       Effects& out) {
  if (request_id.empty()) return false;
  uint64_t id = 0;
  for (const auto& [seq, w] : line) {  // the session first: cheap
    // A live wait is taken over only within its session (request_ids are
    // scoped by session); an orphan also without one (a lease's wait).
    if (w.session == session && w.request_id == request_id && (w.orphaned || session != 0)) {
      id = w.id;
      break;
    }
  }
  if (id == 0) return false;
  Waiter* w = line.Find(id);
  if (w->deadline != kForever) RemoveTimer(w->deadline, TimerKind::kWaiter, id);
  if (w->orphaned) {
    w->orphaned = false;
    --orphans_;
  } else if (w->op.id != 0) {
    waiters_by_op_.erase(w->op);
    out.push_back(Reply{
        w->op, Result::Error(absl::AbortedError(absl::StrCat("this wait on '", name,
                                                             "' was taken over by a retry with the "
                                                             "same request_id '",
                                                             request_id, "'")))});
  }
  w->op = origin;
  w->deadline = deadline;
  waiters_by_op_[origin] = id;
  if (deadline != kForever) AddTimer(deadline, TimerKind::kWaiter, id);
  // A retry that will not wait gives the place up at once.
  if (deadline <= now) RemoveWaiter(name, id, EndReason::kTimedOut, now, out);
  return true;
}

absl::Status ShardState::Superseded(const std::string& name, uint64_t session,
                                    const std::string& request_id, bool nowait, Time now) {
  if (nowait || retried_.empty() || request_id.empty() || session == 0) {
    return absl::OkStatus();
  }
  auto it = retried_.find(GrantKey{name, session, request_id});
  if (it == retried_.end()) return absl::OkStatus();
  const bool fresh = it->second + kRetriedFor > now;
  retried_.erase(it);
  if (!fresh) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat(
      "request_id '", request_id, "' on '", name,
      "' was used moments ago by a call that did not wait and found nothing (the client's "
      "recovery of this very call, which it had given up on): this stale copy does not wait; a "
      "new call needs a new request_id"));
}

void ShardState::NoteNothingFound(const std::string& name, uint64_t session,
                                  const std::string& request_id, bool nowait, Time now) {
  if (!nowait || request_id.empty() || session == 0) return;
  GrantKey key{name, session, request_id};
  if (retried_.size() >= kMaxRetried && !retried_.contains(key)) {
    absl::erase_if(retried_, [&](const auto& e) { return e.second + kRetriedFor <= now; });
  }
  if (retried_.size() >= kMaxRetried && !retried_.contains(key)) {
    // All recent: the older half goes, ties in key order, so that every
    // replica drops the same ones.
    std::vector<Time> times;
    times.reserve(retried_.size());
    for (const auto& e : retried_) times.push_back(e.second);
    auto mid = times.begin() + static_cast<ptrdiff_t>(times.size() / 2);
    std::nth_element(times.begin(), mid, times.end());
    const Time cut = *mid;
    size_t drop = times.size() / 2;
    for (bool ties : {false, true}) {
      for (auto it = retried_.begin(); it != retried_.end() && drop > 0;) {
        if (ties ? it->second == cut : it->second < cut) {
          it = retried_.erase(it);
          --drop;
        } else {
          ++it;
        }
      }
    }
  }
  retried_[std::move(key)] = now;
}

void ShardState::NoteGrant(const std::string& name, const Waiter& w) {
  if (w.orphaned) unclaimed_.insert(GrantKey{name, w.session, w.request_id});
}

void ShardState::Claim(const std::string& name, uint64_t session, const std::string& request_id) {
  if (!unclaimed_.empty()) unclaimed_.erase(GrantKey{name, session, request_id});
}

void ShardState::RollBackUnclaimed(Time now, Effects& out) {
  absl::btree_set<GrantKey> unclaimed = std::move(unclaimed_);
  unclaimed_.clear();
  for (const GrantKey& k : unclaimed) {
    auto it = resources_.find(k.name);
    if (it == resources_.end()) continue;  // already given back (released, session ended)
    Resource& r = it->second;
    if (auto hook = HooksOf(r.kind).roll_back) (this->*hook)(k.name, r, k, now, out);
    MaybeReclaim(k.name);
  }
}

// --- session references ---

void ShardState::Ref(uint64_t session, const std::string& name) {
  if (session == 0) return;
  ++session_refs_[session][name];
}

void ShardState::Unref(uint64_t session, const std::string& name) {
  if (session == 0) return;
  auto s = session_refs_.find(session);
  if (s == session_refs_.end()) return;
  auto n = s->second.find(name);
  if (n == s->second.end()) return;
  if (--n->second <= 0) s->second.erase(n);
  if (s->second.empty()) session_refs_.erase(s);
}

absl::Status ShardState::CheckSession(uint64_t session) const {
  if (session == 0 || SessionAlive(session)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat("session ", session,
                                          " not found: it was closed, it expired, or it was "
                                          "never opened; open a new one with Sessions/Open"));
}

}  // namespace baton::apply
