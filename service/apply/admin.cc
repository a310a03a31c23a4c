// Inspection: ListResources and DescribeResource.
#include <algorithm>

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
    auto count = HooksOf(r.kind).holders;
    uint32_t holders = count == nullptr ? 0 : count(r);
    list.resources.push_back(
        ResourceSummary{it->first, r.kind, holders, static_cast<uint32_t>(r.waiters().size())});
  }
  out.push_back(Answer(c, origin, std::move(list)));
}

ShardState::Gauges ShardState::Measure() {
  Gauges g;
  for (auto& [name, r] : resources_) {
    Gauges::PerKind& k = g.kinds[static_cast<size_t>(r.kind)];
    ++k.resources;
    auto count = HooksOf(r.kind).holders;
    if (count != nullptr) k.holders += count(r);
    k.waiters += r.waiters().size();
    for (const auto& [condition, line] : r.conditions) k.waiters += line.size();
    if (r.kind == Kind::kQueue) {
      const primitives::Queue& q = r.queue();
      g.queue_ready += q.ready();
      g.queue_delayed += q.delayed();
      g.queue_in_flight += q.in_flight();
      g.queue_dead += q.dead();
    }
  }
  g.orphans = static_cast<uint64_t>(std::max<int64_t>(0, orphans_));
  g.timers = timers_.size();
  return g;
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
  if (orphans_ > 0) {
    for (const auto& [seq, w] : r.waiters()) info.orphaned_waiters += w.orphaned ? 1 : 0;
  }
  for (auto k = unclaimed_.lower_bound(GrantKey{c.name, 0, ""});
       k != unclaimed_.end() && k->name == c.name; ++k) {
    ++info.unclaimed_grants;
  }
  (this->*HooksOf(r.kind).describe)(c.name, r, now, info);
  out.push_back(Answer(c, origin, std::move(info)));
}

}  // namespace baton::apply
