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

// A replicated log as the sequencer sees it, scripted by the test: it keeps
// what is proposed, and the test commits it, or commits what "another node"
// proposed (cookie 0). Everything on the test's thread.
class ScriptedLog final : public storage::ConsensusLog {
 public:
  absl::StatusOr<storage::OpenResult> Open(uint64_t, const storage::ReplayFn&,
                                           storage::LogCallbacks callbacks) override {
    callbacks_ = std::move(callbacks);
    return storage::OpenResult{};
  }
  void Propose(storage::Proposal p) override { proposed.push_back(std::move(p)); }
  void Compact(uint64_t) override {}
  void Close() override {}

  // Commits every proposal so far, in order.
  void CommitProposed() {
    std::vector<storage::Proposal> batch;
    batch.swap(proposed);
    for (auto& p : batch) callbacks_.committed(++index_, p.data, p.cookie);
  }
  // Commits an entry another node proposed.
  void CommitForeign(Time now, const Entry& e) {
    callbacks_.committed(++index_, EncodeEntry(now, e), 0);
  }

  std::vector<storage::Proposal> proposed;

 private:
  storage::LogCallbacks callbacks_;
  uint64_t index_ = 0;
};

struct Outcomes {
  std::vector<std::pair<Time, Entry>> dispatched;
  std::vector<Entry> queries;
  std::vector<std::pair<Entry, absl::Status>> rejected;
};

// A sequencer on a ScriptedLog, opened as a follower, recording what it
// dispatches and rejects.
class ReplicatedSequencerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    s.StartAsFollower();
    ASSERT_TRUE(
        s.Open([](uint64_t, Time, Entry) { return absl::OkStatus(); },
               [this](uint64_t, Time now, Entry e) {
                 out.dispatched.emplace_back(now, std::move(e));
               },
               [this](uint64_t, Time, Entry e) { out.queries.push_back(std::move(e)); },
               [this](Entry e, absl::Status why) { out.rejected.emplace_back(std::move(e), why); },
               [](absl::Status why) { ADD_FAILURE() << "fatal: " << why; })
            .ok());
  }

  ManualClock clock{1'000'000};
  ScriptedLog* raw = new ScriptedLog;  // owned by s
  Sequencer s{std::unique_ptr<storage::ConsensusLog>(raw), &clock};
  Outcomes out;
};

TEST_F(ReplicatedSequencerTest, AFollowerProposesNothingAndRefusesClientsNamingTheLeader) {
  s.SetLeadership(false, "10.0.0.2:7411");
  Entry client{0, apply::SetEvent{"e"}, apply::OpRef{0, 5}};
  s.Submit(client);
  s.SubmitQuery(Entry{0, apply::DescribeResource{"e"}, apply::OpRef{0, 6}});
  s.Submit(Entry{0, apply::Tick{}, {}});                             // time is the leader's
  s.Submit(Entry{1, apply::SessionEnded{42}, {}, /*source=*/3, 1});  // stays in the outbox
  EXPECT_TRUE(raw->proposed.empty());
  ASSERT_EQ(out.rejected.size(), 2u);
  for (auto& [e, why] : out.rejected) {
    EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(why.message().find("the leader is 10.0.0.2:7411"), std::string::npos) << why;
    auto leader = why.GetPayload(kLeaderPayload);
    ASSERT_TRUE(leader.has_value());
    EXPECT_EQ(std::string(*leader), "10.0.0.2:7411");
  }
  s.Flush();  // nothing submitted counts: returns at once
}

TEST_F(ReplicatedSequencerTest, ForeignEntriesApplyWithTheirOriginAndLiftClusterTime) {
  // The old leader's clock was ahead of this node's.
  raw->CommitForeign(9'000'000, Entry{0, apply::SetEvent{"a"}, apply::OpRef{1, 77}});
  ASSERT_EQ(out.dispatched.size(), 1u);
  EXPECT_EQ(out.dispatched[0].first, 9'000'000);
  EXPECT_TRUE(out.dispatched[0].second.foreign);
  EXPECT_EQ(out.dispatched[0].second.origin.id, 77u);  // the same state on every node
  EXPECT_EQ(s.foreign(), 1u);
  // Leading now: Recover first, then what comes after, and never earlier
  // in cluster time than what the old leader stamped.
  s.BecomeLeader({Entry{0, apply::Recover{}, {}}});
  s.Submit(Set("b"));
  raw->CommitProposed();
  ASSERT_EQ(out.dispatched.size(), 3u);
  EXPECT_TRUE(std::holds_alternative<apply::Recover>(out.dispatched[1].second.command));
  EXPECT_EQ(NameOf(out.dispatched[2].second), "b");
  EXPECT_FALSE(out.dispatched[2].second.foreign);
  EXPECT_GE(out.dispatched[1].first, 9'000'000);
  EXPECT_GE(out.dispatched[2].first, out.dispatched[1].first);
  // Deposed: refuses again, naming nobody while no leader is known.
  s.SetLeadership(false, "");
  s.Submit(Entry{0, apply::SetEvent{"c"}, apply::OpRef{0, 9}});
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_NE(out.rejected[0].second.message().find("no leader is known"), std::string::npos);
}

