#include "service/rpc/backup.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/snapshot.pb.h"
#include "service/rpc/reshard.h"
#include "storage/file_lock.h"
#include "storage/snapshot_store.h"

namespace baton::rpc {

absl::Status RestoreDataDir(const std::string& snapshot_file, const std::string& data_dir,
                            bool sync) {
  auto loaded = storage::SnapshotStore::Read(snapshot_file);
  if (!loaded.ok()) return loaded.status();
  internal::v1::SnapshotHeader header;
  if (loaded->records.empty() || !header.ParseFromString(loaded->records[0])) {
    return absl::DataLossError(
        absl::StrCat(snapshot_file, " is not a Baton snapshot: its header does not decode"));
  }
  if (header.format() != 1 || header.index() != loaded->index || header.shard_count() == 0 ||
      loaded->records.size() != header.shard_count() + 1u) {
    return absl::DataLossError(absl::StrCat(snapshot_file, ": format ", header.format(), ", index ",
                                            header.index(), ", ", header.shard_count(),
                                            " shards in ", loaded->records.size() - 1,
                                            " parts: not a snapshot this build reads"));
  }

  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create the data directory ", data_dir, ": ", ec.message()));
  }
  auto lock = storage::FileLock::Acquire(data_dir);
  if (!lock.ok()) return lock.status();
  for (const char* held : {"wal", "snap", "shards", "resharding"}) {
    std::filesystem::path p = std::filesystem::path(data_dir) / held;
    bool empty_dir = std::filesystem::is_directory(p, ec) && std::filesystem::is_empty(p, ec);
    if (std::filesystem::exists(p, ec) && !empty_dir) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot restore into ", data_dir, ": it holds state already (", p.string(),
                       "); restore into a new or empty directory, or move this one away first"));
    }
  }
  storage::SnapshotStore::Options so;
  so.directory = data_dir + "/snap";
  so.sync = sync;
  storage::SnapshotStore store(so);
  if (auto st = store.Save(loaded->index, loaded->records); !st.ok()) return st;
  return RecordShardCount(data_dir, header.shard_count());
}

}  // namespace baton::rpc
