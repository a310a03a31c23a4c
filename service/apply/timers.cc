// Timers: Schedule, Cancel, and firing. A timer's action is a command for
// the resource it acts on; firing forwards it to that resource's shard with
// no reply expected (Forward effect), and re-arms a periodic timer.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Timer;

void ShardState::Do(const ScheduleTimer& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto existing = Lookup(c.name, Kind::kTimer, /*create=*/false, 0);
  if (!existing.ok()) return fail(existing.status());
  if (*existing != nullptr) {
    if (!c.replace && !(*existing)->timer().done) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "timer '", c.name, "' is scheduled already; Cancel it first, or pass replace")));
    }
    DropTimer(c.name);
  }
  auto r = Lookup(c.name, Kind::kTimer, /*create=*/true, 0);
  if (!r.ok()) return fail(r.status());
  Timer& t = (*r)->timer();
  t = Timer{};
  t.due = std::max(c.due, now);
  t.every = c.every;
  t.created = now;
  t.seq = NextId(next_timer_seq_);
  AddTimer(t.due, TimerKind::kUserTimer, t.seq);
  timer_names_[t.seq] = c.name;
  timer_actions_[c.name] = {c.target, c.action};
  out.push_back(Answer(c, origin, TimerScheduled{t.due - now}));
}

void ShardState::Do(const CancelTimer& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kTimer, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) return out.push_back(Answer(c, origin, TimerCancelled{false, 0}));
  const Timer& t = (*r)->timer();
  bool cancelled = !t.done;
  uint64_t fired = t.fired;
  if (cancelled) DropTimer(c.name);  // a done one-shot timer stays to be described
  out.push_back(Answer(c, origin, TimerCancelled{cancelled, fired}));
}

void ShardState::DropTimer(const std::string& name) {
  auto it = resources_.find(name);
  if (it == resources_.end()) return;
  const Timer& t = it->second.timer();
  RemoveTimer(t.due, TimerKind::kUserTimer, t.seq);
  timer_names_.erase(t.seq);
  timer_actions_.erase(name);
  EraseResource(it);
}

void ShardState::FireTimer(uint64_t seq, Time now, Effects& out) {
  auto n = timer_names_.find(seq);
  if (n == timer_names_.end()) return;
  std::string name = n->second;
  auto it = resources_.find(name);
  if (it == resources_.end() || it->second.kind != Kind::kTimer) return;
  Timer& t = it->second.timer();
  if (t.done) {  // its retention after firing is over
    DropTimer(name);
    return;
  }
  auto action = timer_actions_.find(name);  // kept after firing, for Describe
  if (action != timer_actions_.end() && action->second.second != nullptr) {
    out.push_back(Forward{action->second.first, *action->second.second});
  }
  Time next = t.Fire(now);
  if (next == kForever) {
    // Keep a fired one-shot timer visible for a while, then reclaim it.
    t.due = AddSaturating(now, limits_.future_retention);
  }
  AddTimer(t.due, TimerKind::kUserTimer, t.seq);
}

// Describe: the timer and its action.
ShardState::PrimitiveState ShardState::TimerBlank(int64_t) { return primitives::Timer(); }

void ShardState::DescribeTimer(const std::string& name, Resource& r, Time now, ResourceInfo& info) {
  const primitives::Timer& t = r.timer();
  info.due_in = t.done ? -1 : t.due - now;
  info.every = t.every;
  info.fired = t.fired;
  info.since_fired = t.last_fired < 0 ? -1 : now - t.last_fired;
  auto action = timer_actions_.find(name);
  if (action != timer_actions_.end() && action->second.second != nullptr) {
    const Command& cmd = *action->second.second;
    const char* verb = std::holds_alternative<SetEvent>(cmd)         ? "set_event"
                       : std::holds_alternative<ClearEvent>(cmd)     ? "clear_event"
                       : std::holds_alternative<PutItems>(cmd)       ? "put"
                       : std::holds_alternative<CompleteFuture>(cmd) ? "set_future"
                       : std::holds_alternative<SubmitTask>(cmd)     ? "submit_task"
                                                                     : "action";
    info.action = absl::StrCat(verb, " ", action->second.first);
  }
}

}  // namespace baton::apply