TEST_F(ReplicatedSequencerTest, ReadsWaitForAReadIndexAndOneQuestionServesABatch) {
  std::vector<uint64_t> asked;
  s.UseReadIndex([&](uint64_t ctx) { asked.push_back(ctx); });
  s.BecomeLeader({});
  auto read = [](const std::string& name, uint64_t op) {
    return Entry{0, apply::DescribeResource{name}, apply::OpRef{0, op}};
  };
  s.SubmitQuery(read("a", 1));
  s.SubmitQuery(read("b", 2));  // arrives while the question is out
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_TRUE(out.queries.empty());  // not before this node knows it leads
  s.OnReadIndex(asked[0], absl::OkStatus());
  ASSERT_EQ(out.queries.size(), 1u);
  EXPECT_EQ(NameOf(out.queries[0]), "?a");
  ASSERT_EQ(asked.size(), 2u);  // b's question, asked as soon as a's came back
  // A read after this node's own write also waits for the write.
  s.Submit(Set("w"));
  s.SubmitQuery(read("c", 3));
  s.OnReadIndex(asked[1], absl::OkStatus());
  ASSERT_EQ(out.queries.size(), 2u);
  EXPECT_EQ(NameOf(out.queries[1]), "?b");
  ASSERT_EQ(asked.size(), 3u);
  s.OnReadIndex(asked[2], absl::OkStatus());
  EXPECT_EQ(out.queries.size(), 2u);  // c waits for w
  raw->CommitProposed();
  ASSERT_EQ(out.queries.size(), 3u);
  EXPECT_EQ(NameOf(out.queries[2]), "?c");
  // An answer to a question already answered changes nothing.
  s.OnReadIndex(asked[0], absl::OkStatus());
  EXPECT_EQ(out.queries.size(), 3u);
  EXPECT_EQ(s.read_rounds(), 3u);
  // Deposed before its question came back: the read is refused, naming the
  // leader, and never served from this node's (possibly stale) state.
  s.SubmitQuery(read("d", 4));
  ASSERT_EQ(asked.size(), 4u);
  s.SetLeadership(false, "10.0.0.2:7411");
  s.OnReadIndex(asked[3], absl::UnavailableError("not the leader"));
  EXPECT_EQ(out.queries.size(), 3u);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].first.origin.id, 4u);
  EXPECT_EQ(out.rejected[0].second.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(out.rejected[0].second.message().find("the leader is 10.0.0.2:7411"), std::string::npos)
      << out.rejected[0].second;
  EXPECT_TRUE(out.rejected[0].second.GetPayload(kLeaderPayload).has_value());
}

// A serializable read is answered from this node's state at once: no read
// index, and on a follower too (where a linearizable one is refused).
TEST_F(ReplicatedSequencerTest, SerializableReadsNeedNoReadIndexNorLeadership) {
  std::vector<uint64_t> asked;
  s.UseReadIndex([&](uint64_t ctx) { asked.push_back(ctx); });
  auto read = [](const std::string& name, uint64_t op, bool serializable) {
    Entry e{0, apply::DescribeResource{name}, apply::OpRef{0, op}};
    e.serializable = serializable;
    return e;
  };
  s.SetLeadership(false, "10.0.0.2:7411");
  s.SubmitQuery(read("a", 1, /*serializable=*/true));
  ASSERT_EQ(out.queries.size(), 1u);
  EXPECT_EQ(NameOf(out.queries[0]), "?a");
  s.SubmitQuery(read("b", 2, /*serializable=*/false));
  EXPECT_EQ(out.queries.size(), 1u);
  ASSERT_EQ(out.rejected.size(), 1u);
  EXPECT_EQ(out.rejected[0].second.code(), absl::StatusCode::kUnavailable);
  // On the leader: still no question asked, but it follows this node's own
  // earlier proposals (a client reads its own writes).
  s.BecomeLeader({});
  s.Submit(Set("w"));
  s.SubmitQuery(read("c", 3, /*serializable=*/true));
  EXPECT_EQ(out.queries.size(), 1u);
  raw->CommitProposed();
  ASSERT_EQ(out.queries.size(), 2u);
  EXPECT_EQ(NameOf(out.queries[1]), "?c");
  EXPECT_TRUE(asked.empty());
  EXPECT_EQ(s.read_rounds(), 0u);
}

}  // namespace
}  // namespace baton::log
