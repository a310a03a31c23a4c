#include "baton/barrier.h"

#include "core.h"
#include "unary_op.h"

namespace baton {

using internal::CallOptions;
using internal::Core;

absl::StatusOr<BarrierArrival> Barrier::Wait(WaitOptions options) const {
  return internal::Block<BarrierArrival>([&](Callback<BarrierArrival> done) {
    return AsyncWait(std::move(options), std::move(done));
  });
}

Call Barrier::AsyncWait(WaitOptions options, Callback<BarrierArrival> done) const {
  absl::StatusOr<uint64_t> session = internal::SessionIf(*core_, options.bind_to_session);
  if (!session.ok()) return internal::FailNow(session.status(), done);
  v1::BarrierWaitRequest request;
  request.set_name(name_);
  request.set_parties(parties_);
  request.set_session_id(*session);
  CallOptions call;
  call.cancel = options.cancel;
  call.wait_until = internal::DeadlineIn(options.timeout);
  return internal::StartUnary<BarrierArrival, v1::BarrierWaitResponse>(
      core_, std::move(call), std::move(request),
      [](Core& core, auto... args) { core.barriers().async()->Wait(args...); },
      BATON_ROUTE(wait_barrier),
      internal::Converting<BarrierArrival, v1::BarrierWaitResponse>(
          [](const v1::BarrierWaitResponse& r) {
            return BarrierArrival{.index = r.index(), .cycle = r.cycle()};
          }),
      std::move(done));
}

absl::StatusOr<uint32_t> Barrier::Abort() const {
  v1::BarrierAbortRequest request;
  request.set_name(name_);
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    return internal::StartUnary<uint32_t, v1::BarrierAbortResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.barriers().async()->Abort(args...); },
        BATON_ROUTE(abort_barrier),
        internal::Converting<uint32_t, v1::BarrierAbortResponse>(
            [](const v1::BarrierAbortResponse& r) { return r.aborted(); }),
        std::move(done));
  });
}

absl::StatusOr<uint32_t> Barrier::Reset() const {
  v1::BarrierResetRequest request;
  request.set_name(name_);
  return internal::Block<uint32_t>([&](Callback<uint32_t> done) {
    return internal::StartUnary<uint32_t, v1::BarrierResetResponse>(
        core_, CallOptions{}, std::move(request),
        [](Core& core, auto... args) { core.barriers().async()->Reset(args...); },
        BATON_ROUTE(reset_barrier),
        internal::Converting<uint32_t, v1::BarrierResetResponse>(
            [](const v1::BarrierResetResponse& r) { return r.aborted(); }),
        std::move(done));
  });
}

}  // namespace baton
