// Handlers of baton.v1.Tasks. A task id is "<queue>#<seq>": the handler
// splits it and sends the command to the work queue's shard.
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "baton/v1/stream.pb.h"
#include "baton/v1/task.grpc.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {
namespace {

using SubmitCall = Op<v1::SubmitTaskRequest, v1::SubmitTaskResponse>;
using TakeCall = Op<v1::TakeTaskRequest, v1::TakeTaskResponse>;
using HeartbeatCall = Op<v1::TaskHeartbeatRequest, v1::TaskHeartbeatResponse>;
using CompleteCall = Op<v1::CompleteTaskRequest, v1::CompleteTaskResponse>;
using AwaitCall = Op<v1::AwaitTaskRequest, v1::TaskOutcome>;
using CancelCall = Op<v1::CancelTaskRequest, v1::CancelTaskResponse>;
using WaitCall = Op<v1::WaitTasksRequest, v1::WaitTasksResponse>;

constexpr int kMaxWaitIds = 1000;

struct TaskRef {
  std::string queue;
  uint64_t seq = 0;
};

absl::StatusOr<TaskRef> ParseTaskId(const std::string& id, const char* field = "task_id") {
  size_t hash = id.rfind('#');
  TaskRef ref;
  if (hash == std::string::npos || hash == 0 || !absl::SimpleAtoi(id.substr(hash + 1), &ref.seq)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " '", id.substr(0, 300), "' is not a task id (\"<queue>#<number>\", from Submit)"));
  }
  ref.queue = id.substr(0, hash);
  if (auto s = ValidateName(ref.queue, field); !s.ok()) return s;
  return ref;
}

v1::TaskState ToProto(primitives::TaskState s) {
  switch (s) {
    case primitives::TaskState::kPending:
      return v1::TASK_STATE_PENDING;
    case primitives::TaskState::kRunning:
      return v1::TASK_STATE_RUNNING;
    case primitives::TaskState::kSucceeded:
      return v1::TASK_STATE_SUCCEEDED;
    case primitives::TaskState::kFailed:
      return v1::TASK_STATE_FAILED;
    case primitives::TaskState::kCancelled:
      return v1::TASK_STATE_CANCELLED;
  }
  return v1::TASK_STATE_UNSPECIFIED;
}

void ToProto(apply::TaskReport r, v1::TaskOutcome* out) {
  out->set_task_id(r.id);
  out->set_state(ToProto(r.state));
  if (IsValidUtf8(r.result)) out->set_text(r.result);
  out->set_result(std::move(r.result));
  if (r.error_code != 0 || !r.error_message.empty()) {
    out->mutable_error()->set_code(r.error_code);
    out->mutable_error()->set_message(r.error_message);
  }
  out->set_attempts(r.attempts);
}

absl::StatusOr<std::string> Payload(const Env& env, const std::string& data,
                                    const std::string& text, const char* what) {
  if (!data.empty() && !text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("both ", what, " and text are set; give one"));
  }
  const std::string& p = data.empty() ? text : data;
  if (p.size() > env.limits.max_item_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is ", p.size(), " bytes; the limit is ",
                                                   env.limits.max_item_bytes,
                                                   " (--max_item_bytes)"));
  }
  return p;
}

