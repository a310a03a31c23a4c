// ShardState: dispatch, resources, the waiting mechanism and timers. The
// commands of each primitive live in permits.cc, events.cc, sessions.cc and
// admin.cc.
#include "service/apply/shard_state.h"

#include "absl/strings/str_cat.h"

namespace baton::apply {

using primitives::Waiter;

namespace {

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kLock:
      return "lock";
    case Kind::kSemaphore:
      return "semaphore";
    case Kind::kEvent:
      return "event";
  }
  return "resource";
}

}  // namespace

primitives::WaiterQueue& ShardState::Resource::waiters() {
  if (auto* p = std::get_if<primitives::PermitPool>(&state)) return p->waiters();
  return std::get<primitives::Event>(state).waiters();
}

ShardState::ShardState(uint32_t shard, uint32_t shard_count, Limits limits, int64_t token_offset,
                       uint64_t id_base)
    : shard_(shard),
      shard_count_(shard_count),
      limits_(limits),
      token_offset_(token_offset),
      next_session_seq_(id_base) {}

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
  std::visit([&](const auto& c) { Do(c, origin, now, out); }, command);
}

// --- resources ---

absl::StatusOr<ShardState::Resource*> ShardState::Lookup(const std::string& name, Kind kind,
                                                         bool create, int64_t capacity) {
  auto it = resources_.find(name);
  if (it != resources_.end()) {
    if (it->second.kind != kind) {
      return absl::FailedPreconditionError(absl::StrCat("'", name, "' is a ",
                                                        KindName(it->second.kind), ", not a ",
                                                        KindName(kind)));
    }
    return &it->second;
  }
  if (!create) return nullptr;
  if (static_cast<int64_t>(resources_.size()) >= limits_.max_resources) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many live resources (limit ", limits_.max_resources,
                     " per shard): release or delete some, or raise --max_resources"));
  }
  Resource r{kind, primitives::Event()};
  if (kind != Kind::kEvent) r.state.emplace<primitives::PermitPool>(capacity);
  return &resources_.emplace(name, std::move(r)).first->second;
}

void ShardState::MaybeReclaim(const std::string& name) {
  auto it = resources_.find(name);
  if (it == resources_.end()) return;
  bool idle = std::visit([](const auto& s) { return s.idle(); }, it->second.state);
  if (idle) resources_.erase(it);
}

// --- waiting ---

absl::Status ShardState::CheckCanPark(Resource& r, const std::string& name) const {
  if (static_cast<int64_t>(r.waiters().size()) >= limits_.max_waiters_per_resource) {
    return absl::ResourceExhaustedError(absl::StrCat("too many waiters on '", name, "' (limit ",
                                                     limits_.max_waiters_per_resource, ")"));
  }
  if (static_cast<int64_t>(waiters_by_id_.size()) >= limits_.max_waiters) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many pending waits on this server (limit ", limits_.max_waiters,
                     " per shard)"));
  }
  return absl::OkStatus();
}

void ShardState::Park(Resource& r, const std::string& name, Waiter w) {
  w.id = next_waiter_id_++;
  if (w.deadline != kForever) AddTimer(w.deadline, TimerKind::kWaiter, w.id);
  if (w.op.id != 0) waiters_by_op_[w.op] = WaiterLoc{name, w.id};
  waiters_by_id_[w.id] = WaiterLoc{name, w.id};
  Ref(w.session, name);
  r.waiters().PushBack(std::move(w));
}

void ShardState::Unpark(const std::string& name, const Waiter& w) {
  if (w.deadline != kForever) RemoveTimer(w.deadline, TimerKind::kWaiter, w.id);
  if (w.op.id != 0) waiters_by_op_.erase(w.op);
  waiters_by_id_.erase(w.id);
  Unref(w.session, name);
}

void ShardState::EndWait(const std::string& name, const Waiter& w, absl::Status status,
                         Effects& out) {
  Unpark(name, w);
  out.push_back(Reply{w.op, Result::Error(std::move(status))});
}

void ShardState::Do(const CancelWait&, OpRef origin, Time now, Effects& out) {
  auto loc = waiters_by_op_.find(origin);
  if (loc == waiters_by_op_.end()) return;  // already ended; its outcome is on the way
  std::string name = loc->second.name;
  uint64_t id = loc->second.waiter_id;
  Resource& r = resources_.at(name);
  std::optional<Waiter> w = r.waiters().Remove(id);
  EndWait(name, *w, absl::CancelledError("cancelled by the client"), out);
  // The waiter may have been the head of a semaphore's line, holding back
  // smaller requests behind it.
  if (r.kind != Kind::kEvent) GrantWaiters(name, r.pool(), now, out);
  MaybeReclaim(name);
}

// --- timers ---

void ShardState::AddTimer(Time at, TimerKind kind, uint64_t id) {
  timers_.insert(TimerKey{at, kind, id});
}

void ShardState::RemoveTimer(Time at, TimerKind kind, uint64_t id) {
  timers_.erase(TimerKey{at, kind, id});
}

Time ShardState::NextDeadline() const {
  return timers_.empty() ? kForever : timers_.begin()->at;
}

void ShardState::OnTimer(Time now, Effects& out) {
  while (!timers_.empty() && timers_.begin()->at <= now) {
    TimerKey key = *timers_.begin();
    timers_.erase(timers_.begin());
    switch (key.kind) {
      case TimerKind::kWaiter: {
        auto loc = waiters_by_id_.find(key.id);
        if (loc == waiters_by_id_.end()) break;
        std::string name = loc->second.name;
        Resource& r = resources_.at(name);
        std::optional<Waiter> w = r.waiters().Remove(key.id);
        // EndWait removes the timer again: harmless, it is already gone.
        EndWait(name, *w, absl::DeadlineExceededError("timed out waiting for '" + name + "'"),
                out);
        if (r.kind != Kind::kEvent) GrantWaiters(name, r.pool(), now, out);
        MaybeReclaim(name);
        break;
      }
      case TimerKind::kLease:
        ExpireLease(key.id, now, out);
        break;
      case TimerKind::kSession: {
        auto it = sessions_.find(key.id);
        if (it != sessions_.end() && it->second.expires <= now) EndSession(key.id, now, out);
        break;
      }
    }
  }
}

// --- lifecycle ---

void ShardState::Do(const BeginShutdown&, OpRef, Time, Effects& out) {
  shutting_down_ = true;
  for (auto it = resources_.begin(); it != resources_.end();) {
    const std::string& name = it->first;
    Resource& r = it->second;
    for (Waiter& w : r.waiters().RemoveAll()) {
      EndWait(name, w, absl::UnavailableError("server shutting down"), out);
    }
    if (r.kind == Kind::kEvent) {
      auto watchers = r.event().watchers();
      for (auto [shard, id] : watchers) {
        out.push_back(Reply{OpRef{shard, id},
                            Result::Error(absl::UnavailableError("server shutting down"))});
        r.event().RemoveWatcher(OpRef{shard, id});
      }
    }
    bool idle = std::visit([](const auto& s) { return s.idle(); }, r.state);
    it = idle ? resources_.erase(it) : std::next(it);
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
