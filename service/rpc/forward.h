// A cluster follower's unary calls, relayed to the leader (issue 9: every
// node serves the whole API). The follower sends the request's bytes, as
// received, to the leader's client address with the caller's credentials
// (the `authorization` header) and its deadline, and answers with whatever
// the leader answered, status details included. The leader decides
// everything: it authenticates, authorizes and runs the call; a follower
// neither decodes nor checks it.
//
// The bidirectional streams (Stream/Connect, the session stream, and
// Sessions/KeepAliveStream) are relayed the same way, message by message in
// both directions (RelayStream), so a client opens its session stream on any
// node. Not relayed: node-local methods (Admin/ServerInfo describes the node
// asked), the server-streaming calls (Watch, Consume, SaveSnapshot: a
// follower refuses their operations with UNAVAILABLE and a
// google.rpc.ErrorInfo naming the leader, status.h), calls that were
// forwarded once already (a node that thought another led, while that one
// lost the lead: the second hop refuses, naming the leader it knows), and
// every call when the client listener uses TLS (the follower would need the
// leader's CA and would speak for a client certificate it does not hold).
//
// Threading: LeaderForwarder is safe from any thread (raft's reader thread
// sets the leader; shard loops ask). ForwardUnary runs on the call's shard
// loop thread, on that loop's completion queue.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "runtime/task.h"

namespace baton::rpc {

// Set on a forwarded call; its value is the forwarding node's id.
inline constexpr char kForwardedByHeader[] = "baton-forwarded-by";

// A caller's choice of reads: "linearizable" (the default: relayed to the
// leader, which confirms it still leads) or "serializable" (answered by the
// node asked, from its state as it is: cheaper, available without a leader,
// possibly behind the leader; a change sent so on a follower is refused
// NOT_LEADER). Unary calls only.
inline constexpr char kReadHeader[] = "baton-read";

// Whether call `ctx` asked for serializable reads. INVALID_ARGUMENT for a
// kReadHeader value that is neither choice.
absl::StatusOr<bool> SerializableReads(const grpc::ServerContext& ctx);

class LeaderForwarder {
 public:
  explicit LeaderForwarder(uint64_t node_id) : node_tag_(std::to_string(node_id)) {}

  // Raft named a leader: this node, or the node at `client_address` ("":
  // none known, an election is under way).
  void SetLeader(bool leads, const std::string& client_address);

  // Where call `ctx` of method `path` (/baton.v1.Locks/Acquire) goes: the
  // leader's channel, or null if this node answers it itself (it leads, no
  // leader is known, the method is node-local, or the call was forwarded to
  // it already).
  std::shared_ptr<grpc::Channel> Target(const std::string& path,
                                        const grpc::ServerContext& ctx) const;

  // Whether no node is known to lead (before the first election's outcome,
  // or during one): a stream is then refused UNAVAILABLE rather than served
  // by a node that cannot serve it.
  bool Electing() const;

  const std::string& node_tag() const { return node_tag_; }

 private:
  const std::string node_tag_;
  mutable std::mutex mu_;
  bool leads_ = false;
  std::shared_ptr<grpc::Channel> leader_;  // null: this node leads, or none is known
  // One channel per address ever led from: a leader that comes back is
  // reached on the channel (and connection) it had.
  absl::flat_hash_map<std::string, std::shared_ptr<grpc::Channel>> channels_;
};

// Cancels a forwarded call when its caller goes away. Owned by the call;
// loop thread only.
struct ForwardSlot {
  grpc::ClientContext* context = nullptr;  // the forwarded call, while it runs
  bool cancelled = false;
  void Cancel() {
    cancelled = true;
    if (context != nullptr) context->TryCancel();
  }
};

// Relays unary call (`server_ctx`, `request`, `writer`) of method `path` to
// `leader` on completion queue `cq` (the call's loop's), and finishes the
// call with the leader's answer. `slot` lets the call's done notification
// cancel the relayed call.
runtime::Task<void> ForwardUnary(grpc::ServerContext& server_ctx, ForwardSlot& slot,
                                 const std::string& path, const grpc::ByteBuffer& request,
                                 grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>& writer,
                                 grpc::CompletionQueue* cq, std::shared_ptr<grpc::Channel> leader,
                                 const std::string& node_tag);

// Relays bidirectional stream (`server_ctx`, `down`) of method `path` to
// `leader`: every message the client sends goes up as it is, every message
// the leader sends comes down, the client's half-close is passed up, and the
// leader's status ends the client's stream. `slot` lets the stream's done
// notification cancel the relayed stream. Returns once both directions are
// over.
runtime::Task<void> RelayStream(
    grpc::ServerContext& server_ctx, ForwardSlot& slot, const std::string& path,
    grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>& down,
    grpc::CompletionQueue* cq, std::shared_ptr<grpc::Channel> leader, const std::string& node_tag);

}  // namespace baton::rpc
