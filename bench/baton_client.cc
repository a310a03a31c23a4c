// LockClient for Baton: one session per client (Sessions/Open), then
// Locks/Acquire owned by that session and Locks/Release of the returned
// token.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "baton/v1/lock.grpc.pb.h"
#include "baton/v1/session.grpc.pb.h"
#include "bench/lock_client.h"

namespace baton::bench {
namespace {

// Long enough to outlive any run; Close ends the session anyway.
constexpr int64_t kSessionTtlSeconds = 60;

class BatonLockClient : public LockClient {
 public:
  BatonLockClient(int index, std::shared_ptr<grpc::Channel> channel,
                  std::chrono::milliseconds call_timeout)
      : index_(index),
        sessions_(baton::v1::Sessions::NewStub(channel)),
        locks_(baton::v1::Locks::NewStub(channel)),
        call_timeout_(call_timeout) {}

  absl::Status Open() override {
    baton::v1::OpenSessionRequest request;
    request.mutable_ttl()->set_seconds(kSessionTtlSeconds);
    request.set_label(absl::StrCat("baton-bench/", index_));
    baton::v1::OpenSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status = FromGrpc(sessions_->Open(&context, request, &response), "Sessions/Open");
    if (status.ok()) session_id_ = response.session_id();
    return status;
  }

  absl::Status Acquire(const std::string& name) override {
    acquire_.set_name(name);
    acquire_.set_session_id(session_id_);
    baton::v1::AcquireLockResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status = FromGrpc(locks_->Acquire(&context, acquire_, &response), "Locks/Acquire");
    if (status.ok()) {
      release_.set_name(name);
      release_.set_token(response.token());
      release_.set_session_id(session_id_);
    }
    return status;
  }

  absl::Status Release() override {
    baton::v1::ReleaseLockResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(locks_->Release(&context, release_, &response), "Locks/Release");
  }

  void Close() override {
    if (session_id_ == 0) return;
    baton::v1::CloseSessionRequest request;
    request.set_session_id(session_id_);
    baton::v1::CloseSessionResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    // Best effort: the session expires after its TTL if this fails.
    (void)sessions_->Close(&context, request, &response);
    session_id_ = 0;
  }

 private:
  const int index_;
  std::unique_ptr<baton::v1::Sessions::Stub> sessions_;
  std::unique_ptr<baton::v1::Locks::Stub> locks_;
  const std::chrono::milliseconds call_timeout_;
  uint64_t session_id_ = 0;
  // Reused across cycles to keep allocation out of the loop.
  baton::v1::AcquireLockRequest acquire_;
  baton::v1::ReleaseLockRequest release_;
};

}  // namespace

std::unique_ptr<LockClient> NewBatonLockClient(int index, std::shared_ptr<grpc::Channel> channel,
                                               std::chrono::milliseconds call_timeout) {
  return std::make_unique<BatonLockClient>(index, std::move(channel), call_timeout);
}

}  // namespace baton::bench
