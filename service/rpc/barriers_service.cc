// Handlers of baton.v1.Barriers.
#include "absl/strings/str_cat.h"
#include "baton/v1/barrier.grpc.pb.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using WaitCall = Op<v1::BarrierWaitRequest, v1::BarrierWaitResponse>;
using AbortCall = Op<v1::BarrierAbortRequest, v1::BarrierAbortResponse>;
using ResetCall = Op<v1::BarrierResetRequest, v1::BarrierResetResponse>;

runtime::Task<void> Wait(Env& env, WaitCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  if (req.parties() > env.limits.max_waiters_per_resource) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("parties ", req.parties(), " is over the limit ",
                     env.limits.max_waiters_per_resource, " (--max_waiters_per_resource)")));
  }
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  apply::BarrierWait cmd{req.name(), req.parties(), req.session_id(), *deadline};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& p = *r;
  v1::BarrierWaitResponse resp;
  resp.set_index(p.index);
  resp.set_cycle(p.cycle);
  // A barrier's passage cannot be undone: the other parties have gone on.
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Abort(Env& env, AbortCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::AbortBarrier cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::BarrierAbortResponse resp;
  resp.set_aborted(r->aborted);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Reset(Env& env, ResetCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::ResetBarrier cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::BarrierResetResponse resp;
  resp.set_aborted(r->aborted);
  co_await call.Reply(std::move(resp));
}

}  // namespace

void ListenBarriers(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* b = &svc.barriers;
  Listen(env, shard, out, "Wait", b, &Wait, v1::Operation::kWaitBarrier);
  Listen(env, shard, out, "Abort", b, &Abort, v1::Operation::kAbortBarrier);
  Listen(env, shard, out, "Reset", b, &Reset, v1::Operation::kResetBarrier);
}

}  // namespace baton::rpc
