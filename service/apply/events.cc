// Events: Set, Clear, Wait, Watch.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Event;
using primitives::Waiter;

void ShardState::NotifyWatchers(const Event& e, Effects& out) {
  for (auto [shard, id] : e.watchers()) {
    out.push_back(Reply{OpRef{shard, id}, Result::Ok(EventChange{e.is_set()})});
  }
}

void ShardState::Do(const SetEvent& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kEvent, /*create=*/true, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  Event& e = (*r)->event();
  bool was_set = e.is_set();
  std::vector<Waiter> woken = e.Set();
  for (const Waiter& w : woken) {
    Unpark(c.name, w);
    out.push_back(Reply{w.op, Result::Ok(EventOutcome{false, true, 0, GrantHow::kAfterWait})});
  }
  if (!was_set) NotifyWatchers(e, out);
  out.push_back(
      Answer(c, origin, EventOutcome{was_set, true, static_cast<uint32_t>(woken.size())}));
}

void ShardState::Do(const ClearEvent& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kEvent, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  bool was_set = false;
  if (*r != nullptr) {
    Event& e = (*r)->event();
    was_set = e.is_set();
    e.Clear();
    if (was_set) NotifyWatchers(e, out);
    MaybeReclaim(c.name);
  }
  out.push_back(Answer(c, origin, EventOutcome{was_set, false}));
}

void ShardState::Do(const WaitEvent& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, Kind::kEvent, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r != nullptr && (*r)->event().is_set()) {
    out.push_back(Answer(c, origin, EventOutcome{true, true, 0, GrantHow::kImmediate}));
    return;
  }
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(absl::StrCat("event '", c.name, "' is not set")));
  }
  if (*r == nullptr) {
    r = Lookup(c.name, Kind::kEvent, /*create=*/true, 0);
    if (!r.ok()) return fail(r.status());
  }
  if (absl::Status s = CheckCanPark(**r, c.name); !s.ok()) {
    return fail(s);
  }
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.since = now;
  w.deadline = c.deadline;
  Park(**r, c.name, std::move(w));
}

void ShardState::Do(const WatchEvent& c, OpRef origin, Time, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, Kind::kEvent, /*create=*/true, 0);
  if (!r.ok()) return fail(r.status());
  Event& e = (*r)->event();
  e.AddWatcher(origin);
  out.push_back(Answer(c, origin, EventChange{e.is_set()}));
}

void ShardState::Do(const UnwatchEvent& c, OpRef origin, Time, Effects&) {
  auto it = resources_.find(c.name);
  if (it == resources_.end() || it->second.kind != Kind::kEvent) return;
  it->second.event().RemoveWatcher(origin);
  MaybeReclaim(c.name);
}

// Describe: the event.
ShardState::PrimitiveState ShardState::EventBlank(int64_t) { return primitives::Event(); }

void ShardState::DescribeEvent(const std::string&, Resource& r, Time, ResourceInfo& info) {
  info.event_set = r.event().is_set();
  info.watchers = static_cast<uint32_t>(r.event().watchers().size());
}

// Shutdown and restart: every watch ends too.
void ShardState::EventEndAll(const std::string&, Resource& r, const absl::Status& status,
                             Effects& out) {
  auto watchers = r.event().watchers();
  for (auto [shard, id] : watchers) {
    out.push_back(Reply{OpRef{shard, id}, Result::Error(status)});
    r.event().RemoveWatcher(OpRef{shard, id});
  }
}

}  // namespace baton::apply
