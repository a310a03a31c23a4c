// ServerOps: what the Admin service asks of the server as a whole, rather
// than of a shard: its description (Admin/ServerInfo) and a fresh snapshot
// file to stream (Admin/SaveSnapshot). Implemented by Server.
//
// Threading: any thread; `done` runs on the snapshot thread (or at once, on
// the calling thread, with an error).
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "baton/v1/admin.pb.h"

namespace baton::rpc {

class ServerOps {
 public:
  // A snapshot file, opened before any later snapshot could delete it.
  struct SnapshotFile {
    uint64_t index = 0;
    uint64_t bytes = 0;
    std::shared_ptr<std::FILE> file;
  };
  using SnapshotDone = std::function<void(absl::StatusOr<SnapshotFile>)>;

  virtual ~ServerOps() = default;
  virtual void Describe(v1::ServerInfoResponse* out) const = 0;
  // Cuts a snapshot of every shard at one log index and opens its file.
  // Errors: FAILED_PRECONDITION in memory, UNAVAILABLE when shutting down,
  // the store's error if it could not be written, INTERNAL if it cannot be
  // opened.
  virtual void CutSnapshot(SnapshotDone done) = 0;
};

}  // namespace baton::rpc
