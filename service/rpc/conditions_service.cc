// Handlers of baton.v1.Conditions. A condition lives with its lock, so every
// command goes to the lock's shard.
#include "absl/strings/str_cat.h"
#include "baton/v1/condition.grpc.pb.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using WaitCall = Op<v1::ConditionWaitRequest, v1::ConditionWaitResponse>;
using NotifyCall = Op<v1::NotifyRequest, v1::NotifyResponse>;

absl::Status ValidateCondition(const std::string& lock, const std::string& condition) {
  if (auto s = ValidateName(lock, "lock"); !s.ok()) return s;
  if (condition.empty()) return absl::OkStatus();
  return ValidateName(condition, "condition");
}

runtime::Task<void> Wait(Env& env, WaitCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateCondition(req.lock(), req.condition()); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  Duration lease = 0;
  if (req.has_ttl()) {
    auto ttl = ToMicros(req.ttl(), "ttl", env.limits.max_lease, /*allow_zero=*/false);
    if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
    lease = *ttl;
  }
  // Two deadlines: the request's timeout ends the wait for a notify (then
  // the lock is re-acquired and the call returns OK, "timed out"); the gRPC
  // deadline ends the call (DEADLINE_EXCEEDED, the lock not held).
  Time now = call.Now();
  Time timeout = kForever;
  if (req.has_timeout()) {
    auto t = ToMicros(req.timeout(), "timeout", 365LL * 24 * 3600 * kSecond, /*allow_zero=*/true);
    if (!t.ok()) co_return co_await call.Fail(t.status());
    timeout = AddSaturating(now, *t);
  }
  auto rpc_deadline = WaitDeadline(call.RpcDeadline(), false, req.timeout(), now);
  if (!rpc_deadline.ok()) co_return co_await call.Fail(rpc_deadline.status());
  uint32_t target = env.cluster->ShardOfName(req.lock());
  std::string lock = req.lock();
  apply::ConditionWait cmd{req.lock(), req.condition(), req.token(),  req.session_id(),
                           lease,      timeout,         *rpc_deadline};
  auto r = co_await call.Submit(target, cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& g = *r;
  v1::ConditionWaitResponse resp;
  resp.set_outcome(g.condition_outcome == primitives::ConditionOutcome::kTimedOut
                       ? v1::CONDITION_OUTCOME_TIMED_OUT
                       : v1::CONDITION_OUTCOME_NOTIFIED);
  resp.set_token(g.token);
  if (g.expires_in != kForever) ToProto(g.expires_in, resp.mutable_expires_in());
  // Nobody may have got the re-acquired lock: hand it on (a wait has no
  // request_id to recover it by; a holder that did read it is fenced by the
  // token and told on its Release).
  if (co_await call.Reply(std::move(resp)) != Delivery::kDelivered) {
    apply::Undeliver undo{apply::Kind::kLock, lock, g.token, g.delivery};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

runtime::Task<void> DoNotify(Env& env, NotifyCall& call, bool all) {
  const auto& req = call.request;
  if (auto s = ValidateCondition(req.lock(), req.condition()); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  apply::Notify cmd{req.lock(),       req.condition(),       req.token(),
                    req.session_id(), std::max(1u, req.n()), all};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.lock()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::NotifyResponse resp;
  resp.set_woken(r->woken);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> NotifyOne(Env& env, NotifyCall& call) { co_await DoNotify(env, call, false); }
runtime::Task<void> NotifyAll(Env& env, NotifyCall& call) { co_await DoNotify(env, call, true); }

}  // namespace

void ListenConditions(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* c = &svc.conditions;
  Listen(env, shard, out, "Wait", c, &Wait, v1::Operation::kWaitCondition);
  Listen(env, shard, out, "Notify", c, &NotifyOne, v1::Operation::kNotify);
  Listen(env, shard, out, "NotifyAll", c, &NotifyAll, v1::Operation::kNotifyAll);
}

}  // namespace baton::rpc
