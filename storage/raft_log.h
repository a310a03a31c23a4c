// RaftLog is the replicated ConsensusLog (DESIGN.md §6, issue 9): it starts
// baton-raftd (raft/: etcd's raft library, WAL and snapshots) as a child
// process, speaks raft/PROTOCOL.md with it over a socketpair, and turns what
// it says into the ConsensusLog callbacks, plus Events for what a one-node
// log has no word for: who leads, a snapshot to install in place of the
// state, the members, a linearizable read point.
//
// A committed entry may have been proposed by another node: it comes with
// cookie 0. Only the leader accepts proposals; on a follower (or while no
// leader is known) a proposal is rejected with UNAVAILABLE at once. A
// proposal pending when leadership is lost is rejected with UNAVAILABLE
// "outcome unknown": it may still commit, and then arrives with cookie 0.
//
// baton-raftd exits when its socket closes (batond died or closed the log);
// if baton-raftd dies, `fatal` is called once and every pending proposal is
// rejected with UNAVAILABLE: the server must stop serving.
//
// Threading: as ConsensusLog. Every callback and event runs on the log's
// reader thread, one at a time (during Open: on the calling thread).
// ReadIndex and the member calls may be called from any thread; the member
// calls block until baton-raftd answers (not from a callback: they would
// wait for themselves).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "storage/consensus_log.h"
#include "storage/raft_wire.h"

namespace baton::storage {

class RaftLog final : public ConsensusLog {
 public:
  struct Options {
    std::string raftd_path;  // the baton-raftd binary (searched in PATH without a '/')
    uint64_t node_id = 0;
    std::string data_dir;         // baton-raftd's directory (wal/, snap/)
    std::string peer_listen;      // host:port of its peer listener
    std::string initial_cluster;  // id=peerhost:port@clienthost:port,...
    bool join = false;            // a member added to a running cluster
    int tick_ms = 100;
    int election_ticks = 10;
    std::vector<std::string> extra_args;  // appended to baton-raftd's flags
    // How long Open waits for baton-raftd's READY.
    absl::Duration open_timeout = absl::Seconds(60);
    // The newest snapshot of the server's state covering at least `index`:
    // its index and bytes. Compact sends them to baton-raftd, which ships
    // them to followers too far behind.
    std::function<absl::StatusOr<std::pair<uint64_t, std::string>>(uint64_t index)> read_snapshot;
  };

  struct Events {
    std::function<void(const raftwire::Leadership&)> leadership;
    // Replace the whole state with `data`, a snapshot through `index`,
    // before any entry after it. An error is fatal.
    std::function<absl::Status(uint64_t index, std::string_view data)> install_snapshot;
    std::function<void(const raftwire::Membership&)> membership;
    // baton-raftd needs a snapshot covering at least `min_index` (Compact).
    std::function<void(uint64_t min_index)> snapshot_wanted;
    // The answer to ReadIndex(ctx): reads are linearizable once every entry
    // through the index has been applied.
    std::function<void(uint64_t ctx, absl::StatusOr<uint64_t> index)> read_index;
  };

  RaftLog(Options options, Events events);
  ~RaftLog() override;  // Close()

  RaftLog(const RaftLog&) = delete;
  RaftLog& operator=(const RaftLog&) = delete;

  // ConsensusLog. Open starts baton-raftd and replays what its WAL holds
  // as committed after `after_index` (or installs its newer snapshot first).
  // Errors: INTERNAL when baton-raftd cannot start, UNAVAILABLE when it
  // exits or says FATAL before READY, DEADLINE_EXCEEDED past open_timeout.
  [[nodiscard]] absl::StatusOr<OpenResult> Open(uint64_t after_index, const ReplayFn& replay,
                                                LogCallbacks callbacks) override;
  void Propose(Proposal p) override;
  void Compact(uint64_t through) override;
  void Close() override;

  // Asks for a linearizable read point; the answer comes to events.read_index.
  void ReadIndex(uint64_t ctx);

  // Membership and leadership (leader only, except ListMembers and Status).
  // Errors: as baton-raftd replies (UNAVAILABLE naming the leader on a
  // follower), DEADLINE_EXCEEDED after `timeout`, UNAVAILABLE once closed.
  absl::StatusOr<raftwire::Reply> TransferLeadership(uint64_t to, absl::Duration timeout);
  absl::StatusOr<raftwire::Reply> AddMember(const raftwire::Member& m, absl::Duration timeout);
  absl::StatusOr<raftwire::Reply> RemoveMember(uint64_t id, absl::Duration timeout);
  absl::StatusOr<raftwire::Reply> ListMembers(absl::Duration timeout);
  absl::StatusOr<raftwire::StatusReply> Status(absl::Duration timeout);

  // baton-raftd's process id (0 before Open or after Close). Tests kill it.
  pid_t raftd_pid() const { return pid_.load(); }
  // Bytes of the entries committed since Open (what a snapshot by size
  // counts). Any thread.
  uint64_t bytes_committed() const { return bytes_committed_.load(std::memory_order_relaxed); }

 private:
  using Answer = std::variant<raftwire::Reply, raftwire::StatusReply>;

  absl::Status Spawn();
  absl::Status Send(const std::string& frame);
  // Reads one frame body; NOT_FOUND at a clean end of stream.
  absl::StatusOr<std::string> ReadFrame(absl::Time deadline);
  absl::StatusOr<Answer> Call(uint64_t req_id, const std::string& frame, absl::Duration timeout);
  // Handles one message after Open; returns false when the log must stop.
  void Handle(raftwire::Incoming& m);
  void ReaderMain();
  // baton-raftd is gone (or said FATAL): tells the server once, rejects
  // what is pending.
  void Die(absl::Status why);
  // Waits for baton-raftd to exit (killing it after `grace`); returns how.
  std::string Reap(absl::Duration grace);

  const Options options_;
  const Events events_;
  LogCallbacks callbacks_;

  int fd_ = -1;
  std::atomic<pid_t> pid_{0};
  std::atomic<uint64_t> bytes_committed_{0};
  std::thread reader_;

  std::mutex send_mu_;  // one frame at a time on the socket

  std::mutex mu_;
  bool open_ = false;           // guarded by mu_
  bool dead_ = false;           // guarded by mu_: fatal was reported
  std::set<uint64_t> pending_;  // proposals' cookies; guarded by mu_
  uint64_t next_req_ = 1;       // guarded by mu_
  std::map<uint64_t, std::promise<absl::StatusOr<Answer>>> calls_;  // guarded by mu_
};

}  // namespace baton::storage
