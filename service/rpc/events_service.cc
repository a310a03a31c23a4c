// Handlers of baton.v1.Events, including the Watch server stream.
#include <deque>

#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {

// A Watch stream. Changes arrive as results of the WatchEvent command, one
// per change, and are written one at a time (gRPC allows one outstanding
// write). A reader that falls behind sees the latest state rather than every
// change: the inbox is bounded.
class WatchCall final : public ServerStreamCall<v1::WatchEventRequest, v1::EventChange> {
 public:
  using ServerStreamCall::ServerStreamCall;
  static constexpr size_t kMaxInbox = 64;

  std::deque<apply::Result> inbox;
  runtime::Wakeup wake;

 protected:
  void Deliver(apply::Result result) override {
    if (inbox.size() >= kMaxInbox) inbox.clear();  // keep the latest state
    inbox.push_back(std::move(result));
    wake.Notify();
  }
  void OnDone() override { wake.Notify(); }
};

namespace {

using apply::EventOutcome;

v1::EventState State(bool set) { return set ? v1::EVENT_STATE_SET : v1::EVENT_STATE_CLEAR; }

using SetCall = Op<v1::SetEventRequest, v1::SetEventResponse>;
using ClearCall = Op<v1::ClearEventRequest, v1::ClearEventResponse>;
using WaitCall = Op<v1::WaitEventRequest, v1::WaitEventResponse>;

runtime::Task<void> Set(Env& env, SetCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::SetEvent cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& o = *r;
  v1::SetEventResponse resp;
  resp.set_previous(State(o.previous_set));
  resp.set_woken(o.woken);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Clear(Env& env, ClearCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::ClearEvent cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::ClearEventResponse resp;
  resp.set_previous(State(r->previous_set));
  co_await call.Reply(std::move(resp));
}

// The command of a Wait, or why there is none.
absl::StatusOr<apply::WaitEvent> WaitCommand(WaitCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) return s;
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) return deadline.status();
  return apply::WaitEvent{req.name(), req.session_id(), *deadline};
}

v1::WaitEventResponse WaitResponse(const apply::EventOutcome& passed) {
  v1::WaitEventResponse resp;
  resp.set_state(v1::EVENT_STATE_SET);
  resp.set_outcome(ToProto(passed.how));
  return resp;
}

// What a wait answers once it is over: a coroutine of its own, so that
// nothing it needs takes room in Wait's frame, which lives as long as the
// wait. Nothing to roll back if the reply is lost: waiting took nothing.
runtime::Task<void> AnswerWait(WaitCall& call, apply::Result&& result) {
  auto r = apply::TakeResult<apply::WaitEvent>(std::move(result));
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::WaitEventResponse resp = WaitResponse(*r);
  co_await call.Reply(std::move(resp));
}

// Written so that the frame, alive for as long as the wait, stays small: the
// command is built by SubmitBuilt, the answer made by AnswerWait.
runtime::Task<void> Wait(Env& env, WaitCall& call) {
  co_await AnswerWait(call, co_await call.SubmitBuiltRaw<apply::WaitEvent>(
                                env.cluster->ShardOfName(call.request.name()),
                                [&call] { return WaitCommand(call); }));
}

runtime::Task<void> Watch(Env& env, WatchCall& call) {
  const std::string name = call.request.name();
  absl::Status end = ValidateName(name);
  uint32_t target = 0;
  bool watching = end.ok();
  if (watching) {
    target = env.cluster->ShardOfName(name);
    // No need to register for shutdown: BeginShutdown ends every watch.
    call.shard().Send(target, apply::WatchEvent{name}, call.op());
  }
  uint64_t sequence = 0;
  while (end.ok()) {
    while (call.inbox.empty() && !call.done()) co_await call.wake;
    if (call.done()) break;
    auto r = apply::TakeResult<apply::WatchEvent>(std::move(call.inbox.front()));
    call.inbox.pop_front();
    if (!r.ok()) {
      end = r.status();
      break;
    }
    v1::EventChange change;
    change.set_state(State(r->set));
    change.set_sequence(++sequence);
    bool ok = co_await runtime::CqOp([&](void* tag) { call.writer.Write(change, tag); });
    if (!ok) break;
  }
  if (watching) {
    // A no-op if the server already ended the watch (shutdown, error). The
    // watcher is known by this call's op.
    call.shard().Send(target, apply::UnwatchEvent{name}, call.op());
  }
  grpc::Status status = ToGrpc(end);
  co_await runtime::CqOp([&](void* tag) { call.writer.Finish(status, tag); });
}

}  // namespace

void ListenEvents(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* events = &svc.events;
  Listen(env, shard, out, "Set", events, &Set, v1::Operation::kSetEvent);
  Listen(env, shard, out, "Clear", events, &Clear, v1::Operation::kClearEvent);
  Listen(env, shard, out, "Wait", events, &Wait, v1::Operation::kWaitEvent);
  ListenStream<WatchCall>(env, shard, out, "Watch", events, &Watch);
}

}  // namespace baton::rpc
