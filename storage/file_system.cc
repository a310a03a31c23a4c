#include "storage/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace baton::storage {

FileSystem* FileSystem::Default() {
  static FileSystem* fs = new FileSystem();
  return fs;
}

int FileSystem::Open(const char* path, int flags, mode_t mode, int* fd) {
  int r;
  do {
    r = ::open(path, flags | O_CLOEXEC, mode);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return errno;
  *fd = r;
  return 0;
}

int FileSystem::WriteAt(int fd, const void* data, size_t n, off_t offset, size_t* written) {
  const char* p = static_cast<const char*>(data);
  *written = 0;
  while (*written < n) {
    ssize_t r = ::pwrite(fd, p + *written, n - *written, offset + static_cast<off_t>(*written));
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    *written += static_cast<size_t>(r);
  }
  return 0;
}

int FileSystem::DataSync(int fd) {
  // Not retried on EINTR: a sync that returned an error must never be
  // retried (see LocalLog's "fsyncgate" note); fdatasync does not return
  // EINTR on Linux anyway.
  return ::fdatasync(fd) == 0 ? 0 : errno;
}

int FileSystem::Sync(int fd) { return ::fsync(fd) == 0 ? 0 : errno; }

int FileSystem::Truncate(int fd, off_t length) {
  int r;
  do {
    r = ::ftruncate(fd, length);
  } while (r < 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

int FileSystem::Unlink(const char* path) { return ::unlink(path) == 0 ? 0 : errno; }

int FileSystem::Rename(const char* from, const char* to) {
  return ::rename(from, to) == 0 ? 0 : errno;
}

int FileSystem::Close(int fd) {
  // close(2) must not be retried on EINTR on Linux: the descriptor is gone.
  return ::close(fd) == 0 ? 0 : errno;
}

}  // namespace baton::storage
