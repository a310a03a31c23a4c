#include "service/rpc/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <future>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.pb.h"

namespace baton::rpc {
namespace {

uint64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
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
  s->clock_ = options.clock != nullptr ? options.clock : &s->steady_;
  uint32_t shards =
      options.shards > 0 ? options.shards : std::max(1u, std::thread::hardware_concurrency());

  apply::Limits limits;
  limits.max_resources = Share(options.max_resources, shards);
  limits.max_sessions = Share(options.max_sessions, shards);
  limits.max_waiters = Share(options.max_waiters, shards);
  limits.max_waiters_per_resource = options.max_waiters_per_resource;
  limits.max_session_ttl = options.max_session_ttl;
  limits.max_lease = options.max_lease;
  limits.max_queue_items = options.max_queue_items;
  limits.max_item_bytes = options.max_item_bytes;
  limits.max_queue_bytes = static_cast<uint64_t>(Share(options.max_queue_bytes, shards));
  limits.future_retention = options.future_retention;

  // gRPC's default health service is registered without its descriptor;
  // touching ours links health.pb.cc into the binary, so that reflection can
  // describe grpc.health.v1.Health (grpcurl needs that to call it).
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &s->port_);
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

  uint64_t base = WallMicros();
  // Fencing tokens follow wall-clock microseconds (see ShardState), so they
  // keep increasing across a restart even though the loops' clock restarts.
  int64_t token_offset = static_cast<int64_t>(base) - s->clock_->Now();
  for (uint32_t i = 0; i < shards; ++i) {
    s->loops_.push_back(std::make_unique<runtime::Loop>(i, std::move(cqs[i]), s->clock_));
    s->cluster_.Add(std::make_unique<apply::Shard>(i, shards, &s->cluster_, s->loops_[i].get(),
                                                   limits, token_offset, base));
    s->loops_[i]->SetTimerSource(&s->cluster_.shard(i));
  }
  s->env_.cluster = &s->cluster_;
  s->env_.limits = limits;
  s->env_.requests_per_method = options.requests_per_method;
  s->env_.streams.resize(shards);
  s->env_.stream_ops = &s->stream_ops_;
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
  return s;
}

void Server::Shutdown() {
  std::call_once(shutdown_once_, [this] {
    server_->GetHealthCheckService()->SetServingStatus(false);
    // End every pending wait and watch, refuse new ones, and cancel the
    // streams that would otherwise hold Shutdown for its whole grace period.
    OnEveryShard(cluster_, [this](apply::Shard& shard) {
      shard.ApplyHere(apply::BeginShutdown{}, apply::OpRef{});
      for (grpc::ServerContext* ctx : env_.streams[shard.index()]) ctx->TryCancel();
    });
    // Never on a loop thread: Shutdown blocks until calls finish, and the
    // loops must keep running to finish them.
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::microseconds(options_.shutdown_grace));
    for (auto& loop : loops_) loop->ShutdownQueue();
    for (auto& t : threads_) t.join();
  });
}

Server::~Server() {
  if (server_) Shutdown();
  // Listeners' unmatched calls were returned with ok=false and freed while
  // draining; the listeners themselves go before the loops and the server.
  listeners_.clear();
}

}  // namespace baton::rpc
