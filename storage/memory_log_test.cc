// MemoryLog: the same contract as LocalLog without a disk.
#include "storage/memory_log.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace baton::storage {
namespace {

TEST(MemoryLogTest, CommitsInProposalOrderOnItsOwnThreadAfterTheSnapshot) {
  MemoryLog log;
  testutil::Recorder rec;
  testutil::Replayed replayed;
  std::thread::id caller = std::this_thread::get_id(), callback_thread;
  LogCallbacks cb = rec.Callbacks();
  auto record = cb.committed;
  cb.committed = [&, record](uint64_t index, std::string_view data, uint64_t cookie) {
    callback_thread = std::this_thread::get_id();
    record(index, data, cookie);
  };
  absl::StatusOr<OpenResult> opened = log.Open(10, replayed.Fn(), std::move(cb));
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->last_index, 10u);
  for (uint64_t i = 0; i < 50; ++i) log.Propose({absl::StrCat("e", i), i});
  log.Close();  // commits everything proposed first
  std::vector<testutil::Recorder::Committed> committed = rec.committed();
  ASSERT_EQ(committed.size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(committed[i].index, 11 + i);
    EXPECT_EQ(committed[i].data, absl::StrCat("e", i));
    EXPECT_EQ(committed[i].cookie, i);
  }
  EXPECT_NE(callback_thread, caller);
  EXPECT_TRUE(replayed.entries.empty());
  EXPECT_EQ(log.entries(), 50u);
  EXPECT_GE(log.batches(), 1u);
}

TEST(MemoryLogTest, ProposeAfterCloseIsRejected) {
  MemoryLog log;
  testutil::Recorder rec;
  testutil::Replayed replayed;
  ASSERT_TRUE(log.Open(0, replayed.Fn(), rec.Callbacks()).ok());
  log.Compact(100);  // no-op
  log.Close();
  log.Propose({"late", 3});
  ASSERT_EQ(rec.rejected().size(), 1u);
  EXPECT_TRUE(absl::IsUnavailable(rec.rejected()[0].second));
}

}  // namespace
}  // namespace baton::storage
