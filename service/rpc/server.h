// Server: builds and runs a Baton server. Owns the gRPC server, one Loop and
// one Shard per shard thread, and the listeners.
//
// Start() opens the data directory and replays its log (durable mode),
// then returns once the server listens. Shutdown() may be called from any
// thread except a loop thread; it is idempotent, and performs the ordered
// shutdown of notes/grpc-runtime.md §1.6: health NOT_SERVING; every shard
// ends its pending waits and watches with UNAVAILABLE; open streams are
// cancelled; grpc::Server::Shutdown with a grace deadline while the loops
// keep running; then each completion queue is shut down and drained and the
// threads are joined. The destructor shuts down if needed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/text_writer.h"
#include "runtime/clock.h"
#include "runtime/loop.h"
#include "service/apply/limits.h"
#include "service/apply/shard.h"
#include "service/log/sequencer.h"
#include "service/log/snapshotter.h"
#include "service/rpc/env.h"
#include "service/rpc/membership.h"
#include "service/rpc/server_ops.h"
#include "service/rpc/services.h"
#include "service/security/auth.h"
#include "service/security/tls.h"
#include "storage/file_lock.h"
#include "storage/snapshot_store.h"

namespace baton::storage {
class LocalLog;
class RaftLog;
namespace raftwire {
struct Leadership;
}
}  // namespace baton::storage

namespace baton::rpc {

enum class Durability {
  kNone,   // in memory: everything is lost when the process ends
  kLocal,  // a write-ahead log in data_dir, fsynced before every reply
};

struct ServerOptions {
  std::string listen = "127.0.0.1:7411";  // HOST:PORT; port 0 picks one
  int shards = 0;                         // 0: one per core
  Durability durability = Durability::kNone;
  // kLocal: the data directory (created if missing; one server at a time).
  std::string data_dir;
  // kLocal: a WAL segment's size before the next one starts.
  uint64_t wal_segment_bytes = 64ull << 20;
  // kLocal: false skips fdatasync (tests and benchmarks only: a crash of
  // the machine, not only of the process, then loses acknowledged changes).
  bool fsync = true;
  // kLocal: take a snapshot (and let the log drop what the previous one
  // covers) every this many log entries; 0: never automatically.
  uint64_t snapshot_entries = 100'000;
  // ... or once the log has grown by this many bytes since the last one
  // (0: by entries only).
  uint64_t snapshot_bytes = 256ull << 20;
  // Totals for the whole server; each shard gets an equal share.
  int64_t max_resources = 1'000'000;
  int64_t max_sessions = 100'000;
  int64_t max_waiters = 1'000'000;
  int64_t max_waiters_per_resource = 100'000;
  Duration max_session_ttl = 3600 * kSecond;
  Duration max_lease = 24 * 3600 * kSecond;
  uint32_t max_queue_items = 1'000'000;        // a queue's maxsize (and its default)
  uint32_t max_item_bytes = 1 << 20;           // a queue item (and the default per queue)
  int64_t max_queue_bytes = 1ll << 30;         // payload bytes in all queues together
  Duration future_retention = 3600 * kSecond;  // default time a done future is kept
  int max_message_bytes = 4 << 20;
  Duration keepalive_time = 20 * kSecond;     // ping an idle connection this often
  Duration keepalive_timeout = 10 * kSecond;  // and drop it if no ack by then
  Duration shutdown_grace = 2 * kSecond;      // for in-flight calls to finish
  // After a restart: how long an acquire, Get or Take with a request_id
  // keeps its place in line for its retry (apply::Recover).
  Duration orphan_grace = 10 * kSecond;
  int requests_per_method = 32;  // calls pre-posted per method per shard
  const Clock* clock = nullptr;  // default: the wall clock
  // kLocal: start data_dir from this snapshot file (backup.h); data_dir
  // must not hold state yet.
  std::string restore_from;
  // Told of the state machine's events (not owned; null: none), and of log
  // entries slower than slow_apply to apply.
  apply::Observer* observer = nullptr;
  Duration slow_apply = 100 * kMillisecond;
  // TLS of the client listener (plaintext, loopback only, by default).
  security::TlsOptions tls;
  // Principals and permissions (security/auth.h); off without a policy.
  security::AuthOptions auth;
  // Every flag in effect, by name: reported by Admin/ServerInfo.
  std::map<std::string, std::string> config;

  // A cluster (kLocal only): this node's raft id and every member as
  // id=peerhost:port@clienthost:port,... (raft/PROTOCOL.md). Empty peers: a
  // single node. The log is then a RaftLog: baton-raftd, started by this
  // server, keeps its state in data_dir/raft.
  uint64_t node_id = 0;
  std::string peers;
  std::string peer_listen;  // default: this node's peer address in `peers`
  std::string raftd;        // the baton-raftd binary; default: beside batond, else PATH
  bool join = false;        // a member added to a running cluster (Admin/AddMember)
  int raft_tick_ms = 100;
  int raft_election_ticks = 10;
};

class Server final : public ServerOps {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(const ServerOptions& options);
  ~Server();

