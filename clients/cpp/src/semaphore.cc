#include "baton/semaphore.h"

#include "absl/strings/str_cat.h"
#include "core.h"
#include "grant.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

SemaphoreGuard::SemaphoreGuard(std::shared_ptr<Core> core, std::string name, uint64_t token,
                               int64_t count, int64_t available, uint64_t session_id,
                               GrantOutcome outcome)
    : core_(std::move(core)),
      name_(std::move(name)),
      token_(token),
      count_(count),
      available_at_grant_(available),
      session_id_(session_id),
      outcome_(outcome) {}

SemaphoreGuard::SemaphoreGuard(SemaphoreGuard&& other) noexcept
    : core_(std::move(other.core_)),
      name_(std::move(other.name_)),
      token_(other.token_),
      count_(other.count_),
      available_at_grant_(other.available_at_grant_),
      session_id_(other.session_id_),
      outcome_(other.outcome_) {
  other.core_.reset();
}

SemaphoreGuard& SemaphoreGuard::operator=(SemaphoreGuard&& other) noexcept {
  if (this != &other) {
    (void)Release();
    core_ = std::move(other.core_);
    other.core_.reset();
    name_ = std::move(other.name_);
    token_ = other.token_;
    count_ = other.count_;
    available_at_grant_ = other.available_at_grant_;
    session_id_ = other.session_id_;
    outcome_ = other.outcome_;
  }
  return *this;
}

SemaphoreGuard::~SemaphoreGuard() { (void)Release(); }

bool SemaphoreGuard::holds() const {
  if (!core_) return false;
  return session_id_ == 0 || !core_->SessionOver(session_id_);
}

absl::Status SemaphoreGuard::Release() {
  if (!core_) return absl::OkStatus();
  return Release(count_).status();
}

absl::StatusOr<int64_t> SemaphoreGuard::Release(int64_t count) {
  if (!core_) return absl::FailedPreconditionError("the guard holds no permits");
  if (count <= 0 || count > count_) {
    return absl::InvalidArgumentError("count must be between 1 and the permits held");
  }
  std::shared_ptr<Core> core = core_;
  if (session_id_ != 0 && core->SessionOver(session_id_)) {
    core_.reset();
    count_ = 0;
    return absl::AbortedError(
        "the session that held the permits is over: the server released them");
  }
  // Synchronous API: safe on a gRPC callback thread (see LockGuard::Release).
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core->RpcDeadline()));
  v1::ReleaseSemaphoreRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  request.set_count(count);
  v1::ReleaseSemaphoreResponse response;
  absl::Status status = FromGrpcStatus(core->semaphores().Release(&context, request, &response));
  if (!status.ok()) {
    // Not held (lease ran out, wrong token): nothing is left to release.
    if (status.code() == absl::StatusCode::kFailedPrecondition) {
      core_.reset();
      count_ = 0;
    }
    return status;
  }
  count_ = response.remaining();
  if (count_ == 0) core_.reset();
  return response.available();
}

void SemaphoreGuard::ReleaseAsync(std::function<void(absl::Status)> then) {
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (!core) {
    then(absl::OkStatus());
    return;
  }
  struct Op {
    grpc::ClientContext context;
    v1::ReleaseSemaphoreRequest request;
    v1::ReleaseSemaphoreResponse response;
  };
  auto op = std::make_shared<Op>();
  op->context.set_deadline(internal::ToChrono(core->RpcDeadline()));
  op->request.set_name(name_);
  op->request.set_token(token_);
  op->request.set_session_id(session_id_);
  core->semaphores().async()->Release(
      &op->context, &op->request, &op->response,
      [op, core, then = std::move(then)](grpc::Status status) { then(FromGrpcStatus(status)); });
}

absl::StatusOr<absl::Duration> SemaphoreGuard::Refresh(absl::Duration ttl) {
  if (!core_) return absl::FailedPreconditionError("the guard holds no permits");
  grpc::ClientContext context;
  context.set_deadline(internal::ToChrono(core_->RpcDeadline()));
  v1::RefreshSemaphoreRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  *request.mutable_ttl() = internal::ToProto(ttl);
  v1::RefreshSemaphoreResponse response;
  absl::Status status = FromGrpcStatus(core_->semaphores().Refresh(&context, request, &response));
  if (!status.ok()) return status;
  return internal::FromProto(response.expires_in());
}

