#include "service/rpc/forward.h"

#include <grpcpp/generic/generic_stub.h>

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/cq_tag.h"
#include "runtime/task.h"

namespace baton::rpc {
namespace {

// Methods about the node asked, answered by it whatever its role.
bool NodeLocal(const std::string& path) { return path == "/baton.v1.Admin/ServerInfo"; }

// Headers of the caller passed on: its credentials and Baton's own.
bool PassedOn(absl::string_view key) {
  return key == "authorization" || (absl::StartsWith(key, "baton-") && key != kForwardedByHeader);
}

// The relayed call's context: the caller's credentials and deadline, and
// who relayed it.
void PrepareContext(const grpc::ServerContext& server_ctx, const std::string& node_tag,
                    grpc::ClientContext* context) {
  if (server_ctx.deadline() != std::chrono::system_clock::time_point::max()) {
    context->set_deadline(server_ctx.deadline());
  }
  for (const auto& [key, value] : server_ctx.client_metadata()) {
    absl::string_view k(key.data(), key.size());
    if (PassedOn(k)) {
      context->AddMetadata(std::string(k), std::string(value.data(), value.size()));
    }
  }
  context->AddMetadata(kForwardedByHeader, node_tag);
}

// A leader that did not answer (as opposed to answering UNAVAILABLE with its
// reasons): say where the call went.
grpc::Status Explained(grpc::Status status) {
  if (status.ok() || status.error_code() != grpc::StatusCode::UNAVAILABLE ||
      !status.error_details().empty()) {
    return status;
  }
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      absl::StrCat("this node is not the leader, and relaying the call to the "
                                   "leader failed: ",
                                   status.error_message()));
}

using ClientStream = grpc::GenericClientAsyncReaderWriter;
using ServerStream = grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

// The client-to-leader half of a relayed stream.
struct Upward {
  ServerStream* down = nullptr;
  ClientStream* up = nullptr;
  bool finishing = false;  // the relay is ending the upstream call
  bool over = false;
  runtime::Wakeup wake;
};

runtime::Task<void> PumpUp(Upward& u) {
  grpc::ByteBuffer message;
  while (co_await runtime::CqOp([&](void* tag) { u.down->Read(&message, tag); })) {
    if (!co_await runtime::CqOp([&](void* tag) { u.up->Write(message, tag); })) break;
  }
  // The client half-closed: so does the relayed stream (unless the relay is
  // ending it anyway).
  if (!u.finishing) (void)co_await runtime::CqOp([&](void* tag) { u.up->WritesDone(tag); });
  u.over = true;
  u.wake.Notify();
}

}  // namespace

void LeaderForwarder::SetLeader(bool leads, const std::string& client_address) {
  std::lock_guard<std::mutex> lock(mu_);
  leads_ = leads;
  leader_.reset();
  if (leads || client_address.empty()) return;
  auto& channel = channels_[client_address];
  if (channel == nullptr) {
    // Relayed calls fail fast (UNAVAILABLE) while the channel to the leader
    // is down, so its reconnect backoff bounds how long a follower keeps
    // refusing after the leader it names is back: gRPC's default starts at
    // 1 s and grows 1.6 times per failed attempt up to 120 s (a leader down
    // for 20 s leaves a follower refusing for up to 17 s more). Peers are
    // near: retry within a second.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    channel = grpc::CreateCustomChannel(client_address, grpc::InsecureChannelCredentials(), args);
  }
  leader_ = channel;
}

std::shared_ptr<grpc::Channel> LeaderForwarder::Target(const std::string& path,
                                                       const grpc::ServerContext& ctx) const {
  if (NodeLocal(path)) return nullptr;
  if (ctx.client_metadata().count(kForwardedByHeader) > 0) return nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  return leads_ ? nullptr : leader_;
}

