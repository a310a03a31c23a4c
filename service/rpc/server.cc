#include "service/rpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/snapshot.pb.h"
#include "grpc/health/v1/health.pb.h"
#include "service/logging.h"
#include "service/rpc/backup.h"
#include "service/rpc/reshard.h"
#include "service/rpc/validate.h"
#include "service/version.h"
#include "storage/local_log.h"
#include "storage/raft_log.h"

namespace baton::rpc {
namespace {

// The data directory remembers its shard count: the log names shards, so
// replaying it with another count would put resources on the wrong shard
// (Start re-shards it first: reshard.h).
absl::Status CheckShardCount(const std::string& dir, uint32_t shards) {
  auto recorded = ShardCountOf(dir);
  if (!recorded.ok()) return recorded.status();
  if (!*recorded) return RecordShardCount(dir, shards);
  if (**recorded == shards) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(dir, " was written with ", **recorded, " shards, not ", shards));
}

int64_t Share(int64_t total, uint32_t shards) {
  return std::max<int64_t>(1, (total + shards - 1) / shards);
}

// Runs `fn` on every shard's loop and waits until all have run it.
void OnEveryShard(apply::Cluster& cluster, std::function<void(apply::Shard&)> fn) {
  std::vector<std::promise<void>> done(cluster.size());
  for (uint32_t i = 0; i < cluster.size(); ++i) {
    apply::Shard* shard = &cluster.shard(i);
    shard->loop().Post([shard, &fn, p = &done[i]] {
      fn(*shard);
      p->set_value();
    });
  }
  for (auto& p : done) p.get_future().wait();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(const ServerOptions& options) {
  std::unique_ptr<Server> s(new Server());
  s->options_ = options;
  s->started_at_ = s->wall_.Now();
  if (options.durability == Durability::kLocal) {
    std::error_code ec;
    std::filesystem::create_directories(options.data_dir, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create the data directory ", options.data_dir, ": ", ec.message()));
    }
    if (!options.restore_from.empty()) {
      if (auto st = RestoreDataDir(options.restore_from, options.data_dir, options.fsync);
          !st.ok()) {
        return absl::Status(st.code(), absl::StrCat("--restore: ", st.message()));
      }
    }
  } else if (!options.restore_from.empty()) {
    return absl::InvalidArgumentError("restoring a snapshot needs --durability=local");
  }
  uint32_t shards =
      options.shards > 0 ? options.shards : std::max(1u, std::thread::hardware_concurrency());
  apply::Limits limits;
  limits.max_resources = Share(options.max_resources, shards);
  // Sessions and waits are limited in total (Cluster::Admit); each shard's
  // own deterministic check uses the same number as a backstop.
  limits.max_sessions = options.max_sessions;
  limits.max_waiters = options.max_waiters;
  s->cluster_.SetTotals(options.max_sessions, options.max_waiters);
  limits.max_waiters_per_resource = options.max_waiters_per_resource;
  limits.max_session_ttl = options.max_session_ttl;
  limits.max_lease = options.max_lease;
  limits.max_queue_items = options.max_queue_items;
  limits.max_item_bytes = options.max_item_bytes;
  limits.max_queue_bytes = static_cast<uint64_t>(Share(options.max_queue_bytes, shards));
  limits.future_retention = options.future_retention;

  if (options.durability == Durability::kLocal) {
    // Written with another shard count: split it again first.
    auto recorded = ShardCountOf(options.data_dir);
    if (!recorded.ok()) return recorded.status();
    if (*recorded && **recorded != shards) {
      if (auto st = ReshardDataDir(options, **recorded, shards, limits); !st.ok()) return st;
    }
    auto lock = storage::FileLock::Acquire(options.data_dir);
    if (!lock.ok()) return lock.status();
    s->data_lock_.emplace(std::move(*lock));
  }
  s->clock_ = options.clock != nullptr ? options.clock : &s->wall_;

  // gRPC's default health service is registered without its descriptor;
  // touching ours links health.pb.cc into the binary, so that reflection can
  // describe grpc.health.v1.Health (grpcurl needs that to call it).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  auto credentials = security::ListenerCredentials(options.tls, options.listen);
  if (!credentials.ok()) return credentials.status();
  CheckEveryMethodHasARule();
  if (options.auth.enabled()) {
    auto auth = security::Authenticator::Start(options.auth);
    if (!auth.ok()) return auth.status();
    s->auth_ = *std::move(auth);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &s->port_);
  // Never share a port: with SO_REUSEPORT a second server on the same
  // address would quietly take half of the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Notice dead clients (notes/grpc-runtime.md §8.9): ping idle connections,
  // keep pinging during long silent waits, and let clients ping us often.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(options.keepalive_time / kMillisecond));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(options.keepalive_timeout / kMillisecond));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.RegisterService(&s->services_.sessions);
  builder.RegisterService(&s->services_.locks);
  builder.RegisterService(&s->services_.semaphores);
  builder.RegisterService(&s->services_.events);
  builder.RegisterService(&s->services_.queues);
  builder.RegisterService(&s->services_.futures);
  builder.RegisterService(&s->services_.barriers);
  builder.RegisterService(&s->services_.conditions);
  builder.RegisterService(&s->services_.timers);
  builder.RegisterService(&s->services_.tasks);
  builder.RegisterService(&s->services_.admin);
  builder.RegisterService(&s->services_.stream);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (uint32_t i = 0; i < shards; ++i) cqs.push_back(builder.AddCompletionQueue());
  s->server_ = builder.BuildAndStart();
  if (!s->server_) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, " (address in use, or not an address?)"));
  }

  for (uint32_t i = 0; i < shards; ++i) {
    s->loops_.push_back(std::make_unique<runtime::Loop>(i, std::move(cqs[i]), s->clock_));
    s->cluster_.Add(
        std::make_unique<apply::Shard>(i, shards, &s->cluster_, s->loops_[i].get(), limits));
    s->loops_[i]->SetTimerSource(&s->cluster_.shard(i));
    s->cluster_.shard(i).SetObserver(options.observer, options.slow_apply);
  }
  // Before the log opens: baton-raftd may report the leader while the log
  // is replayed (OnLeadership), and a report with no forwarder to take it
  // was lost, leaving a restarted follower refusing every relayed call ("no
  // leader is known now") until the next election.
  if (!options.peers.empty() && !options.tls.enabled()) {
    s->forwarder_ = std::make_unique<LeaderForwarder>(options.node_id);
  }
  if (auto st = s->OpenLog(shards); !st.ok()) {
    s->AbandonStart();
    return st;
  }
  s->env_.cluster = &s->cluster_;
  s->env_.limits = limits;
  s->env_.requests_per_method = options.requests_per_method;
  s->env_.streams.resize(shards);
  s->env_.stream_ops = &s->stream_ops_;
  s->env_.ops = s.get();
  s->env_.auth = s->auth_.get();
  s->env_.forwarder = s->forwarder_.get();
  s->env_.snapshot_chunk_bytes =
      static_cast<size_t>(std::min(1 << 20, std::max(512, options.max_message_bytes / 2)));
  for (uint32_t i = 0; i < shards; ++i) {
    apply::Shard& shard = s->cluster_.shard(i);
    ListenSessions(s->env_, shard, s->services_, s->listeners_);
    ListenPermits(s->env_, shard, s->services_, s->listeners_);
    ListenEvents(s->env_, shard, s->services_, s->listeners_);
    ListenQueues(s->env_, shard, s->services_, s->listeners_);
    ListenFutures(s->env_, shard, s->services_, s->listeners_);
    ListenBarriers(s->env_, shard, s->services_, s->listeners_);
    ListenConditions(s->env_, shard, s->services_, s->listeners_);
    ListenTimers(s->env_, shard, s->services_, s->listeners_);
    ListenTasks(s->env_, shard, s->services_, s->listeners_);
    ListenAdmin(s->env_, shard, s->services_, s->listeners_);
    ListenSessionStream(s->env_, shard, s->services_, s->listeners_);
  }
  for (uint32_t i = 0; i < shards; ++i) {
    runtime::Loop* loop = s->loops_[i].get();
    s->threads_.emplace_back([loop] { loop->Run(); });
  }
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  s->serving_.store(true, std::memory_order_relaxed);
  s->started_ = true;
  s->UpdateHealth();
  return s;
}

