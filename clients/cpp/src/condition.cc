#include "baton/condition.h"

#include "absl/strings/str_cat.h"
#include "core.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

absl::StatusOr<ConditionOutcome> Condition::Wait(LockGuard& held,
                                                 ConditionWaitOptions options) const {
  return internal::Block<ConditionOutcome>([&](Callback<ConditionOutcome> done) {
    return AsyncWait(&held, std::move(options), std::move(done));
  });
}

absl::Status Condition::WaitUntil(LockGuard& held, const std::function<bool()>& predicate,
                                  ConditionWaitOptions options) const {
  const absl::Time end = internal::DeadlineIn(options.timeout);
  while (!predicate()) {
    absl::Duration left =
        end == absl::InfiniteFuture() ? absl::InfiniteDuration() : end - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the condition's predicate did not become true in time");
    }
    ConditionWaitOptions once = options;
    once.timeout = left;
    absl::StatusOr<ConditionOutcome> outcome = Wait(held, once);
    if (!outcome.ok()) return outcome.status();
  }
  return absl::OkStatus();
}

Call Condition::AsyncWait(LockGuard* held, ConditionWaitOptions options,
                          Callback<ConditionOutcome> done) const {
  if (held == nullptr || !held->core_) {
    return internal::FailNow<ConditionOutcome>(
        absl::FailedPreconditionError("Condition::Wait needs the lock held (an empty guard)"),
        done);
  }
  if (held->name_ != lock_) {
    return internal::FailNow<ConditionOutcome>(
        absl::InvalidArgumentError(absl::StrCat("the guard holds lock \"", held->name_,
                                                "\", but the condition is bound to \"", lock_,
                                                "\"")),
        done);
  }
  v1::ConditionWaitRequest request;
  request.set_lock(lock_);
  request.set_condition(condition_);
  request.set_token(held->token_);
  request.set_session_id(held->session_id_);
  if (held->lease_.has_value()) *request.mutable_ttl() = internal::ToProto(*held->lease_);

  CallOptions call;
  call.cancel = options.cancel;
  // `timeout` bounds only the wait for a notify; the gRPC deadline bounds
  // the whole call and is separate (options.deadline; none by default).
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.grpc_deadline = internal::DeadlineIn(options.deadline);
  auto finish = [held](absl::StatusOr<v1::ConditionWaitResponse> reply, internal::Ending /*ending*/,
                       Callback<ConditionOutcome> deliver) {
    if (reply.ok()) {
      held->token_ = reply->token();
      held->outcome_ = GrantOutcome::kAfterWait;
      if (reply->has_expires_in()) held->expires_in_ = internal::FromProto(reply->expires_in());
      deliver(reply->outcome() == v1::CONDITION_OUTCOME_TIMED_OUT ? ConditionOutcome::kTimedOut
                                                                  : ConditionOutcome::kNotified);
      return;
    }
    if (reply.status().code() == absl::StatusCode::kInvalidArgument) {
      deliver(reply.status());  // refused before anything happened: still held
      return;
    }
    // The wait failed: the server no longer lets us hold the lock. If the
    // request never reached it (connection lost), the old holding is still
    // there: release it too, so that after an error the guard holds nothing
    // in every case. A stale token is refused harmlessly.
    absl::Status status = reply.status();
    held->ReleaseAsync([deliver, status](absl::Status) { deliver(status); });
  };
  return internal::StartUnary<ConditionOutcome, v1::ConditionWaitResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.conditions().async()->Wait(args...); },
      BATON_ROUTE(wait_condition), std::move(finish), std::move(done));
}

absl::StatusOr<uint32_t> Condition::Notify(const LockGuard& held, uint32_t n) const {
  return DoNotify(held, n, /*all=*/false);
}

absl::StatusOr<uint32_t> Condition::NotifyAll(const LockGuard& held) const {
  return DoNotify(held, 0, /*all=*/true);
}

absl::StatusOr<uint32_t> Condition::DoNotify(const LockGuard& held, uint32_t n, bool all) const {
  if (!held.core_) {
    return absl::FailedPreconditionError("Notify needs the lock held (an empty guard)");
  }
  v1::NotifyRequest request;
  request.set_lock(lock_);
  request.set_condition(condition_);
  request.set_token(held.token_);
  request.set_session_id(held.session_id_);
  request.set_n(n);
  auto convert = internal::Converting<uint32_t, v1::NotifyResponse>(
      [](const v1::NotifyResponse& r) { return r.woken(); });
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    if (all) {
      return internal::StartUnary<uint32_t, v1::NotifyResponse>(
          core_, CallOptions{}, std::move(request),
          [](Core& core, auto... args) { core.conditions().async()->NotifyAll(args...); },
          BATON_ROUTE(notify_all), std::move(convert), std::move(done));
    }
    return internal::StartUnary<uint32_t, v1::NotifyResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.conditions().async()->Notify(args...); },
        BATON_ROUTE(notify), std::move(convert), std::move(done));
  });
}

}  // namespace baton
