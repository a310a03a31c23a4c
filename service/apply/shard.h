// Shard runs one ShardState on one runtime::Loop and carries its effects:
// replies to the ops that wait for them (on this shard or another) and
// commands derived from an applied one (a session broadcast to every other
// shard, a timer's action for the shard that owns its target).
//
// An op is anything that receives results: an RPC (unary or stream) that
// registered an OpSink on its own shard. Commands travel to the owning shard
// by Send(): a change goes through the Sequencer (the log) and comes back
// as ApplyCommitted() on the owning shard, in log order; a query is not
// logged, but reaches the owner (ApplyQuery) behind every change submitted
// before it. Results travel back by Perform(). Two commands sent
// one after the other from one thread are applied in sending order.
//
// A shard applies no change that did not come out of the log (DESIGN.md
// §4.3): not its own timers (it proposes a Tick), not another shard's
// broadcasts (they are proposed as derived entries). So replaying the log
// reproduces the same state, shard by shard.
//
// Threading: every method runs on this shard's loop thread, except
// ApplyReplayed() and SeeOpId(), which the server calls before the loop runs.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "runtime/loop.h"
#include "service/apply/command.h"
#include "service/apply/result.h"
#include "service/apply/shard_state.h"
#include "service/log/sequencer.h"

namespace baton::apply {

// Receives the results of the commands an op submitted. A unary op gets one
// Result per command; a Watch op gets one per change until it unwatches.
class OpSink {
 public:
  virtual void Deliver(Result result) = 0;
  // Whether this op's queries may be answered from this node's state as it
  // is, without confirming that it leads (`baton-read: serializable`).
  virtual bool SerializableReads() const { return false; }

 protected:
  ~OpSink() = default;
};

class Cluster;

class Shard final : public runtime::TimerSource {
 public:
  Shard(uint32_t index, uint32_t shard_count, Cluster* cluster, runtime::Loop* loop, Limits limits);

  uint32_t index() const { return index_; }
  runtime::Loop& loop() { return *loop_; }
  Cluster& cluster() { return *cluster_; }
  const ShardState& state() const { return state_; }
  // Reports events to `observer` (not owned; null: none) from now on, and
  // entries slower to apply than `slow`. Before the loop runs, or on it.
  void SetObserver(Observer* observer, Duration slow) {
    observer_ = observer;
    slow_apply_ = slow;
    state_.set_observer(observer);
  }
  // The state's gauges (ShardState::Measure). Loop thread only.
  ShardState::Gauges Measure() { return state_.Measure(); }

  // Registers `sink` for the results of an op that lives on this shard.
  OpRef Register(OpSink* sink);
  void Unregister(OpRef op);

  // Sends `command` to shard `target` on behalf of `origin` (OpRef{} when no
  // reply is wanted). Never applies it inline: the caller may be in the
  // middle of handling another result.
  void Send(uint32_t target, Command command, OpRef origin);

  // Applies a committed entry of the log and performs its effects.
  void ApplyCommitted(uint64_t index, Time now, log::Entry entry);
  // Applies a query (not logged) once the changes submitted before it were
  // dispatched, and sends its reply.
  void ApplyQuery(const log::Entry& entry);

  // Applies an entry found in the log at start. Replies go nowhere; derived
  // commands go into the outbox only (ResubmitOutbox proposes those a crash
  // kept out of the log). REQUIRES: the loop is not running yet.
  void ApplyReplayed(uint64_t index, Time now, const log::Entry& entry);

  // Derived commands (a session broadcast, a timer's action) are proposed
  // when the entry they derive from is applied; a crash in between would
  // lose them. So a durable shard keeps each one in an outbox until the log
  // holds it: DerivedCommitted(source_index, ordinal) is called in log
  // order, on this shard's loop (or during replay), when the log commits (or
  // replay meets) a command this shard derived. The outbox is part of the
  // snapshot, and ResubmitOutbox proposes what is left after replay.
  void TrackDerived(bool on) { track_derived_ = on; }
  void DerivedCommitted(uint64_t source_index, uint32_t ordinal) {
    outbox_.erase({source_index, ordinal});
  }
  // REQUIRES: the loop is not running yet.
  void ResubmitOutbox();

  // Replicated log, loop thread: this node leads now. A follower proposes
  // nothing (its ticks and derived commands were dropped, its rollbacks
  // refused): tick again when due, and propose what the outbox and the retry
  // list still hold.
  void OnLeadershipGained();
  // Replicated log, loop thread: this node no longer leads. Every op of this
  // shard waiting for a result (a blocked Acquire, Get, Wait, a Watch) gets
  // `why` at once, rather than at its deadline: nothing here will answer it
  // now. Its wait stays in the replicated state until the new leader's
  // Recover makes it an orphan, which the client's retry (same request_id,
  // sent to the leader) claims; a grant already committed for it is found
  // the same way (REPLAYED).
  void OnLeadershipLost(const absl::Status& why);
  size_t outbox_size() const { return outbox_.size(); }

