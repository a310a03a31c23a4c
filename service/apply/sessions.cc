// Sessions: the commands a session's home shard handles (Open, KeepAlive,
// streams, Close, Describe, expiry) and the broadcasts every shard applies
// (SessionStarted, SessionEnded).
//
// Order matters: Open broadcasts SessionStarted before it replies, so any
// request the client sends after the reply reaches every shard after the
// broadcast (each shard's inbox is FIFO). A session that ends is removed from
// its home table first, then SessionEnded releases everything it owns on
// every shard.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Waiter;

namespace {

absl::Status SessionNotFound(uint64_t id) {
  return absl::NotFoundError(absl::StrCat("session ", id,
                                          " not found: it was closed, it expired, or it was never "
                                          "opened; open a new one with Sessions/Open"));
}

}  // namespace

SessionInfo ShardState::Info(uint64_t id, const Session& s, Time now) const {
  auto owner = session_owners_.find(id);
  return SessionInfo{id,
                     s.label,
                     s.ttl,
                     s.expires == kForever ? kForever : s.expires - now,
                     now - s.created,
                     s.streams,
                     owner == session_owners_.end() ? std::string() : owner->second};
}

void ShardState::Do(const OpenSession& c, OpRef origin, Time now, Effects& out) {
  if (static_cast<int64_t>(sessions_.size()) >= limits_.max_sessions) {
    return out.push_back(
        Reply{origin, Result::Error(absl::ResourceExhaustedError(absl::StrCat(
                          "too many open sessions (limit ", limits_.max_sessions, ")")))});
  }
  if (c.max_sessions > 0 && static_cast<uint64_t>(SessionsOwnedBy(c.owner)) >= c.max_sessions) {
    return out.push_back(Reply{
        origin, Result::Error(absl::ResourceExhaustedError(absl::StrCat(
                    "principal '", c.owner, "' has ", SessionsOwnedBy(c.owner),
                    " open sessions, its limit (sessions= in the policy): close sessions it no "
                    "longer needs")))});
  }
  // Ids are strided so that id % shard_count names the home shard. Made of
  // the command's random nonce (unguessable; a collision with a live session
  // moves to the next free id), or without one they follow cluster time so
  // that they are never reused across restarts.
  uint64_t id = 0;
  if (c.nonce != 0) {
    id = c.nonce - c.nonce % shard_count_ + shard_;
    while (id == 0 || live_sessions_.contains(id) || sessions_.contains(id)) id += shard_count_;
  } else {
    uint64_t seq = std::max(next_session_seq_, now > 0 ? static_cast<uint64_t>(now) : 0);
    next_session_seq_ = seq + 1;
    id = seq * shard_count_ + shard_;
  }
  Session s;
  s.label = c.label;
  s.ttl = c.ttl;
  s.created = now;
  s.expires = AddSaturating(now, c.ttl);
  AddTimer(s.expires, TimerKind::kSession, id);
  live_sessions_.insert(id);
  AddOwner(id, c.owner);
  SessionInfo info = Info(id, s, now);
  if (observer_ != nullptr) observer_->SessionOpened(id, s.ttl, s.label);
  sessions_.emplace(id, std::move(s));
  out.push_back(Broadcast{SessionStarted{id, c.owner}});
  out.push_back(Answer(c, origin, info));
}

void ShardState::Do(const KeepAlive& c, OpRef origin, Time now, Effects& out) {
  auto it = sessions_.find(c.session);
  if (it == sessions_.end()) {
    return out.push_back(Reply{origin, Result::Error(SessionNotFound(c.session))});
  }
  Session& s = it->second;
  if (s.streams == 0) {
    RemoveTimer(s.expires, TimerKind::kSession, c.session);
    s.expires = AddSaturating(now, s.ttl);
    AddTimer(s.expires, TimerKind::kSession, c.session);
  }
  out.push_back(Answer(c, origin, Info(c.session, s, now)));
}

void ShardState::Do(const AttachStream& c, OpRef origin, Time now, Effects& out) {
  auto it = sessions_.find(c.session);
  if (it == sessions_.end()) {
    return out.push_back(Reply{origin, Result::Error(SessionNotFound(c.session))});
  }
  Session& s = it->second;
  if (s.streams++ == 0) {
    RemoveTimer(s.expires, TimerKind::kSession, c.session);
    s.expires = kForever;
  }
  out.push_back(Answer(c, origin, Info(c.session, s, now)));
}