runtime::Task<void> Submit(Env& env, SubmitCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.queue(), "queue"); !s.ok()) co_return co_await call.Fail(s);
  auto payload = Payload(env, req.payload(), req.text(), "payload");
  if (!payload.ok()) co_return co_await call.Fail(payload.status());
  if (auto s = ValidateLength(req.group(), 256, "group"); !s.ok()) co_return co_await call.Fail(s);
  if (req.max_attempts() > 1000) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("max_attempts ", req.max_attempts(), " is over 1000")));
  }
  apply::SubmitTask c;
  c.queue = req.queue();
  c.payload = std::move(*payload);
  if (req.has_delay() && req.has_at()) {
    co_return co_await call.Fail(absl::InvalidArgumentError("give delay or at, not both"));
  }
  if (req.has_delay()) {
    auto d = ToMicros(req.delay(), "delay", env.limits.max_lease, /*allow_zero=*/true);
    if (!d.ok()) co_return co_await call.Fail(d.status());
    c.delay = *d;
  }
  if (req.has_at()) {
    auto in = DelayUntil(req.at(), "at", env.limits.max_lease);
    if (!in.ok()) co_return co_await call.Fail(in.status());
    c.delay = *in;
  }
  if (req.has_run_timeout()) {
    auto d = ToMicros(req.run_timeout(), "run_timeout", env.limits.max_lease,
                      /*allow_zero=*/false);
    if (!d.ok()) co_return co_await call.Fail(d.status());
    c.run_timeout = *d;
  }
  c.max_attempts = req.max_attempts();
  c.group = req.group();
  c.shielded = req.shielded();
  auto& cmd = c;
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.queue()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::SubmitTaskResponse resp;
  resp.set_task_id(r->id);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Take(Env& env, TakeCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.queue(), "queue"); !s.ok()) co_return co_await call.Fail(s);
  apply::TakeTask c;
  c.queue = req.queue();
  c.session = req.session_id();
  if (auto s = ValidateLength(req.request_id(), kMaxRequestIdBytes, "request_id"); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  c.request_id = req.request_id();
  if (req.has_ttl()) {
    auto ttl = ToMicros(req.ttl(), "ttl", env.limits.max_lease, /*allow_zero=*/false);
    if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
    c.lease = *ttl;
  }
  if (c.session == 0 && c.lease == 0) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        "no owner for the task: give session_id or ttl (a heartbeat lease), or both"));
  }
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  c.deadline = *deadline;
  c.nowait = NoWait(req.has_timeout(), req.timeout());
  uint32_t target = env.cluster->ShardOfName(req.queue());
  std::string queue = req.queue();
  auto& cmd = c;
  auto r = co_await call.Submit(target, cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& taken = *r;
  auto ref = ParseTaskId(taken.id);
  v1::TakeTaskResponse resp;
  resp.set_task_id(taken.id);
  if (IsValidUtf8(taken.payload)) resp.set_text(taken.payload);
  resp.set_payload(std::move(taken.payload));
  resp.set_attempt(taken.attempt);
  uint32_t attempt = taken.attempt;
  // Clients do not ask again for a cancelled unary Take (a retry could take,
  // and then burn an attempt of, another task): batond gives back a task
  // unless the answer was surely delivered. A worker that did read it is
  // fenced by the attempt number.
  if (co_await call.Reply(std::move(resp)) != Delivery::kDelivered && ref.ok()) {
    apply::UndeliverTask undo{queue, ref->seq, attempt};
    co_await call.Submit(target, undo);  // RollBack: answered once applied
  }
}