  int port() const { return port_; }
  // Entries found in the log at start (0: a new or in-memory server), and
  // the index of the snapshot the server started from (0: none).
  uint64_t replayed() const { return replayed_; }
  uint64_t restored_index() const { return restored_index_; }
  // Snapshots taken since start; null in memory.
  log::Snapshotter* snapshotter() { return snapshotter_.get(); }
  // Takes a snapshot now and waits until it is on disk; returns the log
  // index it covers. Errors: FAILED_PRECONDITION in memory, UNAVAILABLE
  // when shutting down, the store's error if it cannot be written. Any
  // thread but a loop's.
  absl::StatusOr<uint64_t> Snapshot();
  uint32_t shard_count() const { return cluster_.size(); }
  // Index of the last log entry dispatched to the shards. Any thread.
  uint64_t applied_index() const { return applied_index_.load(std::memory_order_relaxed); }
  // What grpc.health.v1 says for the server: true from the end of Start to
  // the beginning of Shutdown. Any thread (the metrics endpoint's /healthz).
  bool serving() const { return serving_.load(std::memory_order_relaxed); }

  // ServerOps (Admin/ServerInfo, Admin/SaveSnapshot). Any thread.
  void Describe(v1::ServerInfoResponse* out) const override;

  // Writes every metric of the server (server_metrics.cc): calls, sessions,
  // resources and waiters by kind, queue items, the log, snapshots, the
  // process. Any thread but a loop's; waits up to a second for the shards'
  // gauges, and leaves them out if the loops do not answer (shutdown).
  void WriteMetrics(metrics::TextWriter& out);
  void CutSnapshot(SnapshotDone done) override;
  // ServerOps (Admin's membership calls): FAILED_PRECONDITION on a single
  // node. Any thread.
  void Members(MembersRequest request, absl::Time deadline, MembersDone done) override;

  // For re-sharding only (reshard.h): stops the state from changing (every
  // shard ends its waits as at shutdown, keeping orphans, then proposes
  // nothing more), cuts a snapshot that covers the whole log and holds no
  // derived command still to be logged, and closes the log, so the
  // snapshot is the last word; Shutdown then logs nothing. Returns the
  // snapshot's index. Errors: FAILED_PRECONDITION in memory; those of
  // Snapshot; DEADLINE_EXCEEDED if the shards kept changing. Any thread
  // but a loop's; the server must have no clients.
  absl::StatusOr<uint64_t> Seal();

  void Shutdown();

 private:
  Server() = default;
  // Opens the log (durable mode: the newest snapshot, then the data
  // directory's WAL after it), replays it into the shards, and proposes
  // Recover. REQUIRES: the loops are not running.
  absl::Status OpenLog(uint32_t shards);
  // Restores the shards from the newest snapshot, if there is one; sets
  // restored_index_ and *now to what it covers.
  absl::Status RestoreSnapshot(uint32_t shards, Time* now);
  // Undoes a Start that failed after the gRPC server was built.
  void AbandonStart();
  // Replicated log: the raft log's reader thread reports a change of leader.
  void OnLeadership(const storage::raftwire::Leadership& l);
  // Replicated log: the leader sent a snapshot newer than this node's state.
  absl::Status InstallSnapshot(uint64_t index, std::string_view data);
  absl::StatusOr<std::unique_ptr<storage::ConsensusLog>> MakeRaftLog();
  // grpc.health.v1 for "baton.v1": serving, and (in a cluster) leading.
  void UpdateHealth();
  // Loads the records of a snapshot into the shards.
  absl::Status LoadSnapshotRecords(uint32_t shards, const std::string& path, uint64_t index,
                                   const std::vector<std::string>& records, Time* now);

  ServerOptions options_;
  WallClock wall_;
  const Clock* clock_ = nullptr;
  Services services_;
  StreamOps stream_ops_;
  // Declared before the server and the loops: outlives every call.
  std::unique_ptr<security::Authenticator> auth_;
  std::unique_ptr<LeaderForwarder> forwarder_;  // a cluster node without TLS
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::unique_ptr<runtime::Loop>> loops_;
  apply::Cluster cluster_;
  Env env_;
  Listeners listeners_;
  std::vector<std::thread> threads_;
  // Declared after the loops: destroyed (closed) before them.
  std::optional<storage::FileLock> data_lock_;
  std::unique_ptr<log::Sequencer> sequencer_;
  storage::LocalLog* local_log_ = nullptr;  // the sequencer's log, when durable
  storage::RaftLog* raft_log_ = nullptr;    // ... when replicated
  // Declared after the sequencer (which owns the raft log): closed first.
  std::unique_ptr<Membership> membership_;  // when replicated
  // Whether Open is still replaying (an installed snapshot may then be loaded
  // in place; later it needs a restart).
  bool opening_ = false;
  std::unique_ptr<storage::SnapshotStore> snapshots_;
  std::unique_ptr<log::Snapshotter> snapshotter_;
  uint64_t replayed_ = 0;
  uint64_t restored_index_ = 0;
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<bool> serving_{false};
  std::atomic<bool> leading_{false};  // replicated: raft says this node leads
  Time started_at_ = 0;               // wall clock, for ServerInfo
  bool started_ = false;              // Start succeeded: Shutdown has something to stop
  bool sealed_ = false;               // Seal closed the log
  int port_ = 0;
  std::once_flag shutdown_once_;
};

}  // namespace baton::rpc
