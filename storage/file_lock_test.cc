// FileLock: one holder per directory, within a process and across
// processes; released when the object goes away.
#include "storage/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace baton::storage {
namespace {

using ::testing::HasSubstr;

TEST(FileLockTest, SecondAcquireFailsNamingTheFileAndTheHolder) {
  testutil::TempDir tmp;
  absl::StatusOr<FileLock> first = FileLock::Acquire(tmp.path());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->path(), tmp.path() + "/LOCK");

  absl::StatusOr<FileLock> second = FileLock::Acquire(tmp.path());
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_THAT(second.status().message(), HasSubstr(tmp.path() + "/LOCK"));
  EXPECT_THAT(second.status().message(), HasSubstr(absl::StrCat("pid ", ::getpid())));
}

TEST(FileLockTest, ReleasedOnDestruction) {
  testutil::TempDir tmp;
  std::optional<absl::StatusOr<FileLock>> first(FileLock::Acquire(tmp.path()));
  ASSERT_TRUE(first->ok());
  first.reset();
  EXPECT_TRUE(FileLock::Acquire(tmp.path()).ok());
}

TEST(FileLockTest, MovedLockStaysHeldUntilItsLastOwnerGoes) {
  testutil::TempDir tmp;
  absl::StatusOr<FileLock> first = FileLock::Acquire(tmp.path());
  ASSERT_TRUE(first.ok());
  std::optional<FileLock> moved(std::move(*first));
  EXPECT_FALSE(FileLock::Acquire(tmp.path()).ok());
  moved.reset();
  EXPECT_TRUE(FileLock::Acquire(tmp.path()).ok());
}

TEST(FileLockTest, AnotherProcessCannotLockTheDirectory) {
  testutil::TempDir tmp;
  absl::StatusOr<FileLock> lock = FileLock::Acquire(tmp.path());
  ASSERT_TRUE(lock.ok());
  std::string path = tmp.path() + "/LOCK";
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Only async-signal-safe calls in the child.
    int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0) ::_exit(2);
    ::_exit(::flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << "the other process got the lock";
}

TEST(FileLockTest, MissingDirectoryIsNotFound) {
  testutil::TempDir tmp;
  absl::StatusOr<FileLock> lock = FileLock::Acquire(tmp.Sub("nope"));
  EXPECT_TRUE(absl::IsNotFound(lock.status())) << lock.status();
}

}  // namespace
}  // namespace baton::storage
