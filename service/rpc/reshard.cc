#include "service/rpc/reshard.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/snapshot.pb.h"
#include "service/apply/reshard.h"
#include "service/logging.h"
#include "service/rpc/server.h"
#include "storage/file_lock.h"
#include "storage/snapshot_store.h"

namespace baton::rpc {
namespace {

std::string ShardsFile(const std::string& dir) { return dir + "/shards"; }
// Present while a split snapshot may be on disk and the `shards` file not
// yet rewritten.
std::string MarkerFile(const std::string& dir) { return dir + "/resharding"; }

// Writes `text` to `path`, synced, and syncs its directory.
absl::Status WriteSynced(const std::string& dir, const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  bool ok = fd >= 0 && ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  if (fd >= 0) ::close(fd);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ok = ok && dfd >= 0 && ::fsync(dfd) == 0;
  if (dfd >= 0) ::close(dfd);
  if (!ok) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

storage::SnapshotStore Store(const std::string& dir, bool sync) {
  storage::SnapshotStore::Options o;
  o.directory = dir + "/snap";
  o.sync = sync;
  return storage::SnapshotStore(o);
}

// The header of the newest snapshot that reads back whole, if any.
absl::StatusOr<std::optional<internal::v1::SnapshotHeader>> NewestHeader(const std::string& dir) {
  auto loaded = Store(dir, false).LoadNewest();
  if (!loaded.ok()) return loaded.status();
  if (!loaded->found) return std::nullopt;
  internal::v1::SnapshotHeader header;
  if (loaded->records.empty() || !header.ParseFromString(loaded->records[0])) {
    return absl::DataLossError(
        absl::StrCat("snapshot ", loaded->index, " in ", dir, ": its header does not decode"));
  }
  return header;
}

// Step 2: splits the snapshot at `index` (cut for `from` shards by a sealed
// server) into `to` parts, written back under the same index.
absl::Status SplitSnapshot(const std::string& dir, bool sync, uint64_t index, uint32_t from,
                           uint32_t to, const apply::Limits& limits) {
  storage::SnapshotStore store = Store(dir, sync);
  std::string path = store.PathOf(index);
  auto loaded = storage::SnapshotStore::Read(path);
  if (!loaded.ok()) return loaded.status();
  internal::v1::SnapshotHeader header;
  if (loaded->records.empty() || !header.ParseFromString(loaded->records[0]) ||
      header.index() != index || header.shard_count() != from ||
      loaded->records.size() != from + 1u) {
    return absl::DataLossError(absl::StrCat("snapshot ", path,
                                            " is not the one the sealed server cut for ", from,
                                            " shards at index ", index));
  }
  std::vector<std::string> states;
  uint64_t next_op_id = 0;
  for (uint32_t i = 0; i < from; ++i) {
    internal::v1::SnapshotPart part;
    if (!part.ParseFromString(loaded->records[i + 1]) || part.shard() != i) {
      return absl::DataLossError(absl::StrCat("snapshot ", path, ": part ", i, " does not decode"));
    }
    if (part.outbox_size() > 0) {
      return absl::InternalError(absl::StrCat("snapshot ", path, ": shard ", i, " still has ",
                                              part.outbox_size(), " derived commands to log"));
    }
    next_op_id = std::max(next_op_id, part.next_op_id());
    states.push_back(std::move(*part.mutable_state()));
  }
  auto split = apply::ReshardStates(states, to, limits);
  if (!split.ok()) {
    return absl::Status(split.status().code(),
                        absl::StrCat("snapshot ", path, ": ", split.status().message()));
  }
  header.set_shard_count(to);
  std::vector<std::string> records{header.SerializeAsString()};
  for (uint32_t j = 0; j < to; ++j) {
    internal::v1::SnapshotPart part;
    part.set_shard(j);
    part.set_state(std::move((*split)[j]));
    part.set_next_op_id(next_op_id);
    records.push_back(part.SerializeAsString());
  }
  return store.Save(index, records);
}

}  // namespace

absl::Status RecordShardCount(const std::string& data_dir, uint32_t shards) {
  std::string path = ShardsFile(data_dir);
  if (absl::Status st = WriteSynced(data_dir, path + ".tmp", absl::StrCat(shards, "\n"));
      !st.ok()) {
    return st;
  }
  if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<uint32_t>> ShardCountOf(const std::string& data_dir) {
  std::ifstream in(ShardsFile(data_dir));
  if (!in) return std::nullopt;
  uint32_t recorded = 0;
  if (!(in >> recorded) || recorded == 0) {
    return absl::DataLossError(absl::StrCat(ShardsFile(data_dir), " does not hold a shard count"));
  }
  if (::access(MarkerFile(data_dir).c_str(), F_OK) != 0) return recorded;
  // A re-sharding stopped in step 2: if its split snapshot is written, it
  // is the newest, and the count is its; if not, the directory is as it was.
  auto header = NewestHeader(data_dir);
  if (!header.ok()) return header.status();
  if (*header && (*header)->shard_count() != recorded) {
    logging::Info("finishing an interrupted re-sharding")
        .Str("data_dir", data_dir)
        .Uint("from", recorded)
        .Uint("to", (*header)->shard_count());
    recorded = (*header)->shard_count();
    if (absl::Status st = RecordShardCount(data_dir, recorded); !st.ok()) return st;
  }
  std::remove(MarkerFile(data_dir).c_str());
  return recorded;
}

absl::Status ReshardDataDir(const ServerOptions& options, uint32_t from, uint32_t to,
                            const apply::Limits& limits) {
  auto started = std::chrono::steady_clock::now();
  logging::Info("re-sharding the data directory")
      .Str("data_dir", options.data_dir)
      .Uint("from", from)
      .Uint("to", to);
  ServerOptions old = options;
  old.shards = static_cast<int>(from);
  old.listen = "127.0.0.1:0";
  old.snapshot_entries = 0;  // only the sealing cut
  old.snapshot_bytes = 0;
  old.restore_from.clear();  // restored already, if it was asked for
  uint64_t index = 0;
  {
    auto server = Server::Start(old);
    if (!server.ok()) {
      return absl::Status(server.status().code(),
                          absl::StrCat("re-sharding: recovering with ", from,
                                       " shards: ", server.status().message()));
    }
    auto sealed = (*server)->Seal();
    if (!sealed.ok()) {
      return absl::Status(sealed.status().code(),
                          absl::StrCat("re-sharding: sealing: ", sealed.status().message()));
    }
    index = *sealed;
    (*server)->Shutdown();
  }
  {
    auto lock = storage::FileLock::Acquire(options.data_dir);
    if (!lock.ok()) return lock.status();
    if (absl::Status st =
            WriteSynced(options.data_dir, MarkerFile(options.data_dir), absl::StrCat(to, "\n"));
        !st.ok()) {
      return st;
    }
    if (absl::Status st = SplitSnapshot(options.data_dir, options.fsync, index, from, to, limits);
        !st.ok()) {
      return st;
    }
    if (absl::Status st = RecordShardCount(options.data_dir, to); !st.ok()) return st;
    std::remove(MarkerFile(options.data_dir).c_str());
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  started)
                .count();
  logging::Info("re-sharded")
      .Str("data_dir", options.data_dir)
      .Uint("from", from)
      .Uint("to", to)
      .Uint("index", index)
      .Dur("took", ms * kMillisecond);
  return absl::OkStatus();
}

}  // namespace baton::rpc
