// RaftLog against a real baton-raftd (raft/, built by CMake's baton_raftd
// target): what one node commits and replays, what a node that cannot lead
// refuses, what compaction hands back after a restart, and what happens when
// baton-raftd dies. Clusters of several nodes, failover and partitions are
// tested in raft/clustertest (Go) and tests/cluster. No sleeps: tests wait
// for callbacks, each wait bounded.
#include "storage/raft_log.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/test_util.h"

namespace baton::storage {
namespace {

using ::testing::HasSubstr;
using testutil::Recorder;
using testutil::Replayed;
using testutil::TempDir;

constexpr absl::Duration kWait = absl::Seconds(20);

// A port nobody listens on now (bound, read, released).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// What the events of one RaftLog said. Thread-safe.
class EventLog {
 public:
  RaftLog::Events Events() {
    RaftLog::Events e;
    e.leadership = [this](const raftwire::Leadership& l) {
      absl::MutexLock lock(&mu_);
      leader_ = l.is_leader;
    };
    e.install_snapshot = [this](uint64_t index, std::string_view data) {
      absl::MutexLock lock(&mu_);
      installed_.emplace_back(index, std::string(data));
      return absl::OkStatus();
    };
    return e;
  }
  bool WaitUntilLeader() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&leader_), kWait);
  }
  std::vector<std::pair<uint64_t, std::string>> installed() {
    absl::MutexLock lock(&mu_);
    return installed_;
  }

 private:
  absl::Mutex mu_;
  bool leader_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<uint64_t, std::string>> installed_ ABSL_GUARDED_BY(mu_);
};

// One RaftLog and what its callbacks and events said.
struct Node {
  explicit Node(RaftLog::Options o) : log(std::move(o), ev.Events()) {}
  absl::StatusOr<OpenResult> Open(uint64_t after = 0) {
    return log.Open(after, replayed.Fn(), rec.Callbacks());
  }
  Recorder rec;
  EventLog ev;
  Replayed replayed;
  RaftLog log;  // last: closed first
};

class RaftLogTest : public ::testing::Test {
 protected:
  // Options for node `id` of a cluster of `size` nodes on fresh ports.
  RaftLog::Options NodeOptions(uint64_t id, int size) {
    if (ports_.empty()) {
      for (int i = 0; i < size; ++i) ports_.push_back(FreePort());
    }
    RaftLog::Options o;
    o.raftd_path = BATON_RAFTD;
    o.node_id = id;
    o.data_dir = dir_.Sub(absl::StrCat("raft-", id));
    o.peer_listen = absl::StrCat("127.0.0.1:", ports_[id - 1]);
    for (int i = 0; i < size; ++i) {
      if (i > 0) o.initial_cluster += ",";
      absl::StrAppend(&o.initial_cluster, i + 1, "=127.0.0.1:", ports_[i],
                      "@127.0.0.1:", 7400 + i + 1);
    }
    o.open_timeout = kWait;
    o.read_snapshot = [this](uint64_t index) -> absl::StatusOr<std::pair<uint64_t, std::string>> {
      return std::make_pair(index, absl::StrCat("state through ", index));
    };
    return o;
  }

  static void ProposeAll(RaftLog& log, int from, int to) {
    for (int i = from; i < to; ++i) {
      log.Propose(Proposal{absl::StrCat("entry ", i), static_cast<uint64_t>(i + 1)});
    }
  }

  TempDir dir_;
  std::vector<int> ports_;
};

TEST_F(RaftLogTest, ASingleNodeCommitsInOrderAndReplaysAfterARestart) {
  std::vector<uint64_t> indexes;
  {
    Node n(NodeOptions(1, 1));
    auto opened = n.Open(0);
    ASSERT_TRUE(opened.ok()) << opened.status();
    EXPECT_TRUE(n.replayed.entries.empty());
    ASSERT_TRUE(n.ev.WaitUntilLeader());
    ProposeAll(n.log, 0, 200);
    n.rec.WaitForOutcomes(200);
    auto committed = n.rec.committed();
    ASSERT_EQ(committed.size(), 200u) << n.rec.rejected().front().second;
    for (int i = 0; i < 200; ++i) {
      EXPECT_EQ(committed[i].cookie, static_cast<uint64_t>(i + 1));
      EXPECT_EQ(committed[i].data, absl::StrCat("entry ", i));
      if (i > 0) {
        EXPECT_GT(committed[i].index, committed[i - 1].index);
      }
      indexes.push_back(committed[i].index);
    }
    n.log.Close();
    EXPECT_TRUE(n.rec.fatal().empty());
  }
  // Everything comes back, in order, with the same indexes; and only what
  // lies after the caller's snapshot. What the WAL knows to be committed is
  // replayed by Open; the rest (etcd's WAL may record the commit index late)
  // commits again once the node has been re-elected, with cookie 0.
  for (uint64_t after : {uint64_t{0}, indexes[99]}) {
    Node n(NodeOptions(1, 1));
    auto opened = n.Open(after);
    ASSERT_TRUE(opened.ok()) << opened.status();
    size_t first = after == 0 ? 0 : 100;
    ASSERT_LE(n.replayed.entries.size(), 200 - first);
    n.rec.WaitForOutcomes(200 - first - n.replayed.entries.size());
    auto all = n.replayed.entries;
    for (auto& c : n.rec.committed()) {
      EXPECT_EQ(c.cookie, 0u);
      all.emplace_back(c.index, c.data);
    }
    ASSERT_EQ(all.size(), 200 - first) << "after " << after;
    for (size_t i = first; i < 200; ++i) {
      EXPECT_EQ(all[i - first].first, indexes[i]);
      EXPECT_EQ(all[i - first].second, absl::StrCat("entry ", i));
    }
    EXPECT_TRUE(opened->last_index >= after && opened->last_index <= indexes.back());
  }
}

