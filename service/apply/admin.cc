// Inspection: ListResources and DescribeResource.
#include "absl/container/btree_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

void ShardState::Do(const ListResources& c, OpRef origin, Time, Effects& out) {
  ResourceList list;
  auto it = !c.after.empty() && c.after >= c.prefix ? resources_.upper_bound(c.after)
                                                    : resources_.lower_bound(c.prefix);
  for (; it != resources_.end() && absl::StartsWith(it->first, c.prefix); ++it) {
    Resource& r = it->second;
    if (c.kind && *c.kind != r.kind) continue;
    if (list.resources.size() >= c.limit) {
      list.more = true;
      break;
    }
    // "Holders": what is held now. Locks and semaphores: holdings; queues:
    // items in flight.
    uint32_t holders = 0;
    if (r.is_pool()) {
      holders = static_cast<uint32_t>(r.pool().holdings().size());
    } else if (r.kind == Kind::kQueue) {
      holders = static_cast<uint32_t>(r.queue().in_flight());
    } else if (r.kind == Kind::kTasks) {
      for (const auto& [seq, t] : r.tasks().tasks) {
        holders += t.state == primitives::TaskState::kRunning ? 1 : 0;
      }
    }
    list.resources.push_back(
        ResourceSummary{it->first, r.kind, holders, static_cast<uint32_t>(r.waiters().size())});
  }
  out.push_back(Answer(c, origin, std::move(list)));
}

void ShardState::Do(const DescribeResource& c, OpRef origin, Time now, Effects& out) {
  auto it = resources_.find(c.name);
  if (it == resources_.end()) {
    return out.push_back(Reply{
        origin, Result::Error(absl::NotFoundError(absl::StrCat(
                    "no resource named '", c.name,
                    "': never used, or reclaimed because it was idle in its default state")))});
  }
  Resource& r = it->second;
  ResourceInfo info;
  info.name = c.name;
  info.kind = r.kind;
  info.waiters = static_cast<uint32_t>(r.waiters().size());
  if (!r.waiters().empty()) info.oldest_wait = now - r.waiters().front().since;
  switch (r.kind) {
    case Kind::kEvent:
      info.event_set = r.event().is_set();
      info.watchers = static_cast<uint32_t>(r.event().watchers().size());
      break;
    case Kind::kLock:
    case Kind::kSemaphore: {
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
        if (w.condition_outcome == 0) continue;
        ConditionSummary& cs = conds[w.condition];
        cs.condition = w.condition;
        ++cs.reacquiring;
      }
      for (auto& [cond, cs] : conds) info.conditions.push_back(std::move(cs));
      break;
    }
    case Kind::kQueue: {
      primitives::Queue& q = r.queue();
      QueueSummary& s = info.queue;
      s.options = q.options();
      s.ready = q.ready();
      s.delayed = q.delayed();
      s.in_flight = q.in_flight();
      s.dead = q.dead();
      s.unfinished = q.unfinished();
      if (auto oldest = q.OldestEnqueued()) s.oldest_age = now - *oldest;
      s.getters = static_cast<uint32_t>(q.getters.size());
      s.putters = static_cast<uint32_t>(q.putters.size());
      s.joiners = static_cast<uint32_t>(q.joiners.size());
      s.total_put = q.total_put;
      s.total_acked = q.total_acked;
      for (const auto& [receipt, f] : q.in_flight_items()) {
        info.holders.push_back(HolderInfo{receipt, f.session, 1, now - f.item.enqueued,
                                          f.expires == kForever ? kForever : f.expires - now, ""});
      }
      break;
    }
    case Kind::kFuture: {
      const primitives::Future& f = r.future();
      info.future_state = f.value().state;
      if (f.done()) info.retained_for = f.expires() == kForever ? kForever : f.expires() - now;
      break;
    }
    case Kind::kTasks: {
      for (const auto& [seq, t] : r.tasks().tasks) {
        if (t.done()) {
          ++info.tasks_done;
        } else if (t.state == primitives::TaskState::kRunning) {
          ++info.tasks_running;
          info.holders.push_back(HolderInfo{seq, t.session, 1, 0,
                                            t.timer_at == kForever ? kForever : t.timer_at - now,
                                            TaskId(c.name, seq)});
        } else {
          ++info.tasks_pending;
        }
      }
      break;
    }
    case Kind::kTimer: {
      const primitives::Timer& t = r.timer();
      info.due_in = t.done ? -1 : t.due - now;
      info.every = t.every;
      info.fired = t.fired;
      info.since_fired = t.last_fired < 0 ? -1 : now - t.last_fired;
      auto action = timer_actions_.find(c.name);
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
      break;
    }
    case Kind::kBarrier: {
      const primitives::Barrier& b = r.barrier();
      info.parties = b.parties();
      info.arrived = static_cast<uint32_t>(b.waiters().size());
      info.broken = b.broken();
      info.cycles = b.cycles();
      break;
    }
  }
  out.push_back(Answer(c, origin, std::move(info)));
}

}  // namespace baton::apply
