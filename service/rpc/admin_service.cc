// Handlers of baton.v1.Admin: List fans out to every shard and merges the
// pages in name order; Describe asks the owning shard; ServerInfo,
// SaveSnapshot and the membership calls ask the server as a whole
// (server_ops.h).
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/convert.h"
#include "service/rpc/server_ops.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {

// A SaveSnapshot stream: waits for the server to cut a snapshot, then
// writes its file in chunks, one write in flight at a time.
class SaveSnapshotCall final : public ServerStreamCall<v1::SaveSnapshotRequest, v1::SnapshotChunk> {
 public:
  using ServerStreamCall::ServerStreamCall;

  runtime::Wakeup wake;

 protected:
  void OnDone() override { wake.Notify(); }
};

namespace {

constexpr uint32_t kDefaultPageSize = 100;
constexpr uint32_t kMaxPageSize = 1000;

using ListCall = Op<v1::ListRequest, v1::ListResponse>;
using DescribeCall = Op<v1::DescribeRequest, v1::DescribeResponse>;

runtime::Task<void> List(Env& env, ListCall& call) {
  const auto& req = call.request;
  if (req.page_size() > kMaxPageSize) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("page_size ", req.page_size(), " is over the limit of ", kMaxPageSize)));
  }
  if (!req.page_token().empty()) {
    if (auto s = ValidateName(req.page_token(), "page_token"); !s.ok()) {
      co_return co_await call.Fail(s);
    }
  }
  if (req.prefix().size() > kMaxNameBytes) {
    co_return co_await call.Fail(absl::InvalidArgumentError(
        absl::StrCat("prefix is longer than the longest name (", kMaxNameBytes, " bytes)")));
  }
  apply::ListResources cmd;
  switch (req.kind()) {
    case v1::RESOURCE_KIND_LOCK:
      cmd.kind = apply::Kind::kLock;
      break;
    case v1::RESOURCE_KIND_SEMAPHORE:
      cmd.kind = apply::Kind::kSemaphore;
      break;
    case v1::RESOURCE_KIND_EVENT:
      cmd.kind = apply::Kind::kEvent;
      break;
    case v1::RESOURCE_KIND_QUEUE:
      cmd.kind = apply::Kind::kQueue;
      break;
    case v1::RESOURCE_KIND_FUTURE:
      cmd.kind = apply::Kind::kFuture;
      break;
    case v1::RESOURCE_KIND_BARRIER:
      cmd.kind = apply::Kind::kBarrier;
      break;
    case v1::RESOURCE_KIND_TIMER:
      cmd.kind = apply::Kind::kTimer;
      break;
    case v1::RESOURCE_KIND_TASKS:
      cmd.kind = apply::Kind::kTasks;
      break;
    case v1::RESOURCE_KIND_UNSPECIFIED:
      break;
    default:
      co_return co_await call.Fail(
          absl::InvalidArgumentError(absl::StrCat("unknown kind ", req.kind())));
  }
  cmd.prefix = req.prefix();
  cmd.after = req.page_token();
  cmd.limit = req.page_size() == 0 ? kDefaultPageSize : req.page_size();

  // Each shard returns its first `limit` matches; the first `limit` of the
  // union are exactly the first `limit` matches overall.
  std::vector<apply::ResourceSummary> all;
  bool more = false;
  for (uint32_t s = 0; s < env.cluster->size(); ++s) {
    apply::ListResources shard_cmd = cmd;
    auto r = co_await call.Submit(s, shard_cmd);
    if (!r.ok()) co_return co_await call.Fail(r.status());
    auto& page = *r;
    more = more || page.more;
    for (auto& item : page.resources) all.push_back(std::move(item));
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  if (all.size() > cmd.limit) {
    all.resize(cmd.limit);
    more = true;
  }
  v1::ListResponse resp;
  for (const auto& item : all) {
    auto* out = resp.add_resources();
    out->set_name(item.name);
    out->set_kind(ToProto(item.kind));
    out->set_holders(item.holders);
    out->set_waiters(item.waiters);
  }
  if (more && !all.empty()) resp.set_next_page_token(all.back().name);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Describe(Env& env, DescribeCall& call) {
  const auto& req = call.request;
  if (auto s = ValidateName(req.name()); !s.ok()) co_return co_await call.Fail(s);
  apply::DescribeResource cmd{req.name()};
  auto r = co_await call.Submit(env.cluster->ShardOfName(req.name()), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& info = *r;
  v1::DescribeResponse resp;
  resp.set_name(info.name);
  resp.set_kind(ToProto(info.kind));
  // Handles (token, session, request id) are shown to their own principal
  // and to admins only: with them one could act for the holder.
  const security::Principal* who = call.principal();
  auto shows_handles = [&](uint64_t session) {
    if (who == nullptr || who->admin) return true;
    if (session == 0) return false;
    const std::string* owner = call.shard().state().SessionOwner(session);
    return owner != nullptr && *owner == who->name;
  };
  for (const auto& h : info.holders) {
    auto* out = resp.add_holders();
    if (shows_handles(h.session)) {
      out->set_token(h.token);
      out->set_session_id(h.session);
      out->set_request_id(h.request_id);
    }
    out->set_count(h.count);
    ToProto(h.held_for, out->mutable_held_for());
    if (h.expires_in != kForever) ToProto(h.expires_in, out->mutable_expires_in());
  }
  resp.set_waiters(info.waiters);
  resp.set_orphaned_waiters(info.orphaned_waiters);
  resp.set_unclaimed_grants(info.unclaimed_grants);
  if (info.oldest_wait >= 0) ToProto(info.oldest_wait, resp.mutable_oldest_wait());
  resp.set_capacity(info.capacity);
  resp.set_available(info.available);
  if (info.kind == apply::Kind::kEvent) {
    resp.set_event_state(info.event_set ? v1::EVENT_STATE_SET : v1::EVENT_STATE_CLEAR);
  }
  resp.set_watchers(info.watchers);
  resp.set_last_token(info.last_token);
  for (const auto& c : info.conditions) {
    auto* out = resp.add_conditions();
    out->set_condition(c.condition);
    out->set_waiters(c.waiters);
    out->set_reacquiring(c.reacquiring);
  }
  switch (info.kind) {
    case apply::Kind::kQueue: {
      const apply::QueueSummary& q = info.queue;
      v1::QueueInfo* out = resp.mutable_queue();
      out->set_order(ToProto(q.options.order));
      out->set_maxsize(q.options.maxsize);
      out->set_max_deliveries(q.options.max_deliveries);
      out->set_size(q.ready);
      out->set_delayed(q.delayed);
      out->set_in_flight(q.in_flight);
      out->set_dead_letters(q.dead);
      out->set_unfinished(q.unfinished);
      if (q.oldest_age >= 0) ToProto(q.oldest_age, out->mutable_oldest_item_age());
      out->set_waiting_getters(q.getters);
      out->set_waiting_putters(q.putters);
      out->set_waiting_joiners(q.joiners);
      out->set_total_put(q.total_put);
      out->set_total_acked(q.total_acked);
      break;
    }
    case apply::Kind::kFuture:
      resp.set_future_state(ToProto(info.future_state));
      if (info.retained_for >= 0 && info.retained_for != kForever) {
        ToProto(info.retained_for, resp.mutable_retained_for());
      }
      break;
    case apply::Kind::kTasks: {
      v1::TasksInfo* out = resp.mutable_tasks();
      out->set_pending(info.tasks_pending);
      out->set_running(info.tasks_running);
      out->set_done(info.tasks_done);
      break;
    }
    case apply::Kind::kTimer: {
      v1::TimerInfo* out = resp.mutable_timer();
      if (info.due_in >= 0) ToProto(info.due_in, out->mutable_due_in());
      if (info.every > 0) ToProto(info.every, out->mutable_every());
      out->set_fired(info.fired);
      if (info.since_fired >= 0) ToProto(info.since_fired, out->mutable_since_fired());
      out->set_action(info.action);
      break;
    }
    case apply::Kind::kBarrier: {
      v1::BarrierInfo* out = resp.mutable_barrier();
      out->set_parties(info.parties);
      out->set_arrived(info.arrived);
      out->set_broken(info.broken);
      out->set_cycles(info.cycles);
      break;
    }
    default:
      break;
  }
  co_await call.Reply(std::move(resp));
}

using ServerInfoCall = Op<v1::ServerInfoRequest, v1::ServerInfoResponse>;

runtime::Task<void> ServerInfo(Env& env, ServerInfoCall& call) {
  v1::ServerInfoResponse resp;
  env.ops->Describe(&resp);
  co_await call.Reply(std::move(resp));
}

// Where a cut snapshot meets the call that asked for it, on the call's loop.
// Shared: the call may end (its client gone, shutdown) before the cut does.
struct SnapshotWait {
  bool ready = false;
  absl::StatusOr<ServerOps::SnapshotFile> file = absl::UnknownError("not cut yet");
  SaveSnapshotCall* call = nullptr;  // null once the call stopped waiting
};

runtime::Task<void> SaveSnapshot(Env& env, SaveSnapshotCall& call) {
  auto wait = std::make_shared<SnapshotWait>();
  wait->call = &call;
  runtime::Loop* loop = &call.shard().loop();
  env.ops->CutSnapshot([wait, loop](absl::StatusOr<ServerOps::SnapshotFile> file) {
    loop->Post([wait, file = std::move(file)] {
      wait->file = file;
      wait->ready = true;
      if (wait->call != nullptr) wait->call->wake.Notify();
    });
  });
  while (!wait->ready && !call.done()) co_await call.wake;
  wait->call = nullptr;
  absl::Status end;
  if (!wait->ready) {
    end = absl::CancelledError("the call ended before the snapshot was cut");
  } else if (!wait->file.ok()) {
    end = wait->file.status();
  } else {
    const ServerOps::SnapshotFile& file = *wait->file;
    std::string buffer(env.snapshot_chunk_bytes, '\0');
    bool first = true;
    for (;;) {
      size_t n = std::fread(buffer.data(), 1, buffer.size(), file.file.get());
      if (n == 0) {
        if (std::ferror(file.file.get())) {
          end = absl::InternalError(
              absl::StrCat("reading snapshot ", file.index, " failed: ", std::strerror(errno)));
        }
        break;
      }
      v1::SnapshotChunk chunk;
      if (first) {
        chunk.set_index(file.index);
        chunk.set_total_bytes(file.bytes);
        first = false;
      }
      chunk.set_data(buffer.data(), n);
      bool ok = co_await runtime::CqOp([&](void* tag) { call.writer.Write(chunk, tag); });
      if (!ok) break;  // the client went away
    }
  }
  grpc::Status status = ToGrpc(end);
  co_await runtime::CqOp([&](void* tag) { call.writer.Finish(status, tag); });
}

// Where raft's answer to a membership call meets the call, on its loop. The
// call waits for it (raft answers within the deadline it was given), so the
// frame outlives the notification; shared only to outlive a loop that
// stopped before the answer came (shutdown: it is then never run).
struct MembersWait {
  runtime::Wakeup wake;
  bool ready = false;
  absl::StatusOr<v1::MembersResponse> result = absl::UnknownError("no answer yet");
};

// Raft waits at most this long for a membership decision: a commit, or a
// transfer's election. Bounded so that shutdown never waits longer.
constexpr absl::Duration kMembersWait = absl::Seconds(15);

template <class Req>
runtime::Task<void> Members(Env& env, Op<Req, v1::MembersResponse>& call) {
  absl::Time deadline = absl::Now() + kMembersWait;
  if (auto rpc = call.RpcDeadline(); rpc != std::chrono::system_clock::time_point::max()) {
    deadline = std::min(deadline, absl::FromChrono(rpc));
  }
  auto wait = std::make_shared<MembersWait>();
  runtime::Loop* loop = &call.shard().loop();
  env.ops->Members(call.request, deadline,
                   [wait, loop](absl::StatusOr<v1::MembersResponse> result) {
                     loop->Post([wait, result = std::move(result)]() mutable {
                       wait->result = std::move(result);
                       wait->ready = true;
                       wait->wake.Notify();
                     });
                   });
  while (!wait->ready) co_await wait->wake;
  if (!wait->result.ok()) co_return co_await call.Fail(wait->result.status());
  co_await call.Reply(std::move(*wait->result));
}

}  // namespace

void ListenAdmin(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* a = &svc.admin;
  Listen(env, shard, out, "List", a, &List, v1::Operation::kList);
  Listen(env, shard, out, "Describe", a, &Describe, v1::Operation::kDescribe);
  Listen(env, shard, out, "ServerInfo", a, &ServerInfo);
  ListenStream<SaveSnapshotCall>(env, shard, out, "SaveSnapshot", a, &SaveSnapshot);
  Listen(env, shard, out, "ListMembers", a, &Members<v1::ListMembersRequest>);
  Listen(env, shard, out, "AddMember", a, &Members<v1::AddMemberRequest>);
  Listen(env, shard, out, "RemoveMember", a, &Members<v1::RemoveMemberRequest>);
  Listen(env, shard, out, "TransferLeadership", a, &Members<v1::TransferLeadershipRequest>);
}

}  // namespace baton::rpc
