#include "service/apply/shard.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/snapshot.pb.h"
#include "service/apply/state_codec.h"

namespace baton::apply {
namespace {

// How long a shard waits before proposing again what the log rejected.
constexpr Duration kRetryAfterRejection = 100 * kMillisecond;

}  // namespace

Shard::Shard(uint32_t index, uint32_t shard_count, Cluster* cluster, runtime::Loop* loop,
             Limits limits)
    : index_(index), cluster_(cluster), loop_(loop), state_(index, shard_count, limits) {}

OpRef Shard::Register(OpSink* sink) {
  uint64_t id = next_op_id_++;
  sinks_[id] = sink;
  return OpRef{index_, id};
}

void Shard::Unregister(OpRef op) { sinks_.erase(op.id); }

void Shard::Send(uint32_t target, Command command, OpRef origin) {
  if (origin.id != 0) {
    if (absl::Status st = cluster_->Admit(command, loop_->clock().Now()); !st.ok()) {
      loop_->Defer([this, id = origin.id, st] { DeliverHere(id, Result::Error(st)); });
      return;
    }
  }
  if (IsQuery(command)) {
    log::Entry query{target, std::move(command), origin};
    if (origin.id != 0) {
      auto sink = sinks_.find(origin.id);
      query.serializable = sink != sinks_.end() && sink->second->SerializableReads();
    }
    cluster_->sequencer().SubmitQuery(std::move(query));
  } else {
    cluster_->sequencer().Submit(log::Entry{target, std::move(command), origin});
  }
}

void Shard::ApplyQuery(const log::Entry& entry) {
  assert(IsQuery(entry.command));  // a change applies only from the log
  Effects effects;
  state_.Apply(entry.command, entry.origin, loop_->clock().Now(), effects);
  Perform(effects, 0, /*replaying=*/false);
}

void Shard::ApplyCommitted(uint64_t index, Time now, log::Entry entry) {
  assert(!IsQuery(entry.command));
  if (std::holds_alternative<Tick>(entry.command)) tick_pending_ = false;
  Effects effects;
  if (observer_ == nullptr) {
    state_.Apply(entry.command, entry.origin, now, effects);
  } else {
    auto started = std::chrono::steady_clock::now();
    state_.Apply(entry.command, entry.origin, now, effects);
    Duration took = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    if (took >= slow_apply_) observer_->SlowApply(index, entry.command, took);
  }
  UpdateGauges();
  Perform(effects, index, /*replaying=*/false, /*deliver=*/!entry.foreign);
}

void Shard::UpdateGauges() {
  sessions_gauge_.store(static_cast<int64_t>(state_.home_session_count()),
                        std::memory_order_relaxed);
  waiters_gauge_.store(static_cast<int64_t>(state_.waiter_count()), std::memory_order_relaxed);
}

void Shard::ApplyReplayed(uint64_t index, Time now, const log::Entry& entry) {
  Effects effects;
  // What a replay applies happened before the restart: not news.
  state_.set_observer(nullptr);
  state_.Apply(entry.command, entry.origin, now, effects);
  state_.set_observer(observer_);
  UpdateGauges();
  Perform(effects, index, /*replaying=*/true);
}

void Shard::ResubmitOutbox() {
  for (const auto& [key, e] : outbox_) cluster_->sequencer().Submit(e);
}

void Shard::OnLeadershipGained() {
  tick_pending_ = false;
  retry_at_ = kForever;
  std::vector<log::Entry> again;
  again.swap(retry_);
  for (log::Entry& e : again) cluster_->sequencer().Submit(std::move(e));
  ResubmitOutbox();
}

void Shard::OnLeadershipLost(const absl::Status& why) {
  std::vector<uint64_t> ids;
  ids.reserve(sinks_.size());
  for (const auto& [id, sink] : sinks_) ids.push_back(id);
  // An op may end (unregister) while told, or end another: look each up.
  for (uint64_t id : ids) DeliverHere(id, Result::Error(why));
}

std::string Shard::SavePart() const {
  internal::v1::SnapshotPart part;
  part.set_shard(index_);
  part.set_state(SaveState(state_));
  for (const auto& [key, e] : outbox_) {
    // Outbox entries are small and few: encoding through the log's format
    // keeps one definition of an entry.
    if (!part.add_outbox()->ParseFromString(log::EncodeEntry(0, e))) std::abort();
  }
  part.set_next_op_id(next_op_id_);
  return part.SerializeAsString();
}

absl::Status Shard::RestorePart(std::string_view bytes) {
  internal::v1::SnapshotPart part;
  if (!part.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError(absl::StrCat("snapshot part of shard ", index_, " does not decode"));
  }
  if (part.shard() != index_) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot part for shard ", part.shard(), " given to shard ", index_));
  }
  if (absl::Status st = RestoreState(part.state(), &state_); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat("shard ", index_, ": ", st.message()));
  }
  outbox_.clear();
  for (int i = 0; i < part.outbox_size(); ++i) {
    auto e = log::DecodeEntry(0, part.outbox(i).SerializeAsString());
    if (!e.ok()) {
      return absl::DataLossError(
          absl::StrCat("shard ", index_, " outbox entry ", i, ": ", e.status().message()));
    }
    outbox_.emplace(std::make_pair(e->second.source_index, e->second.source_ordinal),
                    std::move(e->second));
  }
  next_op_id_ = std::max(next_op_id_, part.next_op_id());
  UpdateGauges();
  return absl::OkStatus();
}

