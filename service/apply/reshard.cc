#include "service/apply/reshard.h"

#include <algorithm>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"
#include "service/apply/state_codec.h"

namespace baton::apply {

struct Resharder {
  using States = std::vector<std::unique_ptr<ShardState>>;

  // The id counters and the fencing high-water mark of the new shards, from
  // those of the old ones (before their maps are moved out).
  static void Counters(const States& from, States& to) {
    const uint64_t n = from.size();
    const uint64_t m = to.size();
    // Every id shard i handed out from counter c is seq * n + i with
    // seq < c, so below c * n + n; new ids start above that.
    auto above = [&](uint64_t ShardState::*counter) {
      uint64_t bound = 0;
      for (const auto& s : from) bound = std::max(bound, (*s.*counter) * n + n);
      return bound / m + 1;
    };
    for (auto& t : to) {
      t->next_session_seq_ = above(&ShardState::next_session_seq_);
      t->next_waiter_id_ = above(&ShardState::next_waiter_id_);
      t->next_delivery_ = above(&ShardState::next_delivery_);
      t->next_item_id_ = above(&ShardState::next_item_id_);
      t->next_receipt_ = above(&ShardState::next_receipt_);
      t->next_future_timer_ = above(&ShardState::next_future_timer_);
      t->next_timer_seq_ = above(&ShardState::next_timer_seq_);
      t->next_task_seq_ = above(&ShardState::next_task_seq_);
      for (const auto& s : from) {
        t->last_token_ = std::max(t->last_token_, s->last_token_);
        t->shutting_down_ = t->shutting_down_ || s->shutting_down_;
      }
    }
  }

  // Moves everything `s` holds to the shards of `to`.
  static absl::Status Move(ShardState& s, States& to) {
    const auto m = static_cast<uint32_t>(to.size());
    auto owner = [&](const std::string& name) -> ShardState& {
      return *to[ShardState::ShardOfName(name, m)];
    };
    auto twice = [&](const char* what, const auto& key) {
      return absl::FailedPreconditionError(
          absl::StrCat("two shards hold ", what, " ", key,
                       ": this state was saved by a build whose ids were unique per shard only, "
                       "so it can be restarted only with the shard count it was saved with"));
    };

    // Timers first: finding where each goes needs the maps below, which
    // are moved out after.
    for (const ShardState::TimerKey& k : s.timers_) {
      std::optional<uint32_t> target = TimerTarget(s, k, m);
      if (target) to[*target]->timers_.insert(k);
    }

    for (auto& [name, r] : s.resources_) {
      if (!owner(name).resources_.emplace(name, std::move(r)).second)
        return twice("resource", name);
    }
    for (const auto& [op, id] : s.waiters_by_op_) {
      auto loc = s.waiters_by_id_.find(id);
      if (loc == s.waiters_by_id_.end()) continue;
      owner(loc->second.name).waiters_by_op_.emplace(op, id);
    }
    for (auto& [id, loc] : s.waiters_by_id_) {
      if (!owner(loc.name).waiters_by_id_.emplace(id, loc).second) return twice("waiter", id);
    }
    struct NameMap {
      absl::flat_hash_map<uint64_t, std::string> ShardState::*map;
      const char* what;
    };
    for (const NameMap& nm :
         {NameMap{&ShardState::lease_names_, "lease"},
          NameMap{&ShardState::receipt_names_, "receipt"},
          NameMap{&ShardState::delayed_names_, "delayed item"},
          NameMap{&ShardState::future_names_, "future timer"},
          NameMap{&ShardState::timer_names_, "timer"}, NameMap{&ShardState::task_names_, "task"}}) {
      for (auto& [id, name] : s.*nm.map) {
        if (!(owner(name).*nm.map).emplace(id, name).second) return twice(nm.what, id);
      }
    }
    for (auto& [timer, action] : s.timer_actions_) {
      if (!owner(timer).timer_actions_.emplace(timer, action).second) return twice("timer", timer);
    }
    for (auto& [id, session] : s.sessions_) {
      ShardState& home = *to[ShardState::ShardOfSession(id, m)];
      if (!home.sessions_.emplace(id, std::move(session)).second) return twice("session", id);
    }
    for (uint64_t id : s.live_sessions_) {
      for (auto& t : to) t->live_sessions_.insert(id);
    }
    for (const auto& [id, owner] : s.session_owners_) {
      for (auto& t : to) t->AddOwner(id, owner);
    }
    for (const auto& [session, names] : s.session_refs_) {
      for (const auto& [name, n] : names) owner(name).session_refs_[session][name] += n;
    }
    for (const ShardState::GrantKey& k : s.unclaimed_) owner(k.name).unclaimed_.insert(k);
    for (const auto& [k, at] : s.retried_) owner(k.name).retried_.emplace(k, at);
    for (auto& t : to) t->CountNames();
    return absl::OkStatus();
  }

