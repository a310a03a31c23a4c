// LockClient for etcd v3.4's built-in lock service: one lease per client
// (etcdserverpb.Lease/LeaseGrant), then v3lockpb.Lock/Lock on that lease and
// v3lockpb.Lock/Unlock of the returned key. This is what `etcdctl lock` and
// etcd's own v3lock gRPC service do; a handoff waits for a watch event.
#include <chrono>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "bench/lock_client.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "v3lockpb/v3lock.grpc.pb.h"

namespace baton::bench {
namespace {

// Long enough to outlive any run; Close revokes the lease anyway.
constexpr int64_t kLeaseTtlSeconds = 60;

class EtcdLockClient : public LockClient {
 public:
  EtcdLockClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds call_timeout)
      : leases_(etcdserverpb::Lease::NewStub(channel)),
        locks_(v3lockpb::Lock::NewStub(channel)),
        call_timeout_(call_timeout) {}

  absl::Status Open() override {
    etcdserverpb::LeaseGrantRequest request;
    request.set_ttl(kLeaseTtlSeconds);
    etcdserverpb::LeaseGrantResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status =
        FromGrpc(leases_->LeaseGrant(&context, request, &response), "Lease/LeaseGrant");
    if (!status.ok()) return status;
    if (!response.error().empty() || response.id() == 0) {
      return absl::InternalError(absl::StrCat("Lease/LeaseGrant: ", response.error()));
    }
    lease_id_ = response.id();
    return absl::OkStatus();
  }

  absl::Status Acquire(const std::string& name) override {
    lock_.set_name(name);
    lock_.set_lease(lease_id_);
    v3lockpb::LockResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status = FromGrpc(locks_->Lock(&context, lock_, &response), "Lock/Lock");
    if (status.ok()) unlock_.set_key(response.key());
    return status;
  }

  absl::Status Release() override {
    v3lockpb::UnlockResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    return FromGrpc(locks_->Unlock(&context, unlock_, &response), "Lock/Unlock");
  }

  void Close() override {
    if (lease_id_ == 0) return;
    etcdserverpb::LeaseRevokeRequest request;
    request.set_id(lease_id_);
    etcdserverpb::LeaseRevokeResponse response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    // Best effort: the lease expires after its TTL if this fails.
    (void)leases_->LeaseRevoke(&context, request, &response);
    lease_id_ = 0;
  }

 private:
  std::unique_ptr<etcdserverpb::Lease::Stub> leases_;
  std::unique_ptr<v3lockpb::Lock::Stub> locks_;
  const std::chrono::milliseconds call_timeout_;
  int64_t lease_id_ = 0;
  // Reused across cycles to keep allocation out of the loop.
  v3lockpb::LockRequest lock_;
  v3lockpb::UnlockRequest unlock_;
};

}  // namespace

std::unique_ptr<LockClient> NewEtcdLockClient(std::shared_ptr<grpc::Channel> channel,
                                              std::chrono::milliseconds call_timeout) {
  return std::make_unique<EtcdLockClient>(std::move(channel), call_timeout);
}

}  // namespace baton::bench
