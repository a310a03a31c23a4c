// LocalLog: what survives a restart, group commit, segments and compaction,
// recovery from torn tails and refusal of real corruption, and what happens
// when the disk is full or a sync fails (faults injected through
// FileSystem, leveldb-style). No sleeps: tests wait for callbacks.
#include "storage/local_log.h"

#include <fcntl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"
#include "storage/wal_format.h"

namespace baton::storage {
namespace {

using ::testing::HasSubstr;
using testutil::ReadAll;
using testutil::Recorder;
using testutil::Replayed;
using testutil::TempDir;
using testutil::WriteAll;

// Injects the failures a real disk produces, on top of the real calls.
class FaultyFs : public FileSystem {
 public:
  std::atomic<int> write_errno{0};     // WriteAt writes half of its data, then fails
  std::atomic<int> sync_errno{0};      // DataSync fails without syncing
  std::atomic<int> truncate_errno{0};  // Truncate fails without truncating
  std::atomic<int> create_errno{0};    // Open with O_CREAT fails
  std::function<void()> on_sync;       // runs at the start of every DataSync
  std::atomic<int> data_syncs{0};

  int Open(const char* path, int flags, mode_t mode, int* fd) override {
    if ((flags & O_CREAT) && create_errno != 0) return create_errno;
    return FileSystem::Open(path, flags, mode, fd);
  }
  int WriteAt(int fd, const void* data, size_t n, off_t offset, size_t* written) override {
    if (int err = write_errno.load(); err != 0) {
      FileSystem::WriteAt(fd, data, n / 2, offset, written);
      return err;
    }
    return FileSystem::WriteAt(fd, data, n, offset, written);
  }
  int DataSync(int fd) override {
    ++data_syncs;
    if (on_sync) on_sync();
    if (int err = sync_errno.load(); err != 0) return err;
    return FileSystem::DataSync(fd);
  }
  int Truncate(int fd, off_t length) override {
    if (int err = truncate_errno.load(); err != 0) return err;
    return FileSystem::Truncate(fd, length);
  }
};

std::string Payload(uint64_t i) { return absl::StrCat("entry-", i, std::string(i % 7, 'x')); }

std::vector<std::string> SegmentNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::string name = e.path().filename();
    if (absl::StartsWith(name, "wal-")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class LocalLogTest : public ::testing::Test {
 protected:
  LocalLog::Options Opts(uint64_t segment_bytes = 64ull << 20) {
    LocalLog::Options o;
    o.directory = tmp_.Sub("wal");
    o.segment_bytes = segment_bytes;
    o.fs = &fs_;
    return o;
  }

  // Appends Payload(first) .. Payload(first + n - 1) through a fresh log,
  // one batch each, and closes it. REQUIRES: the log ends at index first - 1.
  void Append(uint64_t first, uint64_t n, LocalLog::Options options) {
    LocalLog log(std::move(options));
    Recorder rec;
    Replayed replayed;
    absl::StatusOr<OpenResult> opened = log.Open(0, replayed.Fn(), rec.Callbacks());
    ASSERT_TRUE(opened.ok()) << opened.status();
    ASSERT_EQ(opened->last_index, first - 1);
    // One at a time, so that each entry is its own batch and segments roll
    // over at predictable places.
    for (uint64_t i = first; i < first + n; ++i) {
      log.Propose({Payload(i), i});
      rec.WaitForOutcomes(i + 1 - first);
    }
    log.Close();
    ASSERT_TRUE(rec.rejected().empty());
  }

  // Opens a log after `after_index` and returns what Open said; the
  // replayed entries go to *replayed.
  absl::StatusOr<OpenResult> Reopen(uint64_t after_index, Replayed* replayed,
                                    LocalLog::Options options) {
    LocalLog log(std::move(options));
    Recorder rec;
    return log.Open(after_index, replayed->Fn(), rec.Callbacks());
  }

  void ExpectReplayed(const Replayed& replayed, uint64_t first, uint64_t last) {
    ASSERT_EQ(replayed.entries.size(), last + 1 - first);
    for (uint64_t i = first; i <= last; ++i) {
      EXPECT_EQ(replayed.entries[i - first].first, i);
      EXPECT_EQ(replayed.entries[i - first].second, Payload(i));
    }
  }

  TempDir tmp_;
  FaultyFs fs_;
};

TEST_F(LocalLogTest, ReopenReplaysEveryEntryInOrderAndIndexesContinue) {
  Append(1, 100, Opts());
  {
    LocalLog log(Opts());
    Recorder rec;
    Replayed replayed;
    absl::StatusOr<OpenResult> opened = log.Open(0, replayed.Fn(), rec.Callbacks());
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_EQ(opened->last_index, 100u);
    EXPECT_TRUE(opened->notes.empty());
    ExpectReplayed(replayed, 1, 100);
    log.Propose({Payload(101), 7});
    rec.WaitForOutcomes(1);
    ASSERT_EQ(rec.committed().size(), 1u);
    EXPECT_EQ(rec.committed()[0].index, 101u);
    EXPECT_EQ(rec.committed()[0].data, Payload(101));
    EXPECT_EQ(rec.committed()[0].cookie, 7u);
  }
  Replayed replayed;
  ASSERT_TRUE(Reopen(0, &replayed, Opts()).ok());
  ExpectReplayed(replayed, 1, 101);
}

TEST_F(LocalLogTest, EmptyDirectoryStartsAfterTheSnapshot) {
  LocalLog log(Opts());
  Recorder rec;
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = log.Open(41, replayed.Fn(), rec.Callbacks());
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->last_index, 41u);
  log.Propose({"a", 0});
  rec.WaitForOutcomes(1);
  EXPECT_EQ(rec.committed().at(0).index, 42u);
  EXPECT_THAT(SegmentNames(Opts().directory), ::testing::ElementsAre(wal::SegmentName(0, 42)));
}

TEST_F(LocalLogTest, ConcurrentProposersGetEachProposalCommittedOnceInOneOrder) {
  constexpr int kThreads = 8;
  constexpr uint64_t kPerThread = 400;
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (uint64_t i = 0; i < kPerThread; ++i) {
        uint64_t cookie = (uint64_t(t) << 32) | i;
        log.Propose({absl::StrCat(t, ":", i), cookie});
      }
    });
  }
  for (std::thread& t : threads) t.join();
  rec.WaitForOutcomes(kThreads * kPerThread);
  log.Close();

  std::vector<Recorder::Committed> committed = rec.committed();
  ASSERT_EQ(committed.size(), kThreads * kPerThread);
  EXPECT_TRUE(rec.rejected().empty());
  std::set<uint64_t> cookies;
  std::vector<int64_t> last_seq(kThreads, -1);
  for (size_t k = 0; k < committed.size(); ++k) {
    const Recorder::Committed& c = committed[k];
    EXPECT_EQ(c.index, k + 1);  // one total order, no gaps
    int t = static_cast<int>(c.cookie >> 32);
    int64_t seq = static_cast<int64_t>(c.cookie & 0xFFFFFFFF);
    EXPECT_EQ(c.data, absl::StrCat(t, ":", seq));
    EXPECT_TRUE(cookies.insert(c.cookie).second) << "committed twice: " << c.data;
    EXPECT_GT(seq, last_seq[t]) << "a thread's proposals were reordered";
    last_seq[t] = seq;
  }
  LocalLog::Stats stats = log.stats();
  EXPECT_EQ(stats.entries, kThreads * kPerThread);
  EXPECT_EQ(stats.syncs, stats.batches);
  EXPECT_LE(stats.batches, stats.entries);

  Replayed replayed;
  ASSERT_TRUE(Reopen(0, &replayed, Opts()).ok());
  ASSERT_EQ(replayed.entries.size(), committed.size());
  for (size_t k = 0; k < committed.size(); ++k) {
    EXPECT_EQ(replayed.entries[k].first, committed[k].index);
    EXPECT_EQ(replayed.entries[k].second, committed[k].data);
  }
}

