// Shard runs one ShardState on one runtime::Loop and carries its effects:
// replies to the ops that wait for them (on this shard or another) and
// broadcasts to every other shard.
//
// An op is anything that receives results: an RPC (unary or stream) that
// registered an OpSink on its own shard. Commands travel to the owning shard
// by Send(); results travel back by Perform(). Inboxes are FIFO, so two
// commands sent from one shard to another are applied in sending order.
//
// Threading: every method runs on this shard's loop thread, except that
// other shards' threads reach ApplyHere() only through Loop::Post.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "runtime/loop.h"
#include "service/apply/command.h"
#include "service/apply/result.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

// Receives the results of the commands an op submitted. A unary op gets one
// Result per command; a Watch op gets one per change until it unwatches.
class OpSink {
 public:
  virtual void Deliver(Result result) = 0;

 protected:
  ~OpSink() = default;
};

class Cluster;

class Shard final : public runtime::TimerSource {
 public:
  Shard(uint32_t index, uint32_t shard_count, Cluster* cluster, runtime::Loop* loop, Limits limits,
        int64_t token_offset, uint64_t id_base);

  uint32_t index() const { return index_; }
  runtime::Loop& loop() { return *loop_; }
  Cluster& cluster() { return *cluster_; }
  const ShardState& state() const { return state_; }

  // Registers `sink` for the results of an op that lives on this shard.
  OpRef Register(OpSink* sink);
  void Unregister(OpRef op);

  // Sends `command` to shard `target` on behalf of `origin` (OpRef{} when no
  // reply is wanted). Never applies it inline: the caller may be in the
  // middle of handling another result.
  void Send(uint32_t target, Command command, OpRef origin);

  // Applies a command that arrived for this shard and performs its effects.
  void ApplyHere(const Command& command, OpRef origin);

  // runtime::TimerSource
  Time NextDeadline() const override { return state_.NextDeadline(); }
  void OnTimer(Time now) override;

 private:
  void Perform(Effects& effects);
  void DeliverHere(uint64_t op_id, Result result);

  const uint32_t index_;
  Cluster* const cluster_;
  runtime::Loop* const loop_;
  ShardState state_;
  absl::flat_hash_map<uint64_t, OpSink*> sinks_;
  uint64_t next_op_id_ = 1;
};

// All shards of a server. Fixed once built.
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

 private:
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace baton::apply
