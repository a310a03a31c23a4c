#include "storage/snapshot_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "storage/crc32c.h"
#include "storage/test_util.h"

namespace baton::storage {
namespace {

using testutil::ReadAll;
using testutil::TempDir;
using testutil::WriteAll;

class FaultyFs : public FileSystem {
 public:
  std::atomic<int> write_errno{0};
  std::atomic<int> rename_errno{0};
  int WriteAt(int fd, const void* data, size_t n, off_t offset, size_t* written) override {
    if (int err = write_errno.load(); err != 0) {
      FileSystem::WriteAt(fd, data, n / 2, offset, written);
      return err;
    }
    return FileSystem::WriteAt(fd, data, n, offset, written);
  }
  int Rename(const char* from, const char* to) override {
    if (int err = rename_errno.load(); err != 0) return err;
    return FileSystem::Rename(from, to);
  }
};

SnapshotStore::Options In(const TempDir& dir, FileSystem* fs = FileSystem::Default()) {
  SnapshotStore::Options o;
  o.directory = dir.Sub("snap");
  o.fs = fs;
  return o;
}

std::vector<std::string> Records(int seed) {
  std::vector<std::string> r{absl::StrCat("header-", seed), "", std::string(100000, 'x')};
  r[2][seed % 100000] = static_cast<char>(seed);
  return r;
}

TEST(SnapshotStoreTest, NothingSavedLoadsNothing) {
  TempDir dir;
  SnapshotStore store(In(dir));
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE(loaded->found);
  EXPECT_TRUE(loaded->notes.empty());
}

TEST(SnapshotStoreTest, SaveThenLoadGivesTheSameRecords) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(42, Records(1)).ok());
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->found);
  EXPECT_EQ(loaded->index, 42u);
  EXPECT_EQ(loaded->records, Records(1));
}

TEST(SnapshotStoreTest, KeepsTheNewestTwo) {
  TempDir dir;
  SnapshotStore store(In(dir));
  for (uint64_t i = 1; i <= 5; ++i) ASSERT_TRUE(store.Save(i * 100, Records(int(i))).ok());
  EXPECT_EQ(store.List(), (std::vector<uint64_t>{400, 500}));
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->index, 500u);
  EXPECT_EQ(loaded->records, Records(5));
}

TEST(SnapshotStoreTest, ADamagedNewestFallsBackToThePreviousWithANote) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(100, Records(1)).ok());
  ASSERT_TRUE(store.Save(200, Records(2)).ok());
  std::string bytes = ReadAll(store.PathOf(200));
  bytes[bytes.size() / 2] ^= 0x40;
  WriteAll(store.PathOf(200), bytes);
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_TRUE(loaded->found);
  EXPECT_EQ(loaded->index, 100u);
  EXPECT_EQ(loaded->records, Records(1));
  ASSERT_EQ(loaded->notes.size(), 1u);
  EXPECT_NE(loaded->notes[0].find(store.PathOf(200)), std::string::npos) << loaded->notes[0];
  EXPECT_NE(loaded->notes[0].find("checksum"), std::string::npos) << loaded->notes[0];
}

TEST(SnapshotStoreTest, EveryDamagedLoadsNothingButSaysWhy) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(100, Records(1)).ok());
  WriteAll(store.PathOf(100), "BATONSNP garbage");
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->found);
  EXPECT_EQ(loaded->notes.size(), 1u);
}

TEST(SnapshotStoreTest, EveryTruncationIsDataLoss) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(7, {"abc", "", "defgh"}).ok());
  std::string whole = ReadAll(store.PathOf(7));
  std::string path = dir.Sub("cut.snap");
  for (size_t n = 0; n < whole.size(); ++n) {
    WriteAll(path, whole.substr(0, n));
    auto r = SnapshotStore::Read(path);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes read back";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  }
  WriteAll(path, whole);
  EXPECT_TRUE(SnapshotStore::Read(path).ok());
}

TEST(SnapshotStoreTest, RandomByteFlipsNeverReadBack) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(7, {"abc", std::string(300, 'q'), "defgh"}).ok());
  std::string whole = ReadAll(store.PathOf(7));
  std::string path = dir.Sub("flip.snap");
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string bytes = whole;
    bytes[rng() % bytes.size()] ^= static_cast<char>(1 + rng() % 255);
    WriteAll(path, bytes);
    auto r = SnapshotStore::Read(path);
    EXPECT_FALSE(r.ok());
  }
}

TEST(SnapshotStoreTest, ANewerFormatIsRefusedByName) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(7, {"abc"}).ok());
  std::string bytes = ReadAll(store.PathOf(7));
  bytes[8] = 9;  // format
  // Keep the file checksum right, so only the format is wrong.
  uint32_t crc = crc32c::Extend(0, bytes.data(), bytes.size() - 4);
  for (int i = 0; i < 4; ++i)
    bytes[bytes.size() - 4 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  WriteAll(store.PathOf(7), bytes);
  auto r = SnapshotStore::Read(store.PathOf(7));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("format 9"), std::string::npos) << r.status();
}

TEST(SnapshotStoreTest, ADiskFullSaveLeavesNoFileAndTheOldSnapshotIntact) {
  TempDir dir;
  FaultyFs fs;
  SnapshotStore store(In(dir, &fs));
  ASSERT_TRUE(store.Save(100, Records(1)).ok());
  fs.write_errno = ENOSPC;
  absl::Status st = store.Save(200, Records(2));
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  fs.write_errno = 0;
  EXPECT_EQ(store.List(), (std::vector<uint64_t>{100}));
  for (const auto& e : std::filesystem::directory_iterator(dir.Sub("snap"))) {
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->index, 100u);
  fs.rename_errno = EIO;
  st = store.Save(300, Records(3));
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  EXPECT_EQ(store.List(), (std::vector<uint64_t>{100}));
}

TEST(SnapshotStoreTest, AStaleTempFileIsNeverLoadedAndIsCleanedUp) {
  TempDir dir;
  SnapshotStore store(In(dir));
  ASSERT_TRUE(store.Save(100, Records(1)).ok());
  std::string tmp = store.PathOf(500) + ".tmp";
  WriteAll(tmp, "half a snapshot");
  auto loaded = store.LoadNewest();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->index, 100u);
  ASSERT_TRUE(store.Save(200, Records(2)).ok());
  EXPECT_FALSE(std::filesystem::exists(tmp));
}

}  // namespace
}  // namespace baton::storage