runtime::Task<void> Heartbeat(Env& env, HeartbeatCall& call) {
  auto ref = ParseTaskId(call.request.task_id());
  if (!ref.ok()) co_return co_await call.Fail(ref.status());
  apply::HeartbeatTask cmd{ref->queue, ref->seq, call.request.attempt()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(ref->queue), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::TaskHeartbeatResponse resp;
  resp.set_cancelled(r->cancel_requested);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Complete(Env& env, CompleteCall& call) {
  const auto& req = call.request;
  auto ref = ParseTaskId(req.task_id());
  if (!ref.ok()) co_return co_await call.Fail(ref.status());
  auto result = Payload(env, req.result(), req.text(), "result");
  if (!result.ok()) co_return co_await call.Fail(result.status());
  if (auto s = ValidateLength(req.error().message(), 4096, "error.message"); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  apply::CompleteTask c;
  c.queue = ref->queue;
  c.seq = ref->seq;
  c.attempt = req.attempt();
  c.result = std::move(*result);
  c.failed = req.has_error();
  c.error_code = req.error().code();
  c.error_message = req.error().message();
  c.final = req.final();
  c.give_back = req.give_back();
  if (c.give_back && (c.failed || !c.result.empty())) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        "give_back returns the task untried: give no result and no error with it"));
  }
  auto& cmd = c;
  auto r = co_await call.Submit(env.cluster->ShardOfName(ref->queue), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::CompleteTaskResponse resp;
  resp.set_state(ToProto(r->state));
  resp.set_cancelled(r->was_cancelled);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Await(Env& env, AwaitCall& call) {
  auto ref = ParseTaskId(call.request.task_id());
  if (!ref.ok()) co_return co_await call.Fail(ref.status());
  auto deadline = WaitDeadline(call.RpcDeadline(), call.request.has_timeout(),
                               call.request.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  apply::AwaitTask cmd{ref->queue, ref->seq, *deadline};
  auto r = co_await call.Submit(env.cluster->ShardOfName(ref->queue), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& reports = *r;
  v1::TaskOutcome resp;
  ToProto(std::move(reports.done.at(0)), &resp);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Cancel(Env& env, CancelCall& call) {
  auto ref = ParseTaskId(call.request.task_id());
  if (!ref.ok()) co_return co_await call.Fail(ref.status());
  apply::CancelTask cmd{ref->queue, ref->seq};
  auto r = co_await call.Submit(env.cluster->ShardOfName(ref->queue), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::CancelTaskResponse resp;
  resp.set_cancelled(r->cancelled);
  resp.set_state(ToProto(r->state));
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Wait(Env& env, WaitCall& call) {
  const auto& req = call.request;
  absl::Status bad;
  if (req.task_ids().empty() == req.group().empty()) {
    bad = absl::InvalidArgumentError("give task_ids, or queue and group (not both)");
  }
  if (req.task_ids_size() > kMaxWaitIds) {
    bad = absl::InvalidArgumentError(absl::StrCat("at most ", kMaxWaitIds, " task_ids"));
  }
  if (bad.ok() && !req.group().empty()) {
    bad = ValidateName(req.queue(), "queue");
    if (bad.ok()) bad = ValidateLength(req.group(), 256, "group");
  }
  if (!bad.ok()) co_return co_await call.Fail(bad);
  apply::WaitTasks c;
  c.queue = req.queue();
  c.group = req.group();
  for (const std::string& id : req.task_ids()) {
    auto ref = ParseTaskId(id, "task_ids");
    if (!ref.ok()) co_return co_await call.Fail(ref.status());
    if (c.seqs.empty()) c.queue = ref->queue;
    if (ref->queue != c.queue) {
      co_return co_await call.Fail(absl::InvalidArgumentError(
          absl::StrCat("task_ids name work queues '", c.queue, "' and '", ref->queue,
                       "'; one Wait covers tasks of one work queue")));
    }
    c.seqs.push_back(ref->seq);
  }
  switch (req.mode()) {
    case v1::WAIT_MODE_FIRST_COMPLETED:
      c.mode = 1;
      break;
    case v1::WAIT_MODE_FIRST_EXCEPTION:
      c.mode = 2;
      break;
    case v1::WAIT_MODE_UNSPECIFIED:
    case v1::WAIT_MODE_ALL_COMPLETED:
      c.mode = 3;
      break;
    default:
      co_return co_await call.Fail(
          absl::InvalidArgumentError(absl::StrCat("unknown mode ", req.mode())));
  }
  auto deadline = WaitDeadline(call.RpcDeadline(), req.has_timeout(), req.timeout(), call.Now());
  if (!deadline.ok()) co_return co_await call.Fail(deadline.status());
  c.deadline = *deadline;
  std::string queue = c.queue;
  auto& cmd = c;
  auto r = co_await call.Submit(env.cluster->ShardOfName(queue), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  auto& reports = *r;
  v1::WaitTasksResponse resp;
  for (auto& d : reports.done) ToProto(std::move(d), resp.add_done());
  for (auto& p : reports.pending) resp.add_pending(std::move(p));
  co_await call.Reply(std::move(resp));
}

}  // namespace

void ListenTasks(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* t = &svc.tasks;
  Listen(env, shard, out, "Submit", t, &Submit, v1::Operation::kSubmitTask);
  Listen(env, shard, out, "Take", t, &Take, v1::Operation::kTakeTask);
  Listen(env, shard, out, "Heartbeat", t, &Heartbeat, v1::Operation::kTaskHeartbeat);
  Listen(env, shard, out, "Complete", t, &Complete, v1::Operation::kCompleteTask);
  Listen(env, shard, out, "Await", t, &Await, v1::Operation::kAwaitTask);
  Listen(env, shard, out, "Cancel", t, &Cancel, v1::Operation::kCancelTask);
  Listen(env, shard, out, "Wait", t, &Wait, v1::Operation::kWaitTasks);
}

}  // namespace baton::rpc
