// Handlers of baton.v1.Locks and baton.v1.Semaphores. Both turn requests
// into permit-pool commands (a lock is a pool of capacity 1).
#include "absl/strings/str_cat.h"
#include "baton/v1/lock.grpc.pb.h"
#include "baton/v1/semaphore.grpc.pb.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using apply::Kind;

// Validation shared by both Acquire methods. Moves the request_id out of
// `req` (a pending wait then keeps one copy of it, in its waiter, not two).
template <class Req>
absl::StatusOr<apply::AcquirePermits> BuildAcquire(
    const Env& env, std::chrono::system_clock::time_point rpc_deadline, Req& req, Kind kind,
    Time now) {
  apply::AcquirePermits c;
  c.kind = kind;
  if (auto s = ValidateName(req.name()); !s.ok()) return s;
  c.name = req.name();
  c.session = req.session_id();
  if (req.has_ttl()) {
    auto ttl = ToMicros(req.ttl(), "ttl", env.limits.max_lease, /*allow_zero=*/false);
    if (!ttl.ok()) return ttl.status();
    c.lease = *ttl;
  }
  if (c.session == 0 && c.lease == 0) {
    return absl::InvalidArgumentError(
        "no owner: give session_id (from Sessions/Open) or ttl (a lease, e.g. \"30s\"), or both");
  }
  if (auto s = ValidateLength(req.request_id(), kMaxRequestIdBytes, "request_id"); !s.ok()) {
    return s;
  }
  auto deadline = WaitDeadline(rpc_deadline, req.has_timeout(), req.timeout(), now);
  if (!deadline.ok()) return deadline.status();
  c.deadline = *deadline;
  c.nowait = NoWait(req.has_timeout(), req.timeout());
  // Released, not moved out: the request (alive as long as the wait) then
  // keeps no string of its own for it, and one never sent costs nothing.
  if (!req.request_id().empty()) {
    std::unique_ptr<std::string> id(req.release_request_id());
    c.request_id = std::move(*id);
  }
  return c;
}

absl::StatusOr<Duration> BuildRefreshTtl(const Env& env, bool has_ttl,
                                         const google::protobuf::Duration& ttl) {
  if (!has_ttl) return absl::InvalidArgumentError("ttl is required, e.g. \"30s\"");
  return ToMicros(ttl, "ttl", env.limits.max_lease, /*allow_zero=*/false);
}

// --- Locks ---

using LockAcquireCall = Op<v1::AcquireLockRequest, v1::AcquireLockResponse>;
using LockReleaseCall = Op<v1::ReleaseLockRequest, v1::ReleaseLockResponse>;
using LockRefreshCall = Op<v1::RefreshLockRequest, v1::RefreshLockResponse>;

v1::AcquireLockResponse LockResponse(const apply::Granted& g) {
  v1::AcquireLockResponse resp;
  resp.set_token(g.token);
  resp.set_outcome(ToProto(g.how));
  if (g.expires_in != kForever) ToProto(g.expires_in, resp.mutable_expires_in());
  return resp;
}

