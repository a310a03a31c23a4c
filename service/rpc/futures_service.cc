// Handlers of baton.v1.Futures.
#include "absl/strings/str_cat.h"
#include "baton/v1/future.grpc.pb.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using primitives::FutureState;
using primitives::FutureValue;

using SetResultCall = Op<v1::SetResultRequest, v1::SetResultResponse>;
using SetExceptionCall = Op<v1::SetExceptionRequest, v1::SetResultResponse>;
using CancelCall = Op<v1::CancelFutureRequest, v1::CancelFutureResponse>;
using AwaitCall = Op<v1::AwaitFutureRequest, v1::AwaitFutureResponse>;

absl::StatusOr<Duration> Retention(const Env& env, bool has, const google::protobuf::Duration& d) {
  if (!has) return 0;
  return ToMicros(d, "retention", env.limits.max_retention, /*allow_zero=*/false);
}

// Validates and submits a CompleteFuture; the result is the new state.
template <class CallT>
runtime::Task<absl::StatusOr<apply::FutureOutcome>> Complete(
    Env& env, CallT& call, const std::string& name, FutureValue value, bool has_retention,
    const google::protobuf::Duration& retention) {
  if (auto s = ValidateName(name); !s.ok()) co_return s;
  auto keep = Retention(env, has_retention, retention);
  if (!keep.ok()) co_return keep.status();
  apply::CompleteFuture cmd{name, std::move(value), *keep};
  co_return co_await call.Submit(env.cluster->ShardOfName(name), cmd);
}

runtime::Task<void> SetResult(Env& env, SetResultCall& call) {
  const auto& req = call.request;
  if (!req.value().empty() && !req.text().empty()) {
    co_return co_await call.Fail(
        absl::InvalidArgumentError("both value and text are set; give one"));
  }
  FutureValue v;
  v.state = FutureState::kResult;
  v.value = req.value().empty() ? req.text() : req.value();
  if (v.value.size() > env.limits.max_item_bytes) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("the value is ", v.value.size(), " bytes; the limit is ",
                     env.limits.max_item_bytes, " (--max_item_bytes)")));
  }
  absl::StatusOr<apply::FutureOutcome> r =
      co_await Complete(env, call, req.name(), std::move(v), req.has_retention(), req.retention());
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::SetResultResponse resp;
  resp.set_woken(r->woken);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> SetException(Env& env, SetExceptionCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateLength(req.message(), 4096, "message"); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  FutureValue v;
  v.state = FutureState::kException;
  v.error_code = req.code();
  v.error_message = req.message();
  absl::StatusOr<apply::FutureOutcome> r =
      co_await Complete(env, call, req.name(), std::move(v), req.has_retention(), req.retention());
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::SetResultResponse resp;
  resp.set_woken(r->woken);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Cancel(Env& env, CancelCall& call) {
  const auto& req = call.request;
  FutureValue v;
  v.state = FutureState::kCancelled;
  absl::StatusOr<apply::FutureOutcome> r =
      co_await Complete(env, call, req.name(), std::move(v), req.has_retention(), req.retention());
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& o = *r;
  v1::CancelFutureResponse resp;
  resp.set_cancelled(o.changed);
  resp.set_state(ToProto(o.value.state));
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Await(Env& env, AwaitCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  apply::AwaitFuture cmd{req.name(), req.session_id(), *deadline};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& o = *r;
  v1::AwaitFutureResponse resp;
  resp.set_state(ToProto(o.value.state));
  if (IsValidUtf8(o.value.value)) resp.set_text(o.value.value);
  resp.set_value(std::move(o.value.value));
  resp.set_error_code(o.value.error_code);
  resp.set_error_message(o.value.error_message);
  resp.set_outcome(ToProto(o.how));
  co_await call.Reply(std::move(resp));
}

}  // namespace

void ListenFutures(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* f = &svc.futures;
  Listen(env, shard, out, "SetResult", f, &SetResult, v1::Operation::kSetResult);
  Listen(env, shard, out, "SetException", f, &SetException, v1::Operation::kSetException);
  Listen(env, shard, out, "Cancel", f, &Cancel, v1::Operation::kCancelFuture);
  Listen(env, shard, out, "Await", f, &Await, v1::Operation::kAwaitFuture);
}

}  // namespace baton::rpc