TEST_F(RaftLogTest, ANodeThatCannotLeadRefusesProposalsAsUnavailable) {
  // Node 1 of 3, alone: it can never win an election.
  Node n(NodeOptions(1, 3));
  ASSERT_TRUE(n.Open(0).ok());
  ProposeAll(n.log, 0, 3);
  n.rec.WaitForOutcomes(3);
  auto rejected = n.rec.rejected();
  ASSERT_EQ(rejected.size(), 3u);
  for (auto& [cookie, why] : rejected) {
    EXPECT_EQ(why.code(), absl::StatusCode::kUnavailable) << why;
    EXPECT_THAT(why.message(), ::testing::Not(HasSubstr("outcome unknown"))) << why;
  }
  auto status = n.log.Status(kWait);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->node_id, 1u);
  EXPECT_FALSE(status->is_leader);
  EXPECT_EQ(status->members.size(), 3u);
  auto moved = n.log.TransferLeadership(2, kWait);
  EXPECT_EQ(moved.status().code(), absl::StatusCode::kUnavailable) << moved.status();
}

TEST_F(RaftLogTest, AfterACompactionARestartInstallsTheSnapshotThenReplaysTheRest) {
  std::vector<uint64_t> indexes;
  {
    Node n(NodeOptions(1, 1));
    ASSERT_TRUE(n.Open(0).ok());
    ASSERT_TRUE(n.ev.WaitUntilLeader());
    ProposeAll(n.log, 0, 50);
    n.rec.WaitForOutcomes(50);
    for (auto& c : n.rec.committed()) indexes.push_back(c.index);
    ASSERT_EQ(indexes.size(), 50u);
    n.log.Compact(indexes[29]);
    // Status is answered after the Compact before it was handled.
    auto status = n.log.Status(kWait);
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->snapshot_index, indexes[29]);
    n.log.Close();
  }
  Node n(NodeOptions(1, 1));
  auto opened = n.Open(0);
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto installed = n.ev.installed();
  ASSERT_EQ(installed.size(), 1u);
  EXPECT_EQ(installed[0].first, indexes[29]);
  EXPECT_EQ(installed[0].second, absl::StrCat("state through ", indexes[29]));
  // The entries after it: replayed, or committed again after the election.
  ASSERT_LE(n.replayed.entries.size(), 20u);
  n.rec.WaitForOutcomes(20 - n.replayed.entries.size());
  auto all = n.replayed.entries;
  for (auto& c : n.rec.committed()) all.emplace_back(c.index, c.data);
  ASSERT_EQ(all.size(), 20u);
  EXPECT_EQ(all.front().first, indexes[30]);
  EXPECT_EQ(all.front().second, "entry 30");
  EXPECT_EQ(all.back().second, "entry 49");
}

TEST_F(RaftLogTest, WhenBatonRaftdDiesTheLogIsFatalAndRefusesEverything) {
  Node n(NodeOptions(1, 1));
  ASSERT_TRUE(n.Open(0).ok());
  ASSERT_TRUE(n.ev.WaitUntilLeader());
  ASSERT_NE(n.log.raftd_pid(), 0);
  ASSERT_EQ(kill(n.log.raftd_pid(), SIGKILL), 0);
  for (absl::Time give_up = absl::Now() + kWait; n.rec.fatal().empty() && absl::Now() < give_up;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(n.rec.fatal().size(), 1u);
  EXPECT_THAT(n.rec.fatal()[0].message(), HasSubstr("killed by signal 9"));
  ProposeAll(n.log, 0, 1);
  n.rec.WaitForOutcomes(1);
  ASSERT_EQ(n.rec.rejected().size(), 1u);
  EXPECT_EQ(n.rec.rejected()[0].second.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(n.log.Status(kWait).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RaftLogTest, OpenFailsClearlyWhenBatonRaftdCannotStart) {
  RaftLog::Options o = NodeOptions(1, 1);
  o.peer_listen = "not an address";
  Node n(o);
  auto opened = n.Open(0);
  ASSERT_FALSE(opened.ok());
  EXPECT_THAT(opened.status().message(), HasSubstr("baton-raftd"));
}

}  // namespace
}  // namespace baton::storage