void ShardState::Do(const DetachStream& c, OpRef, Time now, Effects&) {
  auto it = sessions_.find(c.session);
  if (it == sessions_.end()) return;
  Session& s = it->second;
  if (s.streams > 0 && --s.streams == 0) {
    // The TTL counts again from now: a grace period to reconnect.
    s.expires = AddSaturating(now, s.ttl);
    AddTimer(s.expires, TimerKind::kSession, c.session);
  }
}

void ShardState::Do(const CloseSession& c, OpRef origin, Time now, Effects& out) {
  if (!sessions_.contains(c.session)) {
    return out.push_back(Reply{origin, Result::Error(SessionNotFound(c.session))});
  }
  EndSession(c.session, now, out);
  out.push_back(Answer(c, origin, Done{}));
}

void ShardState::Do(const DescribeSession& c, OpRef origin, Time now, Effects& out) {
  auto it = sessions_.find(c.session);
  if (it == sessions_.end()) {
    return out.push_back(Reply{origin, Result::Error(SessionNotFound(c.session))});
  }
  out.push_back(Answer(c, origin, Info(c.session, it->second, now)));
}

void ShardState::EndSession(uint64_t session, Time now, Effects& out) {
  auto it = sessions_.find(session);
  if (it->second.expires != kForever) {
    RemoveTimer(it->second.expires, TimerKind::kSession, session);
  }
  if (observer_ != nullptr) {
    observer_->SessionEnded(session,
                            it->second.expires <= now ? SessionEnd::kExpired : SessionEnd::kClosed,
                            now - it->second.created);
  }
  sessions_.erase(it);
  out.push_back(Broadcast{SessionEnded{session}});
  Do(SessionEnded{session}, OpRef{}, now, out);
}

void ShardState::Do(const SessionStarted& c, OpRef, Time, Effects&) {
  live_sessions_.insert(c.session);
  AddOwner(c.session, c.owner);
}

void ShardState::AddOwner(uint64_t session, const std::string& owner) {
  if (owner.empty()) return;
  auto [it, fresh] = session_owners_.emplace(session, owner);
  if (fresh) ++owned_sessions_[owner];
}

void ShardState::DropOwner(uint64_t session) {
  auto it = session_owners_.find(session);
  if (it == session_owners_.end()) return;
  auto count = owned_sessions_.find(it->second);
  if (count != owned_sessions_.end() && --count->second <= 0) owned_sessions_.erase(count);
  session_owners_.erase(it);
}

const std::string* ShardState::SessionOwner(uint64_t session) const {
  static const std::string* const kNobody = new std::string();
  if (!live_sessions_.contains(session)) return nullptr;
  auto it = session_owners_.find(session);
  return it == session_owners_.end() ? kNobody : &it->second;
}

void ShardState::Do(const SessionEnded& c, OpRef, Time now, Effects& out) {
  live_sessions_.erase(c.session);
  DropOwner(c.session);
  auto refs = session_refs_.find(c.session);
  if (refs == session_refs_.end()) return;
  // Copy the names: releasing edits session_refs_.
  std::vector<std::string> names;
  for (const auto& [name, n] : refs->second) names.push_back(name);
  for (const std::string& name : names) {
    auto it = resources_.find(name);
    if (it == resources_.end()) continue;
    // The session's waits, in every line of the resource, oldest first.
    std::vector<uint64_t> ids;
    auto collect = [&](const primitives::WaiterQueue& line) {
      for (const auto& [seq, w] : line) {
        if (w.session == c.session) ids.push_back(w.id);
      }
    };
    Resource& r = it->second;
    for (uint8_t l : {kMain, kPutters, kJoiners}) {
      if (const primitives::WaiterQueue* line = r.LineOf(l, "")) collect(*line);
    }
    for (const auto& [cond, line] : r.conditions) collect(line);
    for (uint64_t id : ids) RemoveWaiter(name, id, EndReason::kSessionEnded, now, out);
    // What it held here goes back. (Resources are reclaimed only at the end
    // of the command, so `r` is still there.)
    if (auto hook = HooksOf(r.kind).session_ended) (this->*hook)(name, r, c.session, now, out);
    MaybeReclaim(name);
  }
  session_refs_.erase(c.session);
}

}  // namespace baton::apply
