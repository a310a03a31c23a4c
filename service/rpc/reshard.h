// Restarting a durable data directory with another --shards.
//
// The log names the shard of every entry, so it cannot be replayed with
// another count; a snapshot can be split again by resource name
// (apply::ReshardStates). So a server started with a count other than the
// one its data directory was written with first re-shards it, in two steps:
//   1. a server with the old count recovers the directory as usual (snapshot
//      + log, Recover), on a private loopback port no client knows; it is
//      sealed (Server::Seal: waits end as at shutdown, keeping orphans; a
//      last snapshot covers the whole log and holds no derived command still
//      to be logged; the log is closed), then stopped;
//   2. that snapshot's parts are split over the new count and written back
//      under the same index, then the directory's `shards` file is
//      rewritten.
// The server then starts with the new count from that snapshot: the log
// after it is empty. Held locks keep their tokens, queue items their
// receipts, sessions their ids; orphaned waits keep their place in line for
// a fresh grace.
//
// Step 2 runs with a marker file, `resharding`, in the directory: a crash
// there leaves either the old snapshot or the split one as the newest (the
// store renames it into place), and the next start, whatever its count,
// takes the newest snapshot's count as the directory's (ShardCountOf).
// A crash in step 1 leaves the directory as it was, plus a few logged
// entries (the seal).
//
// Thread-safety: called by Server::Start, before the server runs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "service/apply/limits.h"

namespace baton::rpc {

struct ServerOptions;

// The shard count `data_dir` was written with (its `shards` file), or
// nullopt for a new directory; after an interrupted step 2, the newest
// snapshot's (recorded, and the marker removed).
absl::StatusOr<std::optional<uint32_t>> ShardCountOf(const std::string& data_dir);

// Records `shards` as data_dir's shard count (written aside and renamed).
absl::Status RecordShardCount(const std::string& data_dir, uint32_t shards);

// Re-shards options.data_dir from `from` to `to` shards (steps 1 and 2).
// `limits`: the new server's (a state's limits are not part of it).
// Errors: those of starting, sealing and stopping the old server, of
// reading and splitting its snapshot (DATA_LOSS, FAILED_PRECONDITION), and
// of writing the new one.
absl::Status ReshardDataDir(const ServerOptions& options, uint32_t from, uint32_t to,
                            const apply::Limits& limits);

}  // namespace baton::rpc
