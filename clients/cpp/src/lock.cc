#include "baton/lock.h"

#include "absl/strings/str_cat.h"
#include "core.h"
#include "grant.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

LockGuard::LockGuard(std::shared_ptr<Core> core, std::string name, uint64_t token,
                     uint64_t session_id, std::optional<absl::Duration> lease, GrantOutcome outcome,
                     std::optional<absl::Duration> expires_in)
    : core_(std::move(core)),
      name_(std::move(name)),
      token_(token),
      session_id_(session_id),
      lease_(lease),
      outcome_(outcome),
      expires_in_(expires_in) {}

LockGuard::LockGuard(LockGuard&& other) noexcept
    : core_(std::move(other.core_)),
      name_(std::move(other.name_)),
      token_(other.token_),
      session_id_(other.session_id_),
      lease_(other.lease_),
      outcome_(other.outcome_),
      expires_in_(other.expires_in_) {
  other.core_.reset();
}

LockGuard& LockGuard::operator=(LockGuard&& other) noexcept {
  if (this != &other) {
    (void)Release();
    core_ = std::move(other.core_);
    other.core_.reset();
    name_ = std::move(other.name_);
    token_ = other.token_;
    session_id_ = other.session_id_;
    lease_ = other.lease_;
    outcome_ = other.outcome_;
    expires_in_ = other.expires_in_;
  }
  return *this;
}

LockGuard::~LockGuard() { (void)Release(); }

bool LockGuard::holds() const {
  if (!core_) return false;
  // A session-owned holding ends with its session; a lease-only one is
  // believed held until released (its lease may run out unnoticed).
  return session_id_ == 0 || !core_->SessionOver(session_id_);
}

absl::Status LockGuard::Release() {
  if (!core_) return absl::OkStatus();
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (session_id_ != 0 && core->SessionOver(session_id_)) {
    return absl::AbortedError("the session that held the lock is over: the server released it");
  }
  // The synchronous API: this may run on a gRPC callback thread (a guard
  // dropped in a completion callback), which must not wait for another
  // callback.
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core->RpcDeadline()));
  v1::ReleaseLockRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  v1::ReleaseLockResponse response;
  return FromGrpcStatus(core->locks().Release(&context, request, &response));
}

void LockGuard::ReleaseAsync(std::function<void(absl::Status)> then) {
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (!core) {
    then(absl::OkStatus());
    return;
  }
  struct Op {
    grpc::ClientContext context;
    v1::ReleaseLockRequest request;
    v1::ReleaseLockResponse response;
  };
  auto op = std::make_shared<Op>();
  op->context.set_deadline(internal::ToChrono(core->RpcDeadline()));
  op->request.set_name(name_);
  op->request.set_token(token_);
  op->request.set_session_id(session_id_);
  core->locks().async()->Release(
      &op->context, &op->request, &op->response,
      [op, core, then = std::move(then)](grpc::Status status) { then(FromGrpcStatus(status)); });
}

absl::StatusOr<absl::Duration> LockGuard::Refresh(absl::Duration ttl) {
  if (!core_) return absl::FailedPreconditionError("the guard holds no lock");
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core_->RpcDeadline()));
  v1::RefreshLockRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  *request.mutable_ttl() = internal::ToProto(ttl);
  v1::RefreshLockResponse response;
  absl::Status status = FromGrpcStatus(core_->locks().Refresh(&context, request, &response));
  if (!status.ok()) return status;
  lease_ = ttl;
  expires_in_ = internal::FromProto(response.expires_in());
  return *expires_in_;
}

absl::StatusOr<LockGuard> Lock::Acquire(AcquireOptions options) const {
  return internal::Block<LockGuard>(
      [&](Callback<LockGuard> done) { return AsyncAcquire(std::move(options), std::move(done)); });
}

absl::StatusOr<LockGuard> Lock::Acquire(absl::Duration timeout) const {
  return Acquire(AcquireOptions{.timeout = timeout});
}

absl::StatusOr<LockGuard> Lock::TryAcquire() const {
  return Acquire(AcquireOptions{.timeout = absl::ZeroDuration()});
}

Call Lock::AsyncAcquire(AcquireOptions options, Callback<LockGuard> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.use_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::AcquireLockRequest request;
  request.set_name(name_);
  request.set_session_id(*session);
  if (options.lease.has_value()) *request.mutable_ttl() = internal::ToProto(*options.lease);
  request.set_request_id(options.request_id.empty() ? core_->NewRequestId() : options.request_id);

  // A cancelled (or disconnected) call may have been granted with its reply
  // lost: the server thinks the grant was delivered, the client dropped it
  // (a cancel that reaches the client after the reply was written). As
  // lock.proto prescribes, retry once with the same request_id and a zero
  // timeout: a grant that stood comes back REPLAYED, and is released. (If the
  // lock happens to be free, the retry takes it afresh; it is released too.)
  auto recover = [core = core_, name = name_, session = *session, lease = options.lease,
                  retry = request](absl::Status status, Callback<LockGuard> deliver) {
    struct Op {
      grpc::ClientContext context;
      v1::AcquireLockRequest request;
      v1::AcquireLockResponse response;
    };
    auto op = std::make_shared<Op>();
    op->request = retry;
    *op->request.mutable_timeout() = internal::ToProto(absl::ZeroDuration());
    op->context.set_deadline(internal::ToChrono(core->RpcDeadline()));
    core->locks().async()->Acquire(
        &op->context, &op->request, &op->response,
        [op, core, name, session, lease, status, deliver](grpc::Status s) {
          if (!s.ok()) {
            deliver(status);  // nothing of ours is held
            return;
          }
          auto guard = std::make_shared<LockGuard>(
              LockGuard(core, name, op->response.token(), session, lease,
                        internal::FromProto(op->response.outcome()), std::nullopt));
          bool replayed = op->response.outcome() == v1::GRANT_OUTCOME_REPLAYED;
          guard->ReleaseAsync([guard, status, deliver, replayed](absl::Status) {
            deliver(replayed ? absl::Status(status.code(),
                                            absl::StrCat(status.message(),
                                                         "; the lock granted with the lost reply "
                                                         "was recovered and released"))
                             : status);
          });
        });
  };

  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.retries = 3;  // safe: same request_id
  auto finish = [core = core_, name = name_, session = *session, lease = options.lease,
                 recover = std::move(recover)](absl::StatusOr<v1::AcquireLockResponse> reply,
                                               bool cancelled, Callback<LockGuard> deliver) {
    if (!reply.ok()) {
      absl::StatusCode code = reply.status().code();
      if (cancelled || code == absl::StatusCode::kCancelled ||
          code == absl::StatusCode::kUnavailable) {
        recover(reply.status(), std::move(deliver));
        return;
      }
      deliver(reply.status());
      return;
    }
    std::optional<absl::Duration> expires_in;
    if (reply->has_expires_in()) expires_in = internal::FromProto(reply->expires_in());
    LockGuard guard(core, name, reply->token(), session, lease,
                    internal::FromProto(reply->outcome()), expires_in);
    if (cancelled) {
      // The grant raced with Cancel(): give it back, then report the cancel.
      auto shared = std::make_shared<LockGuard>(std::move(guard));
      shared->ReleaseAsync([shared, deliver](absl::Status) {
        deliver(
            absl::CancelledError("cancelled; the lock granted at the same moment was released"));
      });
      return;
    }
    deliver(std::move(guard));
  };
  return internal::StartUnary<LockGuard, v1::AcquireLockResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.locks().async()->Acquire(args...); }, std::move(finish),
      std::move(done));
}

}  // namespace baton
