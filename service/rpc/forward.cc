#include "service/rpc/forward.h"

#include <grpcpp/generic/generic_stub.h>

#include <chrono>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "runtime/cq_tag.h"

namespace baton::rpc {
namespace {

// Methods about the node asked, answered by it whatever its role.
bool NodeLocal(const std::string& path) { return path == "/baton.v1.Admin/ServerInfo"; }

// Headers of the caller passed on: its credentials and Baton's own.
bool PassedOn(absl::string_view key) {
  return key == "authorization" || (absl::StartsWith(key, "baton-") && key != kForwardedByHeader);
}

}  // namespace

void LeaderForwarder::SetLeader(bool leads, const std::string& client_address) {
  std::lock_guard<std::mutex> lock(mu_);
  leads_ = leads;
  leader_.reset();
  if (leads || client_address.empty()) return;
  auto& channel = channels_[client_address];
  if (channel == nullptr) {
    channel = grpc::CreateChannel(client_address, grpc::InsecureChannelCredentials());
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
    if (server_ctx.deadline() != std::chrono::system_clock::time_point::max()) {
      context.set_deadline(server_ctx.deadline());
    }
    for (const auto& [key, value] : server_ctx.client_metadata()) {
      absl::string_view k(key.data(), key.size());
      if (PassedOn(k)) {
        context.AddMetadata(std::string(k), std::string(value.data(), value.size()));
      }
    }
    context.AddMetadata(kForwardedByHeader, node_tag);
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
    if (!status.ok() && status.error_code() == grpc::StatusCode::UNAVAILABLE &&
        status.error_details().empty()) {
      // The leader did not answer (as opposed to answering UNAVAILABLE with
      // its reasons): say where the call went.
      status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            absl::StrCat("this node is not the leader, and forwarding the call to "
                                         "the leader failed: ",
                                         status.error_message()));
    }
  }
  if (status.ok()) {
    (void)co_await runtime::CqOp(
        [&](void* tag) { writer.Finish(response, grpc::Status::OK, tag); });
  } else {
    (void)co_await runtime::CqOp([&](void* tag) { writer.FinishWithError(status, tag); });
  }
}

}  // namespace baton::rpc
