#include "storage/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace baton::storage {
namespace {

// The PID the holder wrote, or "" if it cannot be read.
std::string ReadHolder(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  absl::string_view text = absl::StripAsciiWhitespace(absl::string_view(buf, n));
  int64_t pid;
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0) return "";
  std::string holder = absl::StrCat("pid ", pid);
  if (pid == ::getpid()) absl::StrAppend(&holder, " (this process)");
  return holder;
}

}  // namespace

absl::StatusOr<FileLock> FileLock::Acquire(std::string_view directory_view) {
  const std::string directory(directory_view);  // (Debian's absl::string_view is its own type)
  std::string path = absl::StrCat(directory, "/LOCK");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    return absl::ErrnoToStatus(err, absl::StrCat("cannot open lock file ", path));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder = err == EWOULDBLOCK ? ReadHolder(fd) : "";
    ::close(fd);
    if (err != EWOULDBLOCK) {
      return absl::ErrnoToStatus(err, absl::StrCat("cannot lock ", path));
    }
    return absl::FailedPreconditionError(absl::StrCat(directory, " is in use: ", path,
                                                      " is locked by ",
                                                      holder.empty() ? "another holder" : holder));
  }
  // Tell the next one who holds it. Best effort: the lock is what counts.
  std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // Nothing to do: a later Acquire then reports "another holder".
  }
  return FileLock(std::move(path), fd);
}

FileLock::FileLock(FileLock&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

FileLock::~FileLock() { Release(); }

void FileLock::Release() {
  if (fd_ >= 0) {
    ::close(fd_);  // drops the flock
    fd_ = -1;
  }
}

}  // namespace baton::storage
