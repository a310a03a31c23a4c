// The parts of Server that exist only in a cluster (issue 9): the RaftLog it
// starts, what it does when raft names a new leader, and how it takes a
// snapshot the leader sent. DESIGN.md §6; raft/PROTOCOL.md for the companion.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/logging.h"
#include "service/rpc/server.h"
#include "storage/raft_log.h"

namespace baton::rpc {
namespace {

// The baton-raftd to start: beside this batond (an installed pair), then the
// build tree's raft/ folder, then PATH.
std::string DefaultRaftd() {
  std::error_code ec;
  std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto candidate : {self.parent_path() / "baton-raftd",
                           self.parent_path().parent_path() / "raft" / "baton-raftd"}) {
      if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
    }
  }
  return "baton-raftd";
}

// This node's peer address in id=peer@client,... ("" if it is not there).
std::string PeerAddressOf(uint64_t id, const std::string& peers) {
  for (absl::string_view member : absl::StrSplit(peers, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(member, '=');
    uint64_t member_id = 0;
    if (!absl::SimpleAtoi(kv.first, &member_id) || member_id != id) continue;
    std::pair<absl::string_view, absl::string_view> addrs = absl::StrSplit(kv.second, '@');
    return std::string(addrs.first);
  }
  return "";
}

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return data;
}

}  // namespace

absl::StatusOr<std::unique_ptr<storage::ConsensusLog>> Server::MakeRaftLog() {
  if (options_.node_id == 0) {
    return absl::InvalidArgumentError("a cluster node needs --node_id (non-zero, unique)");
  }
  storage::RaftLog::Options o;
  o.raftd_path = options_.raftd.empty() ? DefaultRaftd() : options_.raftd;
  o.node_id = options_.node_id;
  o.data_dir = options_.data_dir + "/raft";
  o.initial_cluster = options_.peers;
  o.join = options_.join;
  o.peer_listen = options_.peer_listen.empty() ? PeerAddressOf(options_.node_id, options_.peers)
                                               : options_.peer_listen;
  if (o.peer_listen.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("--peers does not name node ", options_.node_id,
                                                   " (give --peer_listen for a joining node)"));
  }
  o.tick_ms = options_.raft_tick_ms;
  o.election_ticks = options_.raft_election_ticks;
  // Compact(through) is called with the previous snapshot's index, whose
  // file the store still keeps (it keeps two).
  o.read_snapshot = [this](uint64_t index) -> absl::StatusOr<std::pair<uint64_t, std::string>> {
    auto data = ReadWhole(snapshots_->PathOf(index));
    if (!data.ok()) return data.status();
    return std::make_pair(index, std::move(*data));
  };
  storage::RaftLog::Events events;
  events.leadership = [this](const storage::raftwire::Leadership& l) { OnLeadership(l); };
  events.install_snapshot = [this](uint64_t index, std::string_view data) {
    return InstallSnapshot(index, data);
  };
  events.read_index = [this](uint64_t ctx, absl::StatusOr<uint64_t> index) {
    sequencer_->OnReadIndex(ctx, index.status());
  };
  events.snapshot_wanted = [this](uint64_t) {
    if (snapshotter_ != nullptr) snapshotter_->Request(nullptr);
  };
  auto log = std::make_unique<storage::RaftLog>(std::move(o), std::move(events));
  raft_log_ = log.get();
  membership_ = std::make_unique<Membership>(raft_log_, options_.node_id);
  return log;
}

void Server::Members(MembersRequest request, absl::Time deadline, MembersDone done) {
  if (membership_ == nullptr) {
    done(absl::FailedPreconditionError(
        "this server is a single node (started without --peers): it has no cluster members"));
    return;
  }
  membership_->Submit(std::move(request), deadline, std::move(done));
}