// What a lock acquire answers, once the wait is over: a coroutine of its
// own, so that nothing it needs (the response, the reply's awaiters) takes
// room in LockAcquire's frame, which lives as long as the wait in line.
runtime::Task<void> AnswerLockAcquire(LockAcquireCall& call, uint32_t target,
                                      apply::Result&& result) {
  auto r = apply::TakeResult<apply::AcquirePermits>(std::move(result));
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::AcquireLockResponse resp = LockResponse(*r);
  // Kept unless lost: the client recovers an uncertain grant by request_id.
  if (co_await call.Reply(std::move(resp)) == Delivery::kLost) {
    apply::Undeliver undo{Kind::kLock, call.request.name(), r->token, r->delivery};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

// Written so that the frame, alive for as long as the wait in line, stays
// small: the command is built by SubmitBuilt, the answer is made by another
// coroutine, the name read from the request rather than copied.
runtime::Task<void> LockAcquire(Env& env, LockAcquireCall& call) {
  uint32_t target = env.cluster->ShardOfName(call.request.name());
  co_await AnswerLockAcquire(
      call, target, co_await call.SubmitBuiltRaw<apply::AcquirePermits>(target, [&env, &call] {
        return BuildAcquire(env, call.RpcDeadline(), call.request, Kind::kLock, call.Now());
      }));
}

runtime::Task<void> LockRelease(Env& env, LockReleaseCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::ReleasePermits cmd{Kind::kLock, req.name(), req.token(), req.session_id(), 0};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::ReleaseLockResponse resp;
  resp.set_handed_off(r->handed_off);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> LockRefresh(Env& env, LockRefreshCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  auto ttl = BuildRefreshTtl(env, req.has_ttl(), req.ttl());
  if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
  apply::RefreshPermits cmd{Kind::kLock, req.name(), req.token(), req.session_id(), *ttl};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::RefreshLockResponse resp;
  ToProto(r->expires_in, resp.mutable_expires_in());
  co_await call.Reply(std::move(resp));
}

// --- Semaphores ---

using SemAcquireCall = Op<v1::AcquireSemaphoreRequest, v1::AcquireSemaphoreResponse>;
using SemReleaseCall = Op<v1::ReleaseSemaphoreRequest, v1::ReleaseSemaphoreResponse>;
using SemRefreshCall = Op<v1::RefreshSemaphoreRequest, v1::RefreshSemaphoreResponse>;

absl::StatusOr<apply::AcquirePermits> BuildSemAcquire(const Env& env, SemAcquireCall& call) {
  auto& req = call.request;
  auto cmd = BuildAcquire(env, call.RpcDeadline(), req, Kind::kSemaphore, call.Now());
  if (!cmd.ok()) return cmd;
  if (req.capacity() < 0 || req.capacity() > env.limits.max_capacity) {
    return absl::InvalidArgumentError(
        absl::StrCat("capacity ", req.capacity(), " is out of range 1..", env.limits.max_capacity));
  }
  if (req.has_count() && req.count() <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("count ", req.count(), " must be at least 1 (unset means 1)"));
  }
  cmd->capacity = req.capacity();
  cmd->count = req.has_count() ? req.count() : 1;
  return cmd;
}

// As AnswerLockAcquire, for semaphores.
runtime::Task<void> AnswerSemAcquire(SemAcquireCall& call, uint32_t target,
                                     apply::Result&& result) {
  auto r = apply::TakeResult<apply::AcquirePermits>(std::move(result));
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& g = *r;
  v1::AcquireSemaphoreResponse resp;
  resp.set_token(g.token);
  resp.set_count(g.count);
  resp.set_available(g.available);
  resp.set_outcome(ToProto(g.how));
  if (g.expires_in != kForever) ToProto(g.expires_in, resp.mutable_expires_in());
  // Kept unless lost: the client recovers an uncertain grant by request_id.
  if (co_await call.Reply(std::move(resp)) == Delivery::kLost) {
    apply::Undeliver undo{Kind::kSemaphore, call.request.name(), g.token, g.delivery};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

// As LockAcquire.
runtime::Task<void> SemAcquire(Env& env, SemAcquireCall& call) {
  uint32_t target = env.cluster->ShardOfName(call.request.name());
  co_await AnswerSemAcquire(call, target,
                            co_await call.SubmitBuiltRaw<apply::AcquirePermits>(
                                target, [&env, &call] { return BuildSemAcquire(env, call); }));
}

runtime::Task<void> SemRelease(Env& env, SemReleaseCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  if (req.has_count() && req.count() <= 0) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("count ", req.count(), " must be at least 1 (unset means all)")));
  }
  apply::ReleasePermits cmd{Kind::kSemaphore, req.name(), req.token(), req.session_id(),
                            req.has_count() ? req.count() : 0};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& rel = *r;
  v1::ReleaseSemaphoreResponse resp;
  resp.set_available(rel.available);
  resp.set_remaining(rel.remaining);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> SemRefresh(Env& env, SemRefreshCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  auto ttl = BuildRefreshTtl(env, req.has_ttl(), req.ttl());
  if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
  apply::RefreshPermits cmd{Kind::kSemaphore, req.name(), req.token(), req.session_id(), *ttl};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::RefreshSemaphoreResponse resp;
  ToProto(r->expires_in, resp.mutable_expires_in());
  co_await call.Reply(std::move(resp));
}

using SemDeleteCall = Op<v1::DeleteSemaphoreRequest, v1::DeleteSemaphoreResponse>;

runtime::Task<void> SemDelete(Env& env, SemDeleteCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::DeleteSemaphore cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::DeleteSemaphoreResponse resp;
  resp.set_deleted(r->deleted);
  co_await call.Reply(std::move(resp));
}

}  // namespace

void ListenPermits(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* locks = &svc.locks;
  auto* sems = &svc.semaphores;
  Listen(env, shard, out, "Acquire", locks, &LockAcquire, v1::Operation::kAcquireLock);
  Listen(env, shard, out, "Release", locks, &LockRelease, v1::Operation::kReleaseLock);
  Listen(env, shard, out, "Refresh", locks, &LockRefresh, v1::Operation::kRefreshLock);
  Listen(env, shard, out, "Acquire", sems, &SemAcquire, v1::Operation::kAcquireSemaphore);
  Listen(env, shard, out, "Release", sems, &SemRelease, v1::Operation::kReleaseSemaphore);
  Listen(env, shard, out, "Refresh", sems, &SemRefresh, v1::Operation::kRefreshSemaphore);
  Listen(env, shard, out, "Delete", sems, &SemDelete, v1::Operation::kDeleteSemaphore);
}

}  // namespace baton::rpc