void Shard::OnRejected(log::Entry entry, absl::Status why) {
  if (std::holds_alternative<Tick>(entry.command)) tick_pending_ = false;
  // A command someone waits for fails with the log's reason. Everything
  // else (time passing, a cancellation, a rollback, a derived command) must
  // happen eventually: propose it again later. (A rollback's op, if it
  // still waits, hears Done once it is applied.)
  bool must_happen = entry.origin.id == 0 || std::holds_alternative<CancelWait>(entry.command) ||
                     IsRollback(entry.command);
  if (!must_happen) {
    DeliverHere(entry.origin.id, Result::Error(std::move(why)));
    return;
  }
  if (!std::holds_alternative<Tick>(entry.command)) retry_.push_back(std::move(entry));
  retry_at_ = loop_->clock().Now() + kRetryAfterRejection;
}

Time Shard::NextDeadline() const {
  // After a rejection, nothing is proposed again before retry_at_.
  if (retry_at_ != kForever) return retry_at_;
  return tick_pending_ ? kForever : state_.NextDeadline();
}

void Shard::OnTimer(Time now) {
  if (frozen_) return;
  if (retry_at_ != kForever) {
    if (now < retry_at_) return;
    retry_at_ = kForever;
    std::vector<log::Entry> again;
    again.swap(retry_);
    for (log::Entry& e : again) cluster_->sequencer().Submit(std::move(e));
  }
  if (tick_pending_ || state_.NextDeadline() > now) return;
  tick_pending_ = true;
  cluster_->sequencer().Submit(log::Entry{index_, Tick{}, OpRef{}});
}

void Shard::Perform(Effects& effects, uint64_t source_index, bool replaying, bool deliver) {
  uint32_t ordinal = 0;
  auto derive = [&](uint32_t target, Command command) {
    log::Entry e{target, std::move(command), OpRef{}, source_index, ++ordinal, index_};
    if (track_derived_ || replaying) outbox_.emplace(std::make_pair(source_index, ordinal), e);
    if (!replaying) cluster_->sequencer().Submit(std::move(e));
  };
  // Replies to other shards leave in one post per shard, so that answers one
  // command made ready together (a Set waking 200 waits) are delivered in one
  // turn of the receiving loop and can share a message on a session stream.
  std::vector<std::pair<uint32_t, std::vector<std::pair<uint64_t, Result>>>> away;
  for (Effect& e : effects) {
    if (auto* reply = std::get_if<Reply>(&e)) {
      if (reply->op.id == 0 || replaying || !deliver) continue;
      if (reply->op.shard == index_) {
        DeliverHere(reply->op.id, std::move(reply->result));
      } else {
        auto it = std::find_if(away.begin(), away.end(),
                               [&](const auto& a) { return a.first == reply->op.shard; });
        if (it == away.end()) it = away.insert(away.end(), {reply->op.shard, {}});
        it->second.emplace_back(reply->op.id, std::move(reply->result));
      }
    } else if (auto* f = std::get_if<Forward>(&e)) {
      derive(cluster_->ShardOfName(f->name), std::move(f->command));
    } else {
      auto& b = std::get<Broadcast>(e);
      for (uint32_t i = 0; i < cluster_->size(); ++i) {
        if (i != index_) derive(i, b.command);
      }
    }
  }
  for (auto& [shard, replies] : away) {
    Shard* to = &cluster_->shard(shard);
    to->loop_->Post([to, rs = std::move(replies)]() mutable {
      for (auto& [id, r] : rs) to->DeliverHere(id, std::move(r));
    });
  }
}

void Shard::DeliverHere(uint64_t op_id, Result result) {
  auto it = sinks_.find(op_id);
  if (it == sinks_.end()) return;  // the op ended; nothing waits for this
  it->second->Deliver(std::move(result));
}

absl::Status Cluster::Admit(const Command& command, Time now) const {
  if (std::holds_alternative<OpenSession>(command)) {
    int64_t open = 0;
    for (const auto& s : shards_) open += s->sessions_gauge();
    if (open >= max_sessions_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("too many open sessions (limit ", max_sessions_,
                       " in total): close sessions you no longer need, or raise --max_sessions"));
    }
    return absl::OkStatus();
  }
  bool may_wait = std::visit(
      [now](const auto& c) {
        if constexpr (requires { c.deadline; }) {
          return c.deadline > now;
        } else {
          return false;
        }
      },
      command);
  if (!may_wait) return absl::OkStatus();
  int64_t pending = 0;
  for (const auto& s : shards_) pending += s->waiters_gauge();
  if (pending >= max_waiters_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many pending waits on this server (limit ", max_waiters_,
                     " in total): retry later, or raise --max_waiters"));
  }
  return absl::OkStatus();
}

}  // namespace baton::apply
