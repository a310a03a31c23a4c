// FileLock keeps one process (and one object in it) the only user of a data
// directory: it holds an exclusive flock(2) on `<directory>/LOCK` for its
// lifetime and writes the holder's PID into that file, so a second server
// started on the same directory fails at once, saying who holds it, instead
// of interleaving writes with the first.
//
// flock locks belong to an open file description, so a second Acquire in
// the same process conflicts too (fcntl locks would not). The lock goes
// away with the descriptor: on destruction, or when the process dies, even
// by kill -9. The LOCK file itself is left in place. Not for NFS, where
// flock is emulated with fcntl locks.
//
// Move-only. Not thread-safe (one owner).
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace baton::storage {

class FileLock {
 public:
  // Locks `<directory>/LOCK`, creating it if needed. Errors:
  // FAILED_PRECONDITION naming the file and, when the holder wrote it, the
  // holder's PID, if the directory is already locked; the errno's status if
  // the file cannot be opened (e.g. NOT_FOUND: no such directory).
  [[nodiscard]] static absl::StatusOr<FileLock> Acquire(std::string_view directory);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // releases the lock

  const std::string& path() const { return path_; }

 private:
  FileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  void Release();

  std::string path_;
  int fd_ = -1;
};

}  // namespace baton::storage
