// FileSystem is the seam between storage (LocalLog, SnapshotStore) and the
// POSIX calls that can fail on their write paths: creating a file, writing,
// syncing, truncating, renaming, deleting. Production uses FileSystem::Default(); tests subclass it
// to inject faults (ENOSPC after a partial write, a failing fdatasync, ...) the way leveldb's
// fault_injection_test wraps its Env. Reading at Open uses plain POSIX calls: a read error there
// simply fails Open.
//
// Every method returns 0 or an errno value (the caller need not look at
// `errno`) and retries EINTR where a retry is safe. Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>

namespace baton::storage {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The real thing. Never deleted.
  static FileSystem* Default();

  // open(2); on success stores the descriptor in *fd.
  virtual int Open(const char* path, int flags, mode_t mode, int* fd);
  // Writes data[0, n) at `offset`, looping over short writes. On error,
  // *written says how much was written before it (those bytes may be in
  // the file).
  virtual int WriteAt(int fd, const void* data, size_t n, off_t offset, size_t* written);
  virtual int DataSync(int fd);  // fdatasync(2)
  virtual int Sync(int fd);      // fsync(2); used on directories
  virtual int Truncate(int fd, off_t length);
  virtual int Unlink(const char* path);
  // rename(2): atomically replaces `to` (snapshots are written aside, then
  // renamed into place).
  virtual int Rename(const char* from, const char* to);
  virtual int Close(int fd);
};

}  // namespace baton::storage
