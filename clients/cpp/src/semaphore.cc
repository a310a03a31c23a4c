#include "baton/semaphore.h"

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
  return [](Core& core, auto... args) { core.semaphores().async()->Release(args...); };
}

bool SaysGone(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

SemaphoreGuard::SemaphoreGuard(std::shared_ptr<Core> core, std::string name, uint64_t token,
                               int64_t count, int64_t available, uint64_t session_id,
                               GrantOutcome outcome)
    : core_(std::move(core)),
      name_(std::move(name)),
      token_(token),
      count_(count),
      available_at_grant_(available),
      session_id_(session_id),
      outcome_(outcome),
      lost_(core_->NewLostSignal(session_id)) {}

void SemaphoreGuard::WatchLease(std::optional<absl::Duration> expires_in) {
  lease_watch_.reset();
  if (session_id_ != 0 || !expires_in.has_value() || !core_) return;
  lease_watch_ = std::make_shared<internal::LeaseWatch>(
      lost_, absl::Now() + *expires_in,
      absl::StrCat("the lease of semaphore \"", name_, "\" ran out"));
}

SemaphoreGuard::SemaphoreGuard(SemaphoreGuard&& other) noexcept
    : core_(std::move(other.core_)),
      name_(std::move(other.name_)),
      token_(other.token_),
      count_(other.count_),
      available_at_grant_(other.available_at_grant_),
      session_id_(other.session_id_),
      outcome_(other.outcome_),
      lost_(std::move(other.lost_)),
      lease_watch_(std::move(other.lease_watch_)) {
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
    lost_ = std::move(other.lost_);
    lease_watch_ = std::move(other.lease_watch_);
  }
  return *this;
}

SemaphoreGuard::~SemaphoreGuard() { (void)Release(); }

void SemaphoreGuard::OnLost(std::function<void(absl::Status)> callback) const {
  if (lost_) lost_->OnLost(std::move(callback));
}

bool SemaphoreGuard::lost() const { return lost_ && lost_->fired(); }

bool SemaphoreGuard::holds() const {
  if (!core_ || lost()) return false;
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
  v1::ReleaseSemaphoreRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  request.set_count(count);
  absl::StatusOr<v1::ReleaseSemaphoreResponse> response =
      internal::CallNow<v1::ReleaseSemaphoreResponse>(
          core, request, LaunchRelease(), BATON_ROUTE(release_semaphore),
          [](Core& c, auto... args) { return c.semaphores().Release(args...); });
  if (!response.ok()) {
    // Not held (lease ran out, wrong token): nothing is left to release.
    if (SaysGone(response.status())) {
      core_.reset();
      count_ = 0;
      if (lost_) lost_->Fire(response.status());
    }
    return response.status();
  }
  count_ = response->remaining();
  if (count_ == 0) {
    core_.reset();
    if (lost_) lost_->Disarm();
    lease_watch_.reset();
  }
  return response->available();
}

void SemaphoreGuard::ReleaseAsync(std::function<void(absl::Status)> then) {
  std::shared_ptr<Core> core = std::move(core_);
  core_.reset();
  if (lost_) lost_->Disarm();
  lease_watch_.reset();
  if (!core) {
    then(absl::OkStatus());
    return;
  }
  v1::ReleaseSemaphoreRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  internal::StartDetached<v1::ReleaseSemaphoreResponse>(
      core, std::move(request), LaunchRelease(), BATON_ROUTE(release_semaphore), std::move(then));
}

absl::StatusOr<absl::Duration> SemaphoreGuard::Refresh(absl::Duration ttl) {
  if (!core_) return absl::FailedPreconditionError("the guard holds no permits");
  v1::RefreshSemaphoreRequest request;
  request.set_name(name_);
  request.set_token(token_);
  request.set_session_id(session_id_);
  *request.mutable_ttl() = internal::ToProto(ttl);
  absl::StatusOr<v1::RefreshSemaphoreResponse> response =
      internal::CallNow<v1::RefreshSemaphoreResponse>(
          core_, request,
          [](Core& core, auto... args) { core.semaphores().async()->Refresh(args...); },
          BATON_ROUTE(refresh_semaphore),
          [](Core& c, auto... args) { return c.semaphores().Refresh(args...); });
  if (!response.ok()) {
    if (SaysGone(response.status()) && lost_) lost_->Fire(response.status());
    return response.status();
  }
  WatchLease(internal::FromProto(response->expires_in()));
  return internal::FromProto(response->expires_in());
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

  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  internal::Grant<SemaphoreGuard, v1::AcquireSemaphoreResponse> grant{
      .accept = [core = core_, name = name_, session = *session](
                    const v1::AcquireSemaphoreResponse& reply) -> absl::StatusOr<SemaphoreGuard> {
        SemaphoreGuard guard(core, name, reply.token(), reply.count(), reply.available(), session,
                             internal::FromProto(reply.outcome()));
        if (reply.has_expires_in()) guard.WatchLease(internal::FromProto(reply.expires_in()));
        return guard;
      },
      .give_back =
          [core = core_, name = name_, session = *session](
              const v1::AcquireSemaphoreResponse& reply, std::function<void()> then) {
            v1::ReleaseSemaphoreRequest release;
            release.set_name(name);
            release.set_token(reply.token());
            release.set_session_id(session);
            internal::StartDetached<v1::ReleaseSemaphoreResponse>(
                core, std::move(release), LaunchRelease(), BATON_ROUTE(release_semaphore),
                [then = std::move(then)](absl::Status) { then(); });
          },
  };
  return internal::StartAcquire<SemaphoreGuard, v1::AcquireSemaphoreResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.semaphores().async()->Acquire(args...); },
      BATON_ROUTE(acquire_semaphore), std::move(grant), std::move(done));
}

absl::StatusOr<bool> Semaphore::Delete() const {
  v1::DeleteSemaphoreRequest request;
  request.set_name(name_);
  return internal::Block<bool>([&](Callback<bool> done) {
    return internal::StartUnary<bool, v1::DeleteSemaphoreResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.semaphores().async()->Delete(args...); },
        BATON_ROUTE(delete_semaphore),
        internal::Converting<bool, v1::DeleteSemaphoreResponse>(
            [](const v1::DeleteSemaphoreResponse& r) { return r.deleted(); }),
        std::move(done));
  });
}

}  // namespace baton