// While the writer syncs one batch, everything proposed meanwhile becomes
// the next batch: one sync for all of it.
TEST_F(LocalLogTest, ProposalsArrivingDuringASyncShareTheNextSync) {
  absl::Notification in_first_sync, release_first_sync;
  std::atomic<bool> first{true};
  fs_.on_sync = [&] {
    if (first.exchange(false)) {
      in_first_sync.Notify();
      release_first_sync.WaitForNotification();
    }
  };
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  log.Propose({"first", 0});
  in_first_sync.WaitForNotification();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < 25; ++i) log.Propose({absl::StrCat(t, ":", i), 1});
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(rec.committed().empty()) << "committed before its sync returned";
  release_first_sync.Notify();
  rec.WaitForOutcomes(101);
  LocalLog::Stats stats = log.stats();
  EXPECT_EQ(stats.entries, 101u);
  EXPECT_EQ(stats.batches, 2u);
  EXPECT_EQ(stats.syncs, 2u);
}

TEST_F(LocalLogTest, CommittedCallbackMayProposeMore) {
  LocalLog log(Opts());
  Recorder rec;
  absl::Notification done;
  LogCallbacks cb = rec.Callbacks();
  cb.committed = [&](uint64_t index, std::string_view, uint64_t) {
    if (index < 20) {
      log.Propose({Payload(index + 1), index + 1});
    } else {
      done.Notify();
    }
  };
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), std::move(cb)).ok());
  log.Propose({Payload(1), 1});
  done.WaitForNotification();
  log.Close();
  Replayed replayed;
  ASSERT_TRUE(Reopen(0, &replayed, Opts()).ok());
  ExpectReplayed(replayed, 1, 20);
}