  // This shard's part of a snapshot (baton.internal.v1.SnapshotPart): its
  // state machine and outbox as of the entries it has applied. Loop thread.
  std::string SavePart() const;
  // Replaces the state and outbox with a part SavePart wrote. Errors:
  // DATA_LOSS if it does not decode, FAILED_PRECONDITION if it was cut for
  // another shard. REQUIRES: the loop is not running yet.
  absl::Status RestorePart(std::string_view bytes);
  // Op ids recorded in the state come from the log; new ones must differ.
  // REQUIRES: the loop is not running yet.
  void SeeOpId(uint64_t id) { next_op_id_ = std::max(next_op_id_, id + 1); }

  // The log will never commit `entry`, which this shard sent (or derived).
  void OnRejected(log::Entry entry, absl::Status why);

  // Sessions homed here and waits pending here, as of the last applied
  // entry. Any thread (the cluster's admission control sums them).
  int64_t sessions_gauge() const { return sessions_gauge_.load(std::memory_order_relaxed); }
  int64_t waiters_gauge() const { return waiters_gauge_.load(std::memory_order_relaxed); }

  // Proposes nothing more of its own: no tick, no retry (a server being
  // sealed for re-sharding, Server::Seal). Loop thread.
  void Freeze() { frozen_ = true; }

  // runtime::TimerSource
  Time NextDeadline() const override;
  void OnTimer(Time now) override;

 private:
  // Replies, and derived commands with (source_index, ordinal): proposed,
  // and kept in the outbox if tracked; during replay only kept.
  // `deliver` false: the entry's replies are for ops of another process (a
  // foreign entry, log::Entry::foreign).
  void Perform(Effects& effects, uint64_t source_index, bool replaying, bool deliver = true);
  void DeliverHere(uint64_t op_id, Result result);
  void UpdateGauges();

  const uint32_t index_;
  Cluster* const cluster_;
  runtime::Loop* const loop_;
  ShardState state_;
  absl::flat_hash_map<uint64_t, OpSink*> sinks_;
  uint64_t next_op_id_ = 1;
  // A Tick proposed and not yet applied: the loop must not ask again.
  bool tick_pending_ = false;
  // Entries the log rejected (disk full) that must not be lost (ticks,
  // cancellations, rollbacks, derived commands): proposed again at retry_at_.
  std::vector<log::Entry> retry_;
  Time retry_at_ = kForever;
  bool track_derived_ = false;
  bool frozen_ = false;
  // Derived commands the log does not hold yet, by (source_index, ordinal).
  absl::btree_map<std::pair<uint64_t, uint32_t>, log::Entry> outbox_;
  Observer* observer_ = nullptr;
  Duration slow_apply_ = kForever;
  std::atomic<int64_t> sessions_gauge_{0};
  std::atomic<int64_t> waiters_gauge_{0};
};

// All shards of a server, and the sequencer that orders their changes.
// Fixed once built.
class Cluster {
 public:
  uint32_t size() const { return static_cast<uint32_t>(shards_.size()); }
  Shard& shard(uint32_t i) { return *shards_[i]; }
  uint32_t ShardOfName(std::string_view name) const {
    return ShardState::ShardOfName(name, size());
  }
  uint32_t ShardOfSession(uint64_t session) const {
    return ShardState::ShardOfSession(session, size());
  }
  void Add(std::unique_ptr<Shard> shard) { shards_.push_back(std::move(shard)); }
  log::Sequencer& sequencer() { return *sequencer_; }
  void SetSequencer(log::Sequencer* sequencer) { sequencer_ = sequencer; }

  // The server-wide limits on open sessions and pending waits (each shard's
  // state machine enforces the same numbers per shard, deterministically;
  // these totals are checked when a client's command enters).
  void SetTotals(int64_t max_sessions, int64_t max_waiters) {
    max_sessions_ = max_sessions;
    max_waiters_ = max_waiters;
  }
  // OK, or RESOURCE_EXHAUSTED if `command` would open a session or start a
  // wait beyond the server's totals. Any thread.
  absl::Status Admit(const Command& command, Time now) const;

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
  log::Sequencer* sequencer_ = nullptr;
  int64_t max_sessions_ = std::numeric_limits<int64_t>::max();
  int64_t max_waiters_ = std::numeric_limits<int64_t>::max();
};

}  // namespace baton::apply
