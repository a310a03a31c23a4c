#include "baton/lock.h"

#include "absl/strings/str_cat.h"
#include "acquire.h"
#include "core.h"
#include "grant.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

namespace {

auto LaunchRelease() {
  return [](Core& core, auto... args) { core.locks().async()->Release(args...); };
}

// Whether the server's answer to a Release or Refresh says the holding is gone.
bool SaysGone(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

LockGuard::LockGuard(std::shared_ptr<Core> core, std::string name, uint64_t token,
                     uint64_t session_id, std::optional<absl::Duration> lease, GrantOutcome outcome,
                     std::optional<absl::Duration> expires_in)
    : core_(std::move(core)),
      name_(std::move(name)),
      token_(token),
      session_id_(session_id),
      lease_(lease),
      outcome_(outcome),
      expires_in_(expires_in),
      lost_(core_->NewLostSignal(session_id)) {
  WatchLease();
}

void LockGuard::WatchLease() {
  lease_watch_.reset();
  if (session_id_ != 0 || !expires_in_.has_value()) return;
  expires_at_ = absl::Now() + *expires_in_;
  lease_watch_ = std::make_shared<internal::LeaseWatch>(
      lost_, expires_at_, absl::StrCat("the lease of lock \"", name_, "\" ran out"));
}

LockGuard::LockGuard(LockGuard&& other) noexcept
    : core_(std::move(other.core_)),
      name_(std::move(other.name_)),
      token_(other.token_),
      session_id_(other.session_id_),
      lease_(other.lease_),
      outcome_(other.outcome_),
      expires_in_(other.expires_in_),
      expires_at_(other.expires_at_),
      lost_(std::move(other.lost_)),
      lease_watch_(std::move(other.lease_watch_)) {
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
    expires_at_ = other.expires_at_;
    lost_ = std::move(other.lost_);
    lease_watch_ = std::move(other.lease_watch_);
  }
  return *this;
}

LockGuard::~LockGuard() { (void)Release(); }

bool LockGuard::holds() const {
  if (!core_) return false;
  if (lost()) return false;
  // A session-owned holding ends with its session; a lease-only one is
  // believed held until released or its lease runs out.
  return session_id_ == 0 || !core_->SessionOver(session_id_);
}

void LockGuard::OnLost(std::function<void(absl::Status)> callback) const {
  if (lost_) lost_->OnLost(std::move(callback));
}

bool LockGuard::lost() const {
  if (!lost_) return false;
  if (!lost_->fired() && core_ && absl::Now() >= expires_at_) {
    lost_->Fire(absl::AbortedError(absl::StrCat("the lease of lock \"", name_, "\" ran out")));
  }
  return lost_->fired();
}

absl::Status LockGuard::Release() {
  if (!core_) return absl::OkStatus();
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (session_id_ != 0 && core->SessionOver(session_id_)) {
    return absl::AbortedError("the session that held the lock is over: the server released it");
  }
  v1::ReleaseLockRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  absl::Status status = internal::CallNow<v1::ReleaseLockResponse>(
                            core, request, LaunchRelease(), BATON_ROUTE(release_lock),
                            [](Core& c, auto... args) { return c.locks().Release(args...); })
                            .status();
  if (SaysGone(status) && lost_) lost_->Fire(status);
  if (status.ok() && lost_) lost_->Disarm();
  lease_watch_.reset();
  return status;
}

void LockGuard::ReleaseAsync(std::function<void(absl::Status)> then) {
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (lost_) lost_->Disarm();
  lease_watch_.reset();
  if (!core) {
    then(absl::OkStatus());
    return;
  }
  v1::ReleaseLockRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  internal::StartDetached<v1::ReleaseLockResponse>(core, std::move(request), LaunchRelease(),
                                                   BATON_ROUTE(release_lock), std::move(then));
}

absl::StatusOr<absl::Duration> LockGuard::Refresh(absl::Duration ttl) {
  if (!core_) return absl::FailedPreconditionError("the guard holds no lock");
  v1::RefreshLockRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  *request.mutable_ttl() = internal::ToProto(ttl);
  absl::StatusOr<v1::RefreshLockResponse> response = internal::CallNow<v1::RefreshLockResponse>(
      core_, request, [](Core& core, auto... args) { core.locks().async()->Refresh(args...); },
      BATON_ROUTE(refresh_lock), [](Core& c, auto... args) { return c.locks().Refresh(args...); });
  if (!response.ok()) {
    if (SaysGone(response.status()) && lost_) lost_->Fire(response.status());
    return response.status();
  }
  lease_ = ttl;
  expires_in_ = internal::FromProto(response->expires_in());
  WatchLease();
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

  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  internal::Grant<LockGuard, v1::AcquireLockResponse> grant{
      .accept = [core = core_, name = name_, session = *session, lease = options.lease](
                    const v1::AcquireLockResponse& reply) -> absl::StatusOr<LockGuard> {
        std::optional<absl::Duration> expires_in;
        if (reply.has_expires_in()) expires_in = internal::FromProto(reply.expires_in());
        return LockGuard(core, name, reply.token(), session, lease,
                         internal::FromProto(reply.outcome()), expires_in);
      },
      .give_back =
          [core = core_, name = name_, session = *session](const v1::AcquireLockResponse& reply,
                                                           std::function<void()> then) {
            v1::ReleaseLockRequest release;
            release.set_name(name);
            release.set_token(reply.token());
            release.set_session_id(session);
            internal::StartDetached<v1::ReleaseLockResponse>(
                core, std::move(release), LaunchRelease(), BATON_ROUTE(release_lock),
                [then = std::move(then)](absl::Status) { then(); });
          },
  };
  return internal::StartAcquire<LockGuard, v1::AcquireLockResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.locks().async()->Acquire(args...); },
      BATON_ROUTE(acquire_lock), std::move(grant), std::move(done));
}

}  // namespace baton