TEST_F(LocalLogTest, ProposeAfterCloseIsRejectedAtOnce) {
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  log.Close();
  log.Close();  // idempotent
  log.Propose({"late", 9});
  ASSERT_EQ(rec.rejected().size(), 1u);
  EXPECT_EQ(rec.rejected()[0].first, 9u);
  EXPECT_TRUE(absl::IsUnavailable(rec.rejected()[0].second));
}

TEST_F(LocalLogTest, SegmentsRollOverAndNamesCarryTheirFirstIndex) {
  // Records of Payload(i) take 16 + 8..14 bytes: a few per 100-byte segment.
  Append(1, 60, Opts(100));
  std::vector<std::string> names = SegmentNames(Opts().directory);
  ASSERT_GT(names.size(), 10u);
  uint64_t expect_first = 1;
  for (size_t i = 0; i < names.size(); ++i) {
    uint64_t seq, first;
    ASSERT_TRUE(wal::ParseSegmentName(names[i], &seq, &first)) << names[i];
    EXPECT_EQ(seq, i);
    EXPECT_EQ(first, expect_first) << names[i];
    // Count the records in this segment to know where the next one starts.
    std::string data = ReadAll(Opts().directory + "/" + names[i]);
    std::string_view view = data;
    while (!view.empty()) {
      wal::Record r;
      ASSERT_EQ(wal::DecodeRecord(view, &r), wal::Decode::kOk);
      EXPECT_EQ(r.index, expect_first++);
      view.remove_prefix(r.size);
    }
  }
  EXPECT_EQ(expect_first, 61u);
  Replayed replayed;
  ASSERT_TRUE(Reopen(0, &replayed, Opts(100)).ok());
  ExpectReplayed(replayed, 1, 60);
}