void Server::OnLeadership(const storage::raftwire::Leadership& l) {
  if (forwarder_ != nullptr) forwarder_->SetLeader(l.is_leader, l.leader_client_addr);
  if (l.is_leader) {
    // Every entry of earlier terms is applied here by now (baton-raftd says
    // so only then). First, as in a restart: the waits of ops that lived in
    // other processes become orphans their clients' retries can claim, and
    // every session gets a fresh TTL (nobody could keep it alive through the
    // failover). Proposed before any client's command.
    std::vector<log::Entry> first;
    for (uint32_t i = 0; i < cluster_.size(); ++i) {
      first.push_back(
          log::Entry{i, apply::Recover{.orphan_grace = options_.orphan_grace}, apply::OpRef{}});
    }
    sequencer_->BecomeLeader(std::move(first));
    for (uint32_t i = 0; i < cluster_.size(); ++i) {
      apply::Shard* shard = &cluster_.shard(i);
      shard->loop().Post([shard] { shard->OnLeadershipGained(); });
    }
    logging::Info("leading the cluster").Uint("term", l.term).Uint("node", options_.node_id);
  } else {
    sequencer_->SetLeadership(false, l.leader_client_addr);
    if (leading_.load(std::memory_order_acquire)) {
      // Deposed: fail this node's pending waits now (Shard::OnLeadershipLost).
      absl::Status why = absl::UnavailableError(
          l.leader_client_addr.empty()
              ? std::string("this node lost the lead of the cluster; retry (with the same "
                            "request_id) once a leader is elected")
              : absl::StrCat("this node lost the lead of the cluster; the leader is ",
                             l.leader_client_addr, ": retry there with the same request_id"));
      if (!l.leader_client_addr.empty()) {
        why.SetPayload(log::kLeaderPayload, absl::Cord(l.leader_client_addr));
      }
      for (uint32_t i = 0; i < cluster_.size(); ++i) {
        apply::Shard* shard = &cluster_.shard(i);
        // And end its session and keepalive streams: their clients re-open
        // them (same session), and this node now relays them to the leader.
        shard->loop().Post([this, shard, why] {
          shard->OnLeadershipLost(why);
          for (grpc::ServerContext* ctx : env_.streams[shard->index()]) ctx->TryCancel();
        });
      }
    }
    logging::Info("following")
        .Uint("term", l.term)
        .Uint("leader", l.leader_id)
        .Str("leader_address", l.leader_client_addr);
  }
  leading_.store(l.is_leader, std::memory_order_release);
  UpdateHealth();
}

void Server::UpdateHealth() {
  if (!server_ || !started_) return;
  // Only the leader serves baton.v1; the server as a whole (""), which says
  // whether this process is up, follows serving_.
  server_->GetHealthCheckService()->SetServingStatus(
      "baton.v1", serving_.load(std::memory_order_acquire) &&
                      (raft_log_ == nullptr || leading_.load(std::memory_order_acquire)));
}

absl::Status Server::InstallSnapshot(uint64_t index, std::string_view data) {
  auto parsed = storage::SnapshotStore::Parse(data, "the snapshot the leader sent");
  if (!parsed.ok()) return parsed.status();
  if (parsed->index != index) {
    return absl::DataLossError(absl::StrCat("the leader's snapshot for index ", index,
                                            " says it covers index ", parsed->index));
  }
  if (absl::Status st = snapshots_->Save(index, parsed->records); !st.ok()) return st;
  if (opening_ && restored_index_ == 0 && replayed_ == 0) {
    // Nothing loaded yet: load it in place.
    Time now = 0;
    absl::Status st = LoadSnapshotRecords(cluster_.size(), snapshots_->PathOf(index), index,
                                          parsed->records, &now);
    if (!st.ok()) return st;
    sequencer_->SeeTime(now);
    logging::Info("installed the leader's snapshot").Uint("index", index);
    return absl::OkStatus();
  }
  // Replacing the state of running shards is a restart's job: the snapshot
  // is saved, and the next start loads it and takes the log from there.
  return absl::FailedPreconditionError(absl::StrCat(
      "this node fell too far behind the leader, which sent the snapshot at index ", index,
      "; it is saved in ", options_.data_dir, "/snap: restart batond to load it"));
}

}  // namespace baton::rpc
