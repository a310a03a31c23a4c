// Env: what every handler may use. Built once by the server; read-only
// afterwards, except the per-shard stream registries (each touched only by
// its shard's loop thread).
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "service/apply/limits.h"
#include "service/apply/shard.h"
#include "service/security/auth.h"

namespace baton::rpc {

class StreamOps;
class ServerOps;
class LeaderForwarder;
}  // namespace baton::rpc
namespace baton::security {
class Authenticator;
}  // namespace baton::security
namespace baton::rpc {

struct Env {
  apply::Cluster* cluster = nullptr;
  apply::Limits limits;          // per shard
  int requests_per_method = 32;  // calls pre-posted per method per shard
  // Handlers of session-stream operations, filled by the Listen* functions.
  StreamOps* stream_ops = nullptr;
  // The server as a whole, for the Admin service.
  ServerOps* ops = nullptr;
  // Identifies each call's principal; null: the server checks none, and
  // every call may do everything (no --auth_policy).
  const security::Authenticator* auth = nullptr;
  // A cluster node's relay of unary calls to the leader (forward.h); null
  // on a single node.
  LeaderForwarder* forwarder = nullptr;
  // Size of a SaveSnapshot chunk: well under the largest message.
  size_t snapshot_chunk_bytes = 1 << 20;
  // Open KeepAliveStreams per shard: they wait in Read, so shutdown cancels
  // them rather than waiting out its grace period.
  std::vector<absl::flat_hash_set<grpc::ServerContext*>> streams;

  // The home shard of the next new session: round robin, so that sessions
  // (their table, keepalives and expiry) spread over the shards rather than
  // landing wherever gRPC matched the call. Any thread.
  uint32_t NextSessionHome() {
    return next_home_.fetch_add(1, std::memory_order_relaxed) % cluster->size();
  }
  // The home shard of a new session of `who` (null: no principals): one
  // shard for all sessions of a principal with a sessions limit, so that
  // the shard's state machine counts them exactly (apply::OpenSession::
  // max_sessions); round robin for everybody else.
  uint32_t SessionHome(const security::Principal* who) {
    if (who != nullptr && who->max_sessions > 0) {
      return static_cast<uint32_t>(who->tag % cluster->size());
    }
    return NextSessionHome();
  }
  std::atomic<uint32_t> next_home_{0};
};

}  // namespace baton::rpc