TEST_F(LocalLogTest, CompactDeletesOnlyWholeSegmentsCoveredBySnapshot) {
  Append(1, 60, Opts(100));
  size_t before = SegmentNames(Opts().directory).size();
  {
    LocalLog log(Opts(100));
    Recorder rec;
    Replayed replayed;
    ASSERT_TRUE(log.Open(0, replayed.Fn(), rec.Callbacks()).ok());
    log.Compact(30);
    log.Close();  // finishes the compaction
    EXPECT_GT(log.stats().segments_deleted, 0u);
    EXPECT_EQ(log.stats().segments_deleted + SegmentNames(Opts().directory).size(), before);
  }
  std::vector<std::string> names = SegmentNames(Opts().directory);
  uint64_t seq, first, second_first;
  ASSERT_GE(names.size(), 2u);
  ASSERT_TRUE(wal::ParseSegmentName(names[0], &seq, &first));
  ASSERT_TRUE(wal::ParseSegmentName(names[1], &seq, &second_first));
  EXPECT_LE(first, 31u) << "deleted a segment holding entry 31";
  EXPECT_GT(second_first, 31u) << "kept a segment all of whose entries are <= 30";

  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(30, &replayed, Opts(100));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->last_index, 60u);
  ExpectReplayed(replayed, 31, 60);

  // Entries before the first segment are gone: a snapshot through 10 does
  // not cover the hole.
  Replayed gap;
  opened = Reopen(10, &gap, Opts(100));
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(names[0]));
  EXPECT_THAT(opened.status().message(), HasSubstr("are missing"));
}

TEST_F(LocalLogTest, CompactNeverDeletesTheSegmentBeingWritten) {
  Append(1, 10, Opts());  // one segment
  LocalLog log(Opts());
  Recorder rec;
  Replayed replayed;
  ASSERT_TRUE(log.Open(0, replayed.Fn(), rec.Callbacks()).ok());
  log.Compact(1000);
  log.Close();
  EXPECT_EQ(log.stats().segments_deleted, 0u);
  EXPECT_EQ(SegmentNames(Opts().directory).size(), 1u);
}

TEST_F(LocalLogTest, OpenAfterIndexSkipsEntriesTheSnapshotCovers) {
  Append(1, 60, Opts(100));
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(40, &replayed, Opts(100));
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ(opened->last_index, 60u);
  ExpectReplayed(replayed, 41, 60);
}

TEST_F(LocalLogTest, SnapshotBeyondTheEndOfTheLogIsDataLoss) {
  Append(1, 10, Opts());
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(15, &replayed, Opts());
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("ends at index 10"));
}

TEST_F(LocalLogTest, MissingMiddleSegmentIsDataLoss) {
  Append(1, 60, Opts(100));
  std::vector<std::string> names = SegmentNames(Opts().directory);
  std::filesystem::remove(Opts().directory + "/" + names[3]);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts(100));
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(names[2]));
  EXPECT_THAT(opened.status().message(), HasSubstr(names[4]));
}

TEST_F(LocalLogTest, GapInIndexesBetweenSegmentsIsDataLoss) {
  Append(1, 60, Opts(100));
  std::vector<std::string> names = SegmentNames(Opts().directory);
  uint64_t seq, first;
  ASSERT_TRUE(wal::ParseSegmentName(names.back(), &seq, &first));
  std::string renamed = wal::SegmentName(seq, first + 1);
  std::filesystem::rename(Opts().directory + "/" + names.back(), Opts().directory + "/" + renamed);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts(100));
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("gap between segments"));
  EXPECT_THAT(opened.status().message(), HasSubstr(renamed));
}

TEST_F(LocalLogTest, StrayFileNamedLikeASegmentIsDataLoss) {
  Append(1, 3, Opts());
  WriteAll(Opts().directory + "/wal-copy.log", "x");
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts());
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("wal-copy.log"));
}

class TornTailTest : public LocalLogTest {
 protected:
  void SetUp() override {
    Append(1, 10, Opts());
    segment_ = Opts().directory + "/" + wal::SegmentName(0, 1);
    original_ = ReadAll(segment_);
    last_record_ = original_.size() - (wal::kHeaderBytes + Payload(10).size());
  }