void Server::AbandonStart() {
  // Nothing ran yet: no loop thread, no listener, no call. Stop the gRPC
  // server and drain each completion queue so that they can be destroyed.
  server_->Shutdown(std::chrono::system_clock::now());
  for (auto& loop : loops_) {
    loop->ShutdownQueue();
    void* tag = nullptr;
    bool ok = false;
    while (loop->cq()->Next(&tag, &ok)) {
    }
  }
  server_.reset();
}

absl::Status Server::OpenLog(uint32_t shards) {
  std::unique_ptr<storage::ConsensusLog> wal;
  if (options_.durability == Durability::kLocal) {
    if (auto st = CheckShardCount(options_.data_dir, shards); !st.ok()) return st;
    storage::LocalLog::Options o;
    o.directory = options_.data_dir + "/wal";
    o.segment_bytes = options_.wal_segment_bytes;
    o.sync = options_.fsync;
    o.lock_directory = false;  // the server holds the data directory's lock
    if (options_.peers.empty()) {
      auto local = std::make_unique<storage::LocalLog>(o);
      local_log_ = local.get();
      wal = std::move(local);
    } else {
      auto raft = MakeRaftLog();
      if (!raft.ok()) return raft.status();
      wal = std::move(*raft);
    }
  }
  sequencer_ = std::make_unique<log::Sequencer>(std::move(wal), clock_);
  // Replicated: nothing is proposed until raft says this node leads.
  // Reads are linearizable: each batch waits for a read index.
  if (raft_log_ != nullptr) {
    sequencer_->StartAsFollower();
    sequencer_->UseReadIndex([raft = raft_log_](uint64_t ctx) { raft->ReadIndex(ctx); });
  }
  cluster_.SetSequencer(sequencer_.get());

  Time after_now = 0;
  if (options_.durability == Durability::kLocal) {
    if (auto st = RestoreSnapshot(shards, &after_now); !st.ok()) return st;
  }

  // Replay: apply every logged entry after the snapshot on this thread,
  // before any loop runs. A command derived from an entry (a broadcast, a
  // timer's action) is in the log too, after it; each shard keeps those it
  // derived in its outbox until replay meets them, and proposes again those
  // a crash kept out of the log.
  auto replay = [&](uint64_t index, Time now, log::Entry e) -> absl::Status {
    if (e.shard >= shards || e.origin.shard >= shards || e.source_shard >= shards) {
      return absl::DataLossError(
          absl::StrCat("log entry ", index, " names shard ", e.shard, " of ", shards));
    }
    ++replayed_;
    if (e.source_index != 0) {
      cluster_.shard(e.source_shard).DerivedCommitted(e.source_index, e.source_ordinal);
    }
    if (e.origin.id != 0) cluster_.shard(e.origin.shard).SeeOpId(e.origin.id);
    cluster_.shard(e.shard).ApplyReplayed(index, now, e);
    applied_index_.store(index, std::memory_order_relaxed);
    return absl::OkStatus();
  };
  // Posted, never deferred, even to the submitting loop itself: a loop runs
  // posted work in posting order, so each shard applies its entries in log
  // order (and meets a snapshot marker after exactly the entries before it).
  bool durable = options_.durability == Durability::kLocal;
  auto dispatch = [this, durable](uint64_t index, Time now, log::Entry e) {
    // Before the shard can apply it and reply: a client that saw the reply
    // then sees at least this index in ServerInfo.
    applied_index_.store(index, std::memory_order_relaxed);
    if (e.foreign && (e.shard >= cluster_.size() || e.origin.shard >= cluster_.size() ||
                      e.source_shard >= cluster_.size())) {
      logging::Error(
          "fatal: a replicated entry names a shard this node does not have; every "
          "node of a cluster needs the same --shards")
          .Uint("index", index)
          .Uint("shards", cluster_.size());
      std::_Exit(1);
    }
    // Another node's op ids: this node's own must stay clear of them (a
    // waiter keeps its op's id in the replicated state until a new leader's
    // Recover ends it).
    if (e.foreign && e.origin.id != 0) {
      apply::Shard* origin = &cluster_.shard(e.origin.shard);
      origin->loop().Post([origin, id = e.origin.id] { origin->SeeOpId(id); });
    }
    if (durable && e.source_index != 0) {
      apply::Shard* source = &cluster_.shard(e.source_shard);
      source->loop().Post(
          [source, i = e.source_index, o = e.source_ordinal] { source->DerivedCommitted(i, o); });
    }
    apply::Shard* shard = &cluster_.shard(e.shard);
    shard->loop().Post([shard, index, now, e = std::move(e)]() mutable {
      shard->ApplyCommitted(index, now, std::move(e));
    });
    if (snapshotter_ != nullptr) snapshotter_->AfterDispatch(index, now);
  };
  auto dispatch_query = [this](uint64_t, Time, log::Entry e) {
    apply::Shard* shard = &cluster_.shard(e.shard);
    shard->loop().Post([shard, e = std::move(e)] { shard->ApplyQuery(e); });
  };
  auto reject = [this](log::Entry e, absl::Status why) {
    apply::Shard* shard = &cluster_.shard(e.origin.id != 0 ? e.origin.shard : e.shard);
    shard->loop().Post([shard, e = std::move(e), why = std::move(why)]() mutable {
      shard->OnRejected(std::move(e), std::move(why));
    });
  };
  auto fatal = [](absl::Status why) {
    // Never retry a failed fsync: what reached the disk is unknown. Stop,
    // and let recovery read what is there.
    logging::Error("fatal: the write-ahead log failed; stopping (a restart reads what is on disk)")
        .Str("error", std::string(why.message()));
    std::_Exit(1);
  };
  for (uint32_t i = 0; i < shards; ++i) cluster_.shard(i).TrackDerived(durable);
  if (durable) {
    // Built before the log opens: the log's thread calls AfterDispatch.
    // The WAL is owned by the sequencer and outlives the snapshotter (~Server
    // closes the snapshotter first).
    std::function<uint64_t()> log_bytes;
    if (local_log_ != nullptr) {
      log_bytes = [wal = local_log_] { return wal->bytes_committed(); };
    } else {
      log_bytes = [wal = raft_log_] { return wal->bytes_committed(); };
    }
    snapshotter_ =
        std::make_unique<log::Snapshotter>(&cluster_, snapshots_.get(), options_.snapshot_entries,
                                           options_.snapshot_bytes, log_bytes, restored_index_);
    snapshotter_->SetKick([this] {
      sequencer_->Submit(log::Entry{0, apply::Tick{}, apply::OpRef{}});
    });
  }
  opening_ = true;
  absl::Status opened =
      sequencer_->Open(replay, dispatch, dispatch_query, reject, fatal, restored_index_, after_now);
  opening_ = false;
  if (!opened.ok()) return opened;
  for (const std::string& note : sequencer_->notes()) {
    logging::Warn("write-ahead log").Str("note", note);
  }
  // A replicated node recovers when it becomes the leader (OnLeadership).
  if (raft_log_ == nullptr && (replayed_ > 0 || restored_index_ > 0)) {
    for (uint32_t i = 0; i < shards; ++i) cluster_.shard(i).ResubmitOutbox();
    for (uint32_t i = 0; i < shards; ++i) {
      sequencer_->Submit(
          log::Entry{i, apply::Recover{.orphan_grace = options_.orphan_grace}, apply::OpRef{}});
    }
    // Applied (posted to the loops) before the first call is served.
    sequencer_->Flush();
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Server::Snapshot() {
  if (snapshotter_ == nullptr) {
    return absl::FailedPreconditionError("snapshots need --durability=local");
  }
  auto done = std::make_shared<std::promise<absl::StatusOr<uint64_t>>>();
  std::future<absl::StatusOr<uint64_t>> result = done->get_future();
  snapshotter_->Request([done](absl::Status st, uint64_t index) {
    if (st.ok()) {
      done->set_value(index);
    } else {
      done->set_value(std::move(st));
    }
  });
  // The cut happens after the next dispatched entry: make sure there is
  // one. A Tick changes nothing but fires what is due anyway.
  sequencer_->Submit(log::Entry{0, apply::Tick{}, apply::OpRef{}});
  return result.get();
}

void Server::Describe(v1::ServerInfoResponse* out) const {
  const BuildInfo& b = Build();
  out->set_version(b.version);
  out->set_commit(b.commit);
  out->set_build(b.build);
  Time now = wall_.Now();
  out->mutable_started_at()->set_seconds(started_at_ / kSecond);
  out->mutable_started_at()->set_nanos(static_cast<int32_t>(started_at_ % kSecond * 1000));
  ToProto(now - started_at_, out->mutable_uptime());
  out->set_role(raft_log_ == nullptr                       ? "standalone"
                : leading_.load(std::memory_order_acquire) ? "leader"
                                                           : "follower");
  out->set_shards(cluster_.size());
  bool durable = options_.durability == Durability::kLocal;
  out->set_durability(durable ? "local" : "none");
  if (durable) {
    std::error_code ec;
    out->set_data_dir(std::filesystem::absolute(options_.data_dir, ec).string());
  }
  out->set_applied_index(applied_index());
  uint64_t snap = restored_index_;
  if (snapshotter_ != nullptr) snap = std::max(snap, snapshotter_->stats().last_index);
  out->set_snapshot_index(snap);
  for (const auto& [name, value] : options_.config) (*out->mutable_config())[name] = value;
}

void Server::CutSnapshot(SnapshotDone done) {
  if (snapshotter_ == nullptr) {
    done(absl::FailedPreconditionError(
        "this server keeps no snapshots (--durability=none): there is nothing durable to save"));
    return;
  }
  // The store is read here only for a path, a pure function of its options.
  const storage::SnapshotStore* store = snapshots_.get();
  snapshotter_->Request([store, done = std::move(done)](absl::Status st, uint64_t index) {
    if (!st.ok()) return done(st);
    // Runs on the snapshot thread, before any later snapshot could delete
    // the file: once open, it stays readable.
    std::string path = store->PathOf(index);
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      return done(absl::InternalError(
          absl::StrCat("cannot open snapshot ", path, ": ", std::strerror(errno))));
    }
    std::error_code ec;
    uint64_t bytes = std::filesystem::file_size(path, ec);
    done(SnapshotFile{index, ec ? 0 : bytes, std::shared_ptr<std::FILE>(f, &std::fclose)});
  });
  // The cut happens after the next dispatched entry: make sure there is one.
  sequencer_->Submit(log::Entry{0, apply::Tick{}, apply::OpRef{}});
}

absl::StatusOr<uint64_t> Server::Seal() {
  if (snapshotter_ == nullptr) {
    return absl::FailedPreconditionError("sealing needs --durability=local");
  }
  for (uint32_t i = 0; i < cluster_.size(); ++i) {
    sequencer_->Submit(log::Entry{i, apply::BeginShutdown{}, apply::OpRef{}});
  }
  sequencer_->Flush();
  OnEveryShard(cluster_, [](apply::Shard& shard) { shard.Freeze(); });
  // Derived commands still on their way (a timer's action, a broadcast) must
  // be in the log, and applied, before the cut that ends it.
  auto derived_pending = [this] {
    sequencer_->Flush();
    std::atomic<size_t> pending{0};
    OnEveryShard(cluster_, [&pending](apply::Shard& shard) { pending += shard.outbox_size(); });
    return pending.load();
  };
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (derived_pending() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    uint64_t before = sequencer_->submitted();
    absl::StatusOr<uint64_t> index = Snapshot();
    if (!index.ok()) return index.status();
    // The cut came after the one Tick that Snapshot proposes; if that was
    // the only entry since, and it derived nothing, the snapshot is the
    // whole state.
    if (derived_pending() == 0 && sequencer_->submitted() == before + 1) {
      sealed_ = true;
      sequencer_->Close();
      return *index;
    }
  }
  return absl::DeadlineExceededError("the shards kept changing: cannot seal the log");
}

absl::Status Server::RestoreSnapshot(uint32_t shards, Time* now) {
  storage::SnapshotStore::Options so;
  so.directory = options_.data_dir + "/snap";
  so.sync = options_.fsync;
  snapshots_ = std::make_unique<storage::SnapshotStore>(so);
  auto loaded = snapshots_->LoadNewest();
  if (!loaded.ok()) return loaded.status();
  for (const std::string& note : loaded->notes) {
    logging::Warn("snapshot skipped").Str("note", note);
  }
  if (!loaded->found) return absl::OkStatus();
  return LoadSnapshotRecords(shards, snapshots_->PathOf(loaded->index), loaded->index,
                             loaded->records, now);
}

absl::Status Server::LoadSnapshotRecords(uint32_t shards, const std::string& path, uint64_t index,
                                         const std::vector<std::string>& records, Time* now) {
  internal::v1::SnapshotHeader header;
  if (records.empty() || !header.ParseFromString(records[0])) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": its header does not decode"));
  }
  if (header.format() != 1 || header.index() != index) {
    return absl::DataLossError(absl::StrCat("snapshot ", path, ": format ", header.format(),
                                            " at index ", header.index(),
                                            " is not one this build reads"));
  }
  if (header.shard_count() != shards || records.size() != shards + 1u) {
    // The `shards` file and the newest snapshot disagree, which re-sharding
    // (reshard.h) never leaves behind: something else changed the directory.
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", path, " was cut for ", header.shard_count(), " shards, but ",
                     options_.data_dir, "/shards says ", shards,
                     ": write the snapshot's count there to start from it"));
  }
  for (uint32_t i = 0; i < shards; ++i) {
    if (absl::Status st = cluster_.shard(i).RestorePart(records[i + 1]); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat("snapshot ", path, ": ", st.message()));
    }
  }
  restored_index_ = index;
  applied_index_.store(index, std::memory_order_relaxed);
  *now = header.now_us();
  return absl::OkStatus();
}