  // The new shard a timer of `s` belongs to; nullopt for the orphans' grace
  // (set again by Finish) and for a timer whose object is gone (firing it
  // would do nothing).
  static std::optional<uint32_t> TimerTarget(const ShardState& s, const ShardState::TimerKey& k,
                                             uint32_t m) {
    using TK = ShardState::TimerKind;
    const absl::flat_hash_map<uint64_t, std::string>* names = nullptr;
    switch (k.kind) {
      case TK::kWaiter: {
        auto it = s.waiters_by_id_.find(k.id);
        if (it == s.waiters_by_id_.end()) return std::nullopt;
        return ShardState::ShardOfName(it->second.name, m);
      }
      case TK::kSession:
        return ShardState::ShardOfSession(k.id, m);
      case TK::kOrphanGrace:
        return std::nullopt;
      case TK::kLease:
        names = &s.lease_names_;
        break;
      case TK::kQueueDelay:
        names = &s.delayed_names_;
        break;
      case TK::kInFlight:
        names = &s.receipt_names_;
        break;
      case TK::kFutureExpiry:
        names = &s.future_names_;
        break;
      case TK::kUserTimer:
        names = &s.timer_names_;
        break;
      case TK::kTask:
        names = &s.task_names_;
        break;
    }
    auto it = names->find(k.id);
    if (it == names->end()) return std::nullopt;
    return ShardState::ShardOfName(it->second, m);
  }

  // What each new shard counts of what it now holds.
  static void Finish(ShardState& t, Time grace_end) {
    t.queue_bytes_ = 0;
    for (auto& [name, r] : t.resources_) {
      if (r.kind == Kind::kQueue) t.queue_bytes_ += r.queue().accounted_bytes;
    }
    t.orphans_ = 0;
    for (const auto& [id, loc] : t.waiters_by_id_) {
      primitives::WaiterQueue* line = t.resources_.at(loc.name).LineHolding(id);
      if (line != nullptr && line->Find(id)->orphaned) ++t.orphans_;
    }
    t.orphan_grace_end_ = kForever;
    if (grace_end != kForever && (t.orphans_ > 0 || !t.unclaimed_.empty())) {
      t.orphan_grace_end_ = grace_end;
      t.AddTimer(grace_end, ShardState::TimerKind::kOrphanGrace, 0);
    }
  }

  static absl::StatusOr<std::vector<std::string>> Run(const std::vector<std::string>& states,
                                                      uint32_t to_count, const Limits& limits) {
    if (states.empty() || to_count == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot reshard ", states.size(), " shards into ", to_count));
    }
    const auto n = static_cast<uint32_t>(states.size());
    States from;
    Time grace_end = kForever;
    for (uint32_t i = 0; i < n; ++i) {
      from.push_back(std::make_unique<ShardState>(i, n, limits));
      if (absl::Status st = RestoreState(states[i], from.back().get()); !st.ok()) {
        return absl::Status(st.code(), absl::StrCat("shard ", i, " of ", n, ": ", st.message()));
      }
      grace_end = std::min(grace_end, from.back()->orphan_grace_end_);
    }
    States to;
    for (uint32_t j = 0; j < to_count; ++j) {
      to.push_back(std::make_unique<ShardState>(j, to_count, limits));
    }
    Counters(from, to);
    for (auto& s : from) {
      if (absl::Status st = Move(*s, to); !st.ok()) return st;
    }
    std::vector<std::string> out;
    for (auto& t : to) {
      Finish(*t, grace_end);
      out.push_back(SaveState(*t));
    }
    return out;
  }
};

absl::StatusOr<std::vector<std::string>> ReshardStates(const std::vector<std::string>& states,
                                                       uint32_t to, const Limits& limits) {
  return Resharder::Run(states, to, limits);
}

}  // namespace baton::apply