  // Opens, expects entries 1..last replayed, appends one entry, reopens
  // and expects it right after them.
  void ExpectRecoversTo(uint64_t last, bool expect_note) {
    {
      LocalLog log(Opts());
      Recorder rec;
      Replayed replayed;
      absl::StatusOr<OpenResult> opened = log.Open(0, replayed.Fn(), rec.Callbacks());
      ASSERT_TRUE(opened.ok()) << opened.status();
      EXPECT_EQ(opened->last_index, last);
      ExpectReplayed(replayed, 1, last);
      if (expect_note) {
        ASSERT_EQ(opened->notes.size(), 1u);
        EXPECT_THAT(opened->notes[0], HasSubstr("torn tail"));
        EXPECT_THAT(opened->notes[0], HasSubstr(segment_));
      } else {
        EXPECT_TRUE(opened->notes.empty());
      }
      log.Propose({"after", 0});
      rec.WaitForOutcomes(1);
      ASSERT_EQ(rec.committed().size(), 1u);
      EXPECT_EQ(rec.committed()[0].index, last + 1);
    }
    Replayed replayed;
    ASSERT_TRUE(Reopen(0, &replayed, Opts()).ok());
    ASSERT_EQ(replayed.entries.size(), last + 1);
    EXPECT_EQ(replayed.entries.back(), std::make_pair(last + 1, std::string("after")));
  }

  std::string segment_, original_;
  size_t last_record_ = 0;
};

TEST_F(TornTailTest, CutAnywhereInTheLastRecordIsTruncated) {
  for (size_t cut = last_record_; cut < original_.size(); ++cut) {
    SCOPED_TRACE(absl::StrCat("cut at ", cut));
    WriteAll(segment_, std::string_view(original_).substr(0, cut));
    ExpectRecoversTo(9, /*expect_note=*/cut > last_record_);
    if (HasFatalFailure()) return;
  }
}

TEST_F(TornTailTest, TrailingZerosAreTruncated) {
  WriteAll(segment_, original_ + std::string(100, '\0'));
  ExpectRecoversTo(10, true);
}

TEST_F(TornTailTest, ChecksumMismatchOfTheLastRecordIsTruncated) {
  std::string damaged = original_;
  damaged.back() ^= 0x01;
  WriteAll(segment_, damaged);
  ExpectRecoversTo(9, true);
}

TEST_F(TornTailTest, FlippedByteInAnEarlierRecordIsDataLossNamingFileAndOffset) {
  // Record 3 starts after records 1 and 2.
  size_t record3 = 2 * wal::kHeaderBytes + Payload(1).size() + Payload(2).size();
  std::string damaged = original_;
  damaged[record3 + wal::kHeaderBytes + 2] ^= 0x40;
  WriteAll(segment_, damaged);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts());
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(segment_));
  EXPECT_THAT(opened.status().message(), HasSubstr(absl::StrCat("offset ", record3)));
  EXPECT_EQ(ReadAll(segment_), damaged) << "recovery must not touch a damaged log";
}

TEST_F(TornTailTest, CorruptLengthInTheMiddleIsNotMistakenForATornTail) {
  // Record 5's length now claims more bytes than the file has, as a torn
  // record would; but intact records follow, so this is damage.
  size_t record5 = 0;
  for (uint64_t i = 1; i < 5; ++i) record5 += wal::kHeaderBytes + Payload(i).size();
  std::string damaged = original_;
  damaged[record5 + 6] = 0x10;  // length += 1 MiB
  WriteAll(segment_, damaged);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts());
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(absl::StrCat("offset ", record5)));
  EXPECT_THAT(opened.status().message(), HasSubstr("intact record follows"));
}

TEST_F(TornTailTest, MisplacedRecordIsDataLoss) {
  // An intact record in the wrong place: a copy of record 8 (the same size
  // as record 1) where record 1 should be.
  size_t record8 = 0;
  for (uint64_t i = 1; i < 8; ++i) record8 += wal::kHeaderBytes + Payload(i).size();
  size_t size = wal::kHeaderBytes + Payload(1).size();
  ASSERT_EQ(Payload(8).size(), Payload(1).size());
  std::string damaged = original_;
  damaged.replace(0, size, original_.substr(record8, size));
  WriteAll(segment_, damaged);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts());
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr("has index 8, expected 1"));
}

