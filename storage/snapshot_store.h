// SnapshotStore keeps the snapshots of a data directory. A snapshot covers
// every log entry up to its index; restart = the newest snapshot that reads
// back whole + the log entries after it (DESIGN.md §6).
//
// The store knows nothing of what a snapshot holds: the caller gives it
// records (opaque byte strings: a header, one part per shard). Each snapshot
// is one file, `snap-<index, 20 digits>.snap`:
//
//   magic "BATONSNP" | u32 format (1) | u64 index | u32 record count
//   record*: u32 length | u32 CRC32C of the record | record bytes
//   u32 CRC32C of everything before it
//
// (little-endian). It is written aside as `.tmp`, synced, renamed into place
// and the directory synced, so a crash leaves either the old set of
// snapshots or the new one, never half a file under a final name; a stale
// `.tmp` is deleted at the next Save.
//
// Keeping more than one: the caller compacts the log only through the
// *previous* snapshot's index, so when the newest file is damaged (a bad
// disk block), LoadNewest falls back to the one before and the log still
// holds everything after it.
//
// Threading: not thread-safe; one thread at a time (the server's snapshot
// thread saves; Open-time code loads before it runs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "storage/file_system.h"

namespace baton::storage {

class SnapshotStore {
 public:
  struct Options {
    std::string directory;  // created if missing
    bool sync = true;       // fsync the file and the directory
    uint32_t keep = 2;      // snapshots kept after a Save (at least 1)
    FileSystem* fs = FileSystem::Default();
  };

  struct Loaded {
    bool found = false;  // false: no snapshot (index 0, no records)
    uint64_t index = 0;
    std::vector<std::string> records;
    // Damaged snapshots that were skipped, for the server to log.
    std::vector<std::string> notes;
  };

  explicit SnapshotStore(Options options);

  // Writes a snapshot covering the log through `index`, then deletes the
  // oldest ones beyond `keep`. Errors: RESOURCE_EXHAUSTED when the disk is
  // full, INTERNAL for any other I/O failure (naming the file and errno);
  // on error the new file is removed and the old snapshots are untouched.
  absl::Status Save(uint64_t index, const std::vector<std::string>& records);

  // The newest snapshot that reads back whole (found: false if there is
  // none). A damaged file (bad magic, CRC, length, truncated) is skipped
  // with a note naming it and why; if every file is damaged the result has
  // no snapshot, and opening the log then fails if it was compacted (a gap
  // before its first entry), rather than starting from nothing.
  absl::StatusOr<Loaded> LoadNewest() const;

  // Indexes of the snapshot files present, ascending (damaged ones too).
  std::vector<uint64_t> List() const;

  // Reads one snapshot file. Errors: DATA_LOSS naming the file and what is
  // wrong with it; NOT_FOUND if it does not exist.
  static absl::StatusOr<Loaded> Read(const std::string& path);
  // The same for a snapshot file's bytes; `what` names them in errors.
  static absl::StatusOr<Loaded> Parse(std::string_view data, const std::string& what);

  std::string PathOf(uint64_t index) const;

 private:
  absl::Status Write(const std::string& tmp, uint64_t index,
                     const std::vector<std::string>& records);
  int SyncDirectory();

  Options options_;
};

}  // namespace baton::storage