void Server::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    serving_.store(false, std::memory_order_relaxed);
    server_->GetHealthCheckService()->SetServingStatus(false);
    // End every pending wait and watch and refuse new ones (through the log,
    // like every change; Seal did it already), then cancel the streams that
    // would otherwise hold Shutdown for its whole grace period.
    if (raft_log_ != nullptr) {
      // A cluster outlives this node: its waits stay (the next leader's
      // Recover makes them orphans for their clients' retries). Hand the
      // lead over first, so that the others need not wait for an election.
      if (leading_.load(std::memory_order_acquire)) {
        auto moved = raft_log_->TransferLeadership(0, absl::Seconds(3));
        logging::Info("handing over the lead before stopping")
            .Str("result",
                 moved.ok() ? std::string("done") : std::string(moved.status().message()));
      }
    } else if (!sealed_) {
      for (uint32_t i = 0; i < cluster_.size(); ++i) {
        sequencer_->Submit(log::Entry{i, apply::BeginShutdown{}, apply::OpRef{}});
      }
      sequencer_->Flush();
    }
    OnEveryShard(cluster_, [this](apply::Shard& shard) {
      for (grpc::ServerContext* ctx : env_.streams[shard.index()]) ctx->TryCancel();
    });
    // Never on a loop thread: Shutdown blocks until calls finish, and the
    // loops must keep running to finish them.
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::microseconds(options_.shutdown_grace));
    for (auto& loop : loops_) loop->ShutdownQueue();
    for (auto& t : threads_) t.join();
    // A membership call still asking raft ends within its deadline; its
    // answer is never run (the loops are gone).
    if (membership_ != nullptr) membership_->Close();
    // The loops are gone: a snapshot still being cut is abandoned, one
    // being written is finished.
    if (snapshotter_ != nullptr) snapshotter_->Close();
    // What the last calls logged is committed; nothing applies it any more.
    sequencer_->Close();
  });
}

Server::~Server() {
  if (started_) Shutdown();
  if (membership_ != nullptr) membership_->Close();
  // After a failed start too: the snapshot thread stops before the log, and
  // the log's last dispatches find the snapshotter closed.
  if (snapshotter_ != nullptr) snapshotter_->Close();
  if (sequencer_ != nullptr) sequencer_->Close();
  // Listeners' unmatched calls were returned with ok=false and freed while
  // draining; the listeners themselves go before the loops and the server.
  listeners_.clear();
}

}  // namespace baton::rpc