TEST_F(LocalLogTest, CorruptionInAnOlderSegmentIsDataLossEvenAtItsEnd) {
  Append(1, 60, Opts(100));
  std::vector<std::string> names = SegmentNames(Opts().directory);
  std::string path = Opts().directory + "/" + names[2];
  std::string data = ReadAll(path);
  data.back() ^= 0x01;  // the last record of a sealed segment was synced
  WriteAll(path, data);
  Replayed replayed;
  absl::StatusOr<OpenResult> opened = Reopen(0, &replayed, Opts(100));
  ASSERT_TRUE(absl::IsDataLoss(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(path));
  EXPECT_THAT(opened.status().message(), HasSubstr("not the last one"));
}

TEST_F(LocalLogTest, DiskFullRejectsTheBatchLeavesTheFileUnchangedAndRecovers) {
  Append(1, 5, Opts());
  std::string segment = Opts().directory + "/" + wal::SegmentName(0, 1);
  std::string before = ReadAll(segment);

  LocalLog log(Opts());
  Recorder rec;
  Replayed replayed;
  ASSERT_TRUE(log.Open(0, replayed.Fn(), rec.Callbacks()).ok());
  fs_.write_errno = ENOSPC;
  for (uint64_t i = 0; i < 3; ++i) log.Propose({std::string(100, 'z'), 100 + i});
  rec.WaitForOutcomes(3);
  ASSERT_EQ(rec.rejected().size(), 3u);
  for (const auto& [cookie, why] : rec.rejected()) {
    EXPECT_TRUE(absl::IsResourceExhausted(why)) << why;
    EXPECT_THAT(why.message(), HasSubstr("disk full"));
  }
  EXPECT_EQ(ReadAll(segment), before) << "the partial write was not undone";
  EXPECT_TRUE(rec.fatal().empty());

  fs_.write_errno = 0;  // space is back
  log.Propose({Payload(6), 6});
  log.Propose({Payload(7), 7});
  rec.WaitForOutcomes(5);
  ASSERT_EQ(rec.committed().size(), 2u);
  EXPECT_EQ(rec.committed()[0].index, 6u);  // rejected entries took no index
  EXPECT_EQ(rec.committed()[1].index, 7u);
  log.Close();
  Replayed after;
  ASSERT_TRUE(Reopen(0, &after, Opts()).ok());
  ExpectReplayed(after, 1, 7);
}

TEST_F(LocalLogTest, DiskFullWhenStartingASegmentRejectsUntilSpaceReturns) {
  LocalLog log(Opts(10));  // every batch fills its segment
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  log.Propose({Payload(1), 1});
  rec.WaitForOutcomes(1);
  fs_.create_errno = ENOSPC;
  log.Propose({Payload(2), 2});
  rec.WaitForOutcomes(2);
  ASSERT_EQ(rec.rejected().size(), 1u);
  EXPECT_TRUE(absl::IsResourceExhausted(rec.rejected()[0].second)) << rec.rejected()[0].second;
  fs_.create_errno = 0;
  log.Propose({Payload(2), 2});
  rec.WaitForOutcomes(3);
  ASSERT_EQ(rec.committed().size(), 2u);
  EXPECT_EQ(rec.committed()[1].index, 2u);
  log.Close();
  EXPECT_THAT(SegmentNames(Opts().directory),
              ::testing::ElementsAre(wal::SegmentName(0, 1), wal::SegmentName(1, 2)));
  Replayed replayed;
  ASSERT_TRUE(Reopen(0, &replayed, Opts(10)).ok());
  ExpectReplayed(replayed, 1, 2);
}

TEST_F(LocalLogTest, FailedSyncIsFatalOnceAndNothingIsCommittedAfterIt) {
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  log.Propose({Payload(1), 1});
  rec.WaitForOutcomes(1);
  fs_.sync_errno = EIO;
  log.Propose({Payload(2), 2});
  rec.WaitForOutcomes(2);
  fs_.sync_errno = 0;  // a retry would now "succeed": the log must not try
  int syncs = fs_.data_syncs;
  log.Propose({Payload(3), 3});
  log.Propose({Payload(4), 4});
  rec.WaitForOutcomes(4);
  log.Close();

  ASSERT_EQ(rec.fatal().size(), 1u);
  EXPECT_THAT(rec.fatal()[0].message(), HasSubstr("fdatasync"));
  EXPECT_EQ(rec.committed().size(), 1u);
  ASSERT_EQ(rec.rejected().size(), 3u);
  for (const auto& [cookie, why] : rec.rejected()) EXPECT_TRUE(absl::IsUnavailable(why)) << why;
  EXPECT_THAT(rec.rejected()[0].second.message(), HasSubstr("outcome unknown"));
  EXPECT_EQ(fs_.data_syncs, syncs) << "synced again after a failed sync";
  EXPECT_EQ(log.stats().entries, 1u);
}

TEST_F(LocalLogTest, WriteErrorOtherThanDiskFullIsFatal) {
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  fs_.write_errno = EIO;
  log.Propose({Payload(1), 1});
  rec.WaitForOutcomes(1);
  fs_.write_errno = 0;
  log.Propose({Payload(2), 2});
  rec.WaitForOutcomes(2);
  EXPECT_EQ(rec.fatal().size(), 1u);
  EXPECT_TRUE(rec.committed().empty());
  EXPECT_EQ(rec.rejected().size(), 2u);
}

TEST_F(LocalLogTest, FailedTruncateAfterDiskFullIsFatal) {
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  fs_.write_errno = ENOSPC;
  fs_.truncate_errno = EIO;
  log.Propose({Payload(1), 1});
  rec.WaitForOutcomes(1);
  ASSERT_EQ(rec.fatal().size(), 1u);
  EXPECT_THAT(rec.fatal()[0].message(), HasSubstr("cannot undo a partial write"));
  ASSERT_EQ(rec.rejected().size(), 1u);
  EXPECT_TRUE(absl::IsUnavailable(rec.rejected()[0].second));
}

TEST_F(LocalLogTest, OversizedEntryIsRejectedAndOthersInItsBatchCommit) {
  absl::Notification in_first_sync, release;
  std::atomic<bool> first{true};
  fs_.on_sync = [&] {
    if (first.exchange(false)) {
      in_first_sync.Notify();
      release.WaitForNotification();
    }
  };
  LocalLog log(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(log.Open(0, none.Fn(), rec.Callbacks()).ok());
  log.Propose({"a", 1});
  in_first_sync.WaitForNotification();
  log.Propose({"b", 2});
  log.Propose({std::string(wal::kMaxEntryBytes + 1, 'x'), 3});
  log.Propose({"c", 4});
  release.Notify();
  rec.WaitForOutcomes(4);
  ASSERT_EQ(rec.rejected().size(), 1u);
  EXPECT_EQ(rec.rejected()[0].first, 3u);
  EXPECT_TRUE(absl::IsInvalidArgument(rec.rejected()[0].second));
  ASSERT_EQ(rec.committed().size(), 3u);
  EXPECT_EQ(rec.committed()[2].index, 3u);
  EXPECT_EQ(rec.committed()[2].data, "c");
}

TEST_F(LocalLogTest, SecondOpenOfTheSameDirectoryFails) {
  LocalLog first(Opts());
  Recorder rec;
  Replayed none;
  ASSERT_TRUE(first.Open(0, none.Fn(), rec.Callbacks()).ok());
  LocalLog second(Opts());
  absl::StatusOr<OpenResult> opened = second.Open(0, none.Fn(), rec.Callbacks());
  ASSERT_TRUE(absl::IsFailedPrecondition(opened.status())) << opened.status();
  EXPECT_THAT(opened.status().message(), HasSubstr(Opts().directory + "/LOCK"));
  first.Close();
  LocalLog third(Opts());
  EXPECT_TRUE(third.Open(0, none.Fn(), rec.Callbacks()).ok());
}

TEST_F(LocalLogTest, ReplayErrorStopsOpen) {
  Append(1, 5, Opts());
  LocalLog log(Opts());
  Recorder rec;
  absl::StatusOr<OpenResult> opened = log.Open(
      0,
      [](uint64_t index, std::string_view) {
        return index == 3 ? absl::InternalError("bad command") : absl::OkStatus();
      },
      rec.Callbacks());
  EXPECT_EQ(opened.status(), absl::InternalError("bad command"));
}

}  // namespace
}  // namespace baton::storage