absl::StatusOr<SemaphoreGuard> Semaphore::Acquire(int64_t count, AcquireOptions options) const {
  return internal::Block<SemaphoreGuard>([&](Callback<SemaphoreGuard> done) {
    return AsyncAcquire(count, std::move(options), std::move(done));
  });
}

absl::StatusOr<SemaphoreGuard> Semaphore::TryAcquire(int64_t count) const {
  return Acquire(count, AcquireOptions{.timeout = absl::ZeroDuration()});
}

Call Semaphore::AsyncAcquire(int64_t count, AcquireOptions options,
                             Callback<SemaphoreGuard> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.use_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::AcquireSemaphoreRequest request;
  request.set_name(name_);
  request.set_capacity(capacity_);
  request.set_count(count);
  request.set_session_id(*session);
  if (options.lease.has_value()) *request.mutable_ttl() = internal::ToProto(*options.lease);
  request.set_request_id(options.request_id.empty() ? core_->NewRequestId() : options.request_id);

  // A cancelled (or disconnected) call may have been granted with its reply
  // lost; recover as Lock::AsyncAcquire does (retry with the same request_id
  // and a zero timeout, and return what comes back).
  auto recover = [core = core_, name = name_, session = *session, retry = request](
                     absl::Status status, Callback<SemaphoreGuard> deliver) {
    struct Op {
      grpc::ClientContext context;
      v1::AcquireSemaphoreRequest request;
      v1::AcquireSemaphoreResponse response;
    };
    auto op = std::make_shared<Op>();
    op->request = retry;
    *op->request.mutable_timeout() = internal::ToProto(absl::ZeroDuration());
    op->context.set_deadline(internal::ToChrono(core->RpcDeadline()));
    core->semaphores().async()->Acquire(
        &op->context, &op->request, &op->response,
        [op, core, name, session, status, deliver](grpc::Status s) {
          if (!s.ok()) {
            deliver(status);
            return;
          }
          auto guard = std::make_shared<SemaphoreGuard>(SemaphoreGuard(
              core, name, op->response.token(), op->response.count(), op->response.available(),
              session, internal::FromProto(op->response.outcome())));
          bool replayed = op->response.outcome() == v1::GRANT_OUTCOME_REPLAYED;
          guard->ReleaseAsync([guard, status, deliver, replayed](absl::Status) {
            deliver(replayed
                        ? absl::Status(status.code(),
                                       absl::StrCat(status.message(),
                                                    "; the permits granted with the lost reply "
                                                    "were recovered and released"))
                        : status);
          });
        });
  };

  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.retries = 3;  // safe: same request_id
  auto finish = [core = core_, name = name_, session = *session, recover = std::move(recover)](
                    absl::StatusOr<v1::AcquireSemaphoreResponse> reply, bool cancelled,
                    Callback<SemaphoreGuard> deliver) {
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
    SemaphoreGuard guard(core, name, reply->token(), reply->count(), reply->available(), session,
                         internal::FromProto(reply->outcome()));
    if (cancelled) {
      // The grant raced with Cancel(): give the permits back, then report.
      auto shared = std::make_shared<SemaphoreGuard>(std::move(guard));
      shared->ReleaseAsync([shared, deliver](absl::Status) {
        deliver(absl::CancelledError(
            "cancelled; the permits granted at the same moment were returned"));
      });
      return;
    }
    deliver(std::move(guard));
  };
  return internal::StartUnary<SemaphoreGuard, v1::AcquireSemaphoreResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.semaphores().async()->Acquire(args...); },
      std::move(finish), std::move(done));
}

absl::StatusOr<bool> Semaphore::Delete() const {
  v1::DeleteSemaphoreRequest request;
  request.set_name(name_);
  return internal::Block<bool>([&](Callback<bool> done) {
    return internal::StartUnary<bool, v1::DeleteSemaphoreResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.semaphores().async()->Delete(args...); },
        internal::Converting<bool, v1::DeleteSemaphoreResponse>(
            [](const v1::DeleteSemaphoreResponse& r) { return r.deleted(); }),
        std::move(done));
  });
}

}  // namespace baton
