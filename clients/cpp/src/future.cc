#include "baton/future.h"

#include "core.h"
#include "proto_time.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

namespace {

FutureState FromProto(v1::FutureState state) {
  switch (state) {
    case v1::FUTURE_STATE_RESULT:
      return FutureState::kResult;
    case v1::FUTURE_STATE_EXCEPTION:
      return FutureState::kException;
    case v1::FUTURE_STATE_CANCELLED:
      return FutureState::kCancelled;
    default:
      return FutureState::kPending;
  }
}

}  // namespace

absl::StatusOr<uint32_t> Future::SetResult(std::string value,
                                           std::optional<absl::Duration> retention) const {
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    return AsyncSetResult(std::move(value), retention, std::move(done));
  });
}

Call Future::AsyncSetResult(std::string value, std::optional<absl::Duration> retention,
                            Callback<uint32_t> done) const {
  v1::SetResultRequest request;
  request.set_name(name_);
  request.set_value(std::move(value));
  if (retention.has_value()) *request.mutable_retention() = internal::ToProto(*retention);
  return internal::StartUnary<uint32_t, v1::SetResultResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.futures().async()->SetResult(args...); },
      BATON_ROUTE(set_result),
      internal::Converting<uint32_t, v1::SetResultResponse>(
          [](const v1::SetResultResponse& r) { return r.woken(); }),
      std::move(done));
}

absl::StatusOr<uint32_t> Future::SetException(int32_t code, std::string message,
                                              std::optional<absl::Duration> retention) const {
  v1::SetExceptionRequest request;
  request.set_name(name_);
  request.set_code(code);
  request.set_message(std::move(message));
  if (retention.has_value()) *request.mutable_retention() = internal::ToProto(*retention);
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    return internal::StartUnary<uint32_t, v1::SetResultResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.futures().async()->SetException(args...); },
        BATON_ROUTE(set_exception),
        internal::Converting<uint32_t, v1::SetResultResponse>(
            [](const v1::SetResultResponse& r) { return r.woken(); }),
        std::move(done));
  });
}

absl::StatusOr<FutureCancelResult> Future::Cancel(std::optional<absl::Duration> retention) const {
  v1::CancelFutureRequest request;
  request.set_name(name_);
  if (retention.has_value()) *request.mutable_retention() = internal::ToProto(*retention);
  return internal::Block<FutureCancelResult>([&](Callback<FutureCancelResult> done) {
    return internal::StartUnary<FutureCancelResult, v1::CancelFutureResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.futures().async()->Cancel(args...); },
        BATON_ROUTE(cancel_future),
        internal::Converting<FutureCancelResult, v1::CancelFutureResponse>(
            [](const v1::CancelFutureResponse& r) {
              return FutureCancelResult{.cancelled = r.cancelled(), .state = FromProto(r.state())};
            }),
        std::move(done));
  });
}

absl::StatusOr<FutureOutcome> Future::Await(WaitOptions options) const {
  return internal::Block<FutureOutcome>([&](Callback<FutureOutcome> done) {
    return AsyncAwait(std::move(options), std::move(done));
  });
}

absl::StatusOr<FutureOutcome> Future::Await(absl::Duration timeout) const {
  return Await(WaitOptions{.timeout = timeout});
}

Call Future::AsyncAwait(WaitOptions options, Callback<FutureOutcome> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.bind_to_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::AwaitFutureRequest request;
  request.set_name(name_);
  request.set_session_id(*session);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  call.retries = 3;  // a read: safe to repeat
  return internal::StartUnary<FutureOutcome, v1::AwaitFutureResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.futures().async()->Await(args...); },
      BATON_ROUTE(await_future),
      internal::Converting<FutureOutcome, v1::AwaitFutureResponse>(
          [](const v1::AwaitFutureResponse& r) {
            return FutureOutcome{.state = FromProto(r.state()),
                                 .value = r.value(),
                                 .error_code = r.error_code(),
                                 .error_message = r.error_message()};
          }),
      std::move(done));
}

}  // namespace baton
