#include "baton/event.h"

#include "core.h"
#include "grant.h"
#include "proto_time.h"
#include "read_stream.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

absl::StatusOr<EventSetResult> Event::Set() const {
  return internal::Block<EventSetResult>(
      [&](Callback<EventSetResult> done) { return AsyncSet(std::move(done)); });
}

Call Event::AsyncSet(Callback<EventSetResult> done) const {
  v1::SetEventRequest request;
  request.set_name(name_);
  return internal::StartUnary<EventSetResult, v1::SetEventResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.events().async()->Set(args...); }, BATON_ROUTE(set_event),
      internal::Converting<EventSetResult, v1::SetEventResponse>([](const v1::SetEventResponse& r) {
        return EventSetResult{.was_set = r.previous() == v1::EVENT_STATE_SET, .woken = r.woken()};
      }),
      std::move(done));
}

absl::StatusOr<bool> Event::Clear() const {
  return internal::Block<bool>([&](Callback<bool> done) { return AsyncClear(std::move(done)); });
}

Call Event::AsyncClear(Callback<bool> done) const {
  v1::ClearEventRequest request;
  request.set_name(name_);
  return internal::StartUnary<bool, v1::ClearEventResponse>(
      core_, CallOptions{}, std::move(request),
      [](Core& core, auto... args) { core.events().async()->Clear(args...); },
      BATON_ROUTE(clear_event),
      internal::Converting<bool, v1::ClearEventResponse>(
          [](const v1::ClearEventResponse& r) { return r.previous() == v1::EVENT_STATE_SET; }),
      std::move(done));
}

absl::StatusOr<bool> Event::IsSet() const {
  absl::StatusOr<GrantOutcome> waited =
      Wait(WaitOptions{.timeout = absl::ZeroDuration(), .bind_to_session = false});
  if (waited.ok()) return true;
  if (waited.status().code() == absl::StatusCode::kDeadlineExceeded) return false;
  return waited.status();
}

absl::StatusOr<GrantOutcome> Event::Wait(WaitOptions options) const {
  return internal::Block<GrantOutcome>(
      [&](Callback<GrantOutcome> done) { return AsyncWait(std::move(options), std::move(done)); });
}

absl::StatusOr<GrantOutcome> Event::Wait(absl::Duration timeout) const {
  return Wait(WaitOptions{.timeout = timeout});
}

Call Event::AsyncWait(WaitOptions options, Callback<GrantOutcome> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.bind_to_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::WaitEventRequest request;
  request.set_name(name_);
  request.set_session_id(*session);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  return internal::StartUnary<GrantOutcome, v1::WaitEventResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.events().async()->Wait(args...); },
      BATON_ROUTE(wait_event),
      internal::Converting<GrantOutcome, v1::WaitEventResponse>(
          [](const v1::WaitEventResponse& r) { return internal::FromProto(r.outcome()); }),
      std::move(done));
}

Stream Event::Watch(std::function<void(bool, uint64_t)> on_change,
                    std::function<void(absl::Status)> on_end, CancelToken cancel) const {
  v1::WatchEventRequest request;
  request.set_name(name_);
  return internal::ReadStream<v1::WatchEventRequest, v1::EventChange>::Start(
      core_, std::move(request),
      [](Core& core, auto... args) { core.events().async()->Watch(args...); },
      [on_change = std::move(on_change)](v1::EventChange& change) {
        if (on_change) on_change(change.state() == v1::EVENT_STATE_SET, change.sequence());
      },
      std::move(on_end), cancel);
}

}  // namespace baton
