// The Sequencer: cluster time never goes back along the log, entries are
// dispatched in submission order, a query waits behind the changes submitted
// before it, and a reopened log replays exactly what was committed.
#include "service/log/sequencer.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <mutex>
#include <thread>

#include "storage/local_log.h"
#include "storage/memory_log.h"

namespace baton::log {
namespace {

struct Seen {
  std::mutex mu;
  std::vector<std::pair<uint64_t, Time>> changes;  // (index, now)
  std::vector<std::string> order;                  // names, changes and queries
};

std::string NameOf(const Entry& e) {
  if (auto* s = std::get_if<apply::SetEvent>(&e.command)) return s->name;
  if (auto* d = std::get_if<apply::DescribeResource>(&e.command)) return "?" + d->name;
  return "";
}

absl::Status Open(Sequencer& s, Seen& seen, std::vector<Entry>* replayed = nullptr) {
  return s.Open(
      [&](uint64_t, Time, Entry e) {
        if (replayed != nullptr) replayed->push_back(std::move(e));
        return absl::OkStatus();
      },
      [&](uint64_t index, Time now, Entry e) {
        std::lock_guard<std::mutex> l(seen.mu);
        seen.changes.emplace_back(index, now);
        seen.order.push_back(NameOf(e));
      },
      [&](uint64_t, Time, Entry e) {
        std::lock_guard<std::mutex> l(seen.mu);
        seen.order.push_back(NameOf(e));
      },
      [](Entry, absl::Status why) { ADD_FAILURE() << "rejected: " << why; },
      [](absl::Status why) { ADD_FAILURE() << "fatal: " << why; });
}

Entry Set(const std::string& name) { return Entry{0, apply::SetEvent{name}, {}}; }
Entry Query(const std::string& name) { return Entry{0, apply::DescribeResource{name}, {}}; }

class TempDir {
 public:
  TempDir() {
    std::string p = (std::filesystem::temp_directory_path() / "baton-seq-XXXXXX").string();
    path_ = mkdtemp(p.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(SequencerTest, ClusterTimeNeverGoesBackEvenWhenTheClockDoes) {
  ManualClock clock(5'000'000);
  Sequencer s(std::make_unique<storage::MemoryLog>(), &clock);
  Seen seen;
  ASSERT_TRUE(Open(s, seen).ok());
  s.Submit(Set("a"));
  clock.Advance(-1'000'000);  // the machine's clock steps back
  s.Submit(Set("b"));
  clock.Advance(2'000'000);
  s.Submit(Set("c"));
  s.Flush();
  ASSERT_EQ(seen.changes.size(), 3u);
  EXPECT_EQ(seen.changes[0].second, 5'000'000);
  EXPECT_EQ(seen.changes[1].second, 5'000'000);
  EXPECT_EQ(seen.changes[2].second, 6'000'000);
  EXPECT_LT(seen.changes[0].first, seen.changes[1].first);
  EXPECT_LT(seen.changes[1].first, seen.changes[2].first);
}

TEST(SequencerTest, AQueryWaitsBehindTheChangesSubmittedBeforeIt) {
  TempDir dir;
  ManualClock clock;
  storage::LocalLog::Options o;
  o.directory = dir.path();
  Sequencer s(std::make_unique<storage::LocalLog>(o), &clock);
  Seen seen;
  ASSERT_TRUE(Open(s, seen).ok());
  for (int round = 0; round < 50; ++round) {
    std::string n = std::to_string(round);
    s.Submit(Set("x" + n));
    s.SubmitQuery(Query("x" + n));  // must not overtake the durable write
  }
  s.Flush();
  // The last query may be released just after Flush returns.
  for (int i = 0; i < 1000; ++i) {
    {
      std::lock_guard<std::mutex> l(seen.mu);
      if (seen.order.size() == 100) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard<std::mutex> l(seen.mu);
  ASSERT_EQ(seen.order.size(), 100u);
  for (int round = 0; round < 50; ++round) {
    std::string n = std::to_string(round);
    EXPECT_EQ(seen.order[2 * round], "x" + n);
    EXPECT_EQ(seen.order[2 * round + 1], "?x" + n);
  }
}

TEST(SequencerTest, AReopenedLogReplaysWhatWasCommittedWithItsTime) {
  TempDir dir;
  ManualClock clock(7'000'000);
  storage::LocalLog::Options o;
  o.directory = dir.path();
  {
    Sequencer s(std::make_unique<storage::LocalLog>(o), &clock);
    Seen seen;
    ASSERT_TRUE(Open(s, seen).ok());
    Entry derived{1, apply::SessionEnded{42}, {}, 3, 2};
    s.Submit(Set("one"));
    s.Submit(std::move(derived));
    s.Flush();
  }
  clock.Advance(-3'000'000);  // restarted on a machine whose clock is behind
  Sequencer s(std::make_unique<storage::LocalLog>(o), &clock);
  Seen seen;
  std::vector<Entry> replayed;
  ASSERT_TRUE(Open(s, seen, &replayed).ok());
  ASSERT_EQ(replayed.size(), 2u);
  EXPECT_EQ(NameOf(replayed[0]), "one");
  EXPECT_EQ(replayed[1].shard, 1u);
  EXPECT_EQ(std::get<apply::SessionEnded>(replayed[1].command).session, 42u);
  EXPECT_EQ(replayed[1].source_index, 3u);
  EXPECT_EQ(replayed[1].source_ordinal, 2u);
  // New entries are stamped no earlier than the replayed ones.
  s.Submit(Set("two"));
  s.Flush();
  ASSERT_EQ(seen.changes.size(), 1u);
  EXPECT_EQ(seen.changes[0].first, 3u);
  EXPECT_EQ(seen.changes[0].second, 7'000'000);
}

}  // namespace
}  // namespace baton::log