absl::StatusOr<bool> SerializableReads(const grpc::ServerContext& ctx) {
  auto [first, last] = ctx.client_metadata().equal_range(kReadHeader);
  bool serializable = false;
  for (auto it = first; it != last; ++it) {
    absl::string_view v(it->second.data(), it->second.size());
    if (v == "serializable") {
      serializable = true;
    } else if (v != "linearizable") {
      return absl::InvalidArgumentError(
          absl::StrCat("header ", kReadHeader, ": \"", v.substr(0, 64),
                       "\" is neither \"linearizable\" nor \"serializable\""));
    }
  }
  return serializable;
}

bool LeaderForwarder::Electing() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !leads_ && leader_ == nullptr;
}

runtime::Task<void> ForwardUnary(grpc::ServerContext& server_ctx, ForwardSlot& slot,
                                 const std::string& path, const grpc::ByteBuffer& request,
                                 grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>& writer,
                                 grpc::CompletionQueue* cq, std::shared_ptr<grpc::Channel> leader,
                                 const std::string& node_tag) {
  grpc::Status status;
  grpc::ByteBuffer response;
  if (slot.cancelled) {
    status = grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled");
  } else {
    grpc::ClientContext context;
    PrepareContext(server_ctx, node_tag, &context);
    grpc::GenericStub stub(leader);
    std::unique_ptr<grpc::GenericClientAsyncResponseReader> call;
    slot.context = &context;
    bool started = co_await runtime::CqOp([&](void* tag) {
      call = stub.PrepareUnaryCall(&context, path, request, cq);
      call->StartCall();
      call->Finish(&response, &status, tag);
    });
    slot.context = nullptr;
    // A client call's Finish always completes ok; false: it never started.
    if (!started) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "batond is stopping");
    status = Explained(std::move(status));
  }
  if (status.ok()) {
    (void)co_await runtime::CqOp(
        [&](void* tag) { writer.Finish(response, grpc::Status::OK, tag); });
  } else {
    (void)co_await runtime::CqOp([&](void* tag) { writer.FinishWithError(status, tag); });
  }
}

runtime::Task<void> RelayStream(grpc::ServerContext& server_ctx, ForwardSlot& slot,
                                const std::string& path, ServerStream& down,
                                grpc::CompletionQueue* cq, std::shared_ptr<grpc::Channel> leader,
                                const std::string& node_tag) {
  grpc::Status status;
  if (slot.cancelled) {
    (void)co_await runtime::CqOp([&](void* tag) {
      down.Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the call was cancelled"), tag);
    });
    co_return;
  }
  grpc::ClientContext context;
  PrepareContext(server_ctx, node_tag, &context);
  grpc::GenericStub stub(leader);
  std::unique_ptr<ClientStream> up;
  slot.context = &context;
  bool started = co_await runtime::CqOp([&](void* tag) {
    up = stub.PrepareCall(&context, path, cq);
    up->StartCall(tag);
  });
  if (up == nullptr) {
    status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "batond is stopping");
  } else {
    Upward upward;
    upward.down = &down;
    upward.up = up.get();
    if (started) {
      runtime::Spawn(PumpUp(upward));
      // Leader to client, until the leader ends the stream.
      grpc::ByteBuffer message;
      while (co_await runtime::CqOp([&](void* tag) { up->Read(&message, tag); })) {
        if (!co_await runtime::CqOp([&](void* tag) { down.Write(message, tag); })) {
          context.TryCancel();  // the client is gone
          break;
        }
      }
    } else {
      upward.over = true;  // never connected: nothing to pump
    }
    upward.finishing = true;
    (void)co_await runtime::CqOp([&](void* tag) { up->Finish(&status, tag); });
    status = Explained(std::move(status));
    // Ends the client's stream; its pending Read (PumpUp) then fails. A
    // client that keeps the stream open without reading is cut off.
    (void)co_await runtime::CqOp([&](void* tag) { down.Finish(status, tag); });
    if (!upward.over) server_ctx.TryCancel();
    while (!upward.over) co_await upward.wake;
  }
  slot.context = nullptr;
}

}  // namespace baton::rpc
