// Backups: a data directory started from a snapshot file that a client saved
// with Admin/SaveSnapshot (`baton snapshot save FILE`).
//
// The file is exactly a snapshot of the data directory's own store
// (storage/snapshot_store.h: every part checksummed, and the whole), cut
// for some shard count at some log index. Restoring writes it as the
// directory's only snapshot and records its shard count; the server then
// starts from it with an empty log after it, re-sharding first if its
// --shards differs (reshard.h), and Recover gives every session a fresh TTL
// and every pending wait with a request_id its grace, as after any restart.
//
// Threading: called by Server::Start, before the server runs.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace baton::rpc {

// Makes `data_dir` (created if missing) start from `snapshot_file`. Errors:
// FAILED_PRECONDITION if data_dir already holds state (a write-ahead log,
// snapshots or a shard count: restoring never overwrites) or is in use by
// another server; DATA_LOSS if the file is damaged or not a snapshot (naming
// what is wrong); NOT_FOUND if it does not exist; INTERNAL and
// RESOURCE_EXHAUSTED from writing.
absl::Status RestoreDataDir(const std::string& snapshot_file, const std::string& data_dir,
                            bool sync);

}  // namespace baton::rpc
