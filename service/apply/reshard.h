// Re-sharding: the state machines of N shards, split again over M shards.
// Each resource goes to the shard its name hashes to (ShardOfName), with
// everything that refers to it (its waiters, leases, receipts, timers, the
// sessions' references to it, unclaimed grants); each session goes to its
// home (ShardOfSession) and every shard learns every live session. This is
// what lets a data directory be restarted with another --shards (DESIGN.md
// §6): the server recovers with the old count, cuts a snapshot, and its
// parts are split again here (service/rpc/reshard.h).
//
// Every id a shard hands out is unique across shards (ShardState::NextId),
// so the maps keyed by ids merge without collisions, and every id already
// handed out keeps its value: tokens, receipts, item and task ids, session
// ids stay valid for the clients that hold them. The id counters of the new
// shards start above every id handed out before, and the fencing high-water
// mark is the largest of the old ones, so tokens keep rising. The orphans'
// grace carries over (the earliest one running); the restart's Recover gives
// them a fresh one anyway.
//
// Thread-safety: a pure function of its arguments; called before the
// server's loops run.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "service/apply/limits.h"

namespace baton::apply {

// `states`: SaveState of shards 0..N-1 of one server, in shard order.
// Returns the SaveState of shards 0..to-1 holding the same resources,
// sessions and timers.
// Errors: INVALID_ARGUMENT if `states` is empty or `to` is 0; those of
// RestoreState (DATA_LOSS, FAILED_PRECONDITION), naming the shard;
// FAILED_PRECONDITION if two shards hold the same id or name (states saved
// by a build from before ids were unique across shards).
absl::StatusOr<std::vector<std::string>> ReshardStates(const std::vector<std::string>& states,
                                                       uint32_t to, const Limits& limits);

}  // namespace baton::apply
