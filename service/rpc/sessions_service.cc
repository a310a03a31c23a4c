// Handlers of baton.v1.Sessions, including the KeepAliveStream bidi stream.
#include "absl/container/btree_set.h"
#include "absl/strings/str_cat.h"
#include "baton/v1/stream.pb.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {

// KeepAliveStream: every session named on the stream stays alive until the
// stream ends; then each gets its TTL again, counted from that moment.
class KeepAliveStreamCall final : public CallBase {
 public:
  using CallBase::CallBase;
  RawBidiStream<v1::KeepAliveRequest, v1::KeepAliveResponse> stream{&ctx};
  // The method's path, for a follower's relay to the leader (forward.h).
  const std::string* relay_path = nullptr;

  runtime::Task<void> Refuse(absl::Status status) {
    grpc::Status s = ToGrpc(status);
    co_await runtime::CqOp([&](void* tag) { stream.Finish(s, tag); });
  }
};

namespace {

using apply::Boxed;
using apply::SessionInfo;

void Fill(const SessionInfo& info, v1::KeepAliveResponse* resp) {
  resp->set_session_id(info.session);
  resp->set_state(v1::SESSION_STATE_ALIVE);
  if (info.expires_in != kForever) ToProto(info.expires_in, resp->mutable_expires_in());
}

absl::Status CheckSessionId(uint64_t id) {
  if (id != 0) return absl::OkStatus();
  return absl::InvalidArgumentError("session_id is required (from Sessions/Open)");
}

using OpenCall = Op<v1::OpenSessionRequest, v1::OpenSessionResponse>;
using KeepAliveCall = Op<v1::KeepAliveRequest, v1::KeepAliveResponse>;
using CloseCall = Op<v1::CloseSessionRequest, v1::CloseSessionResponse>;
using DescribeCall = Op<v1::DescribeSessionRequest, v1::DescribeSessionResponse>;

runtime::Task<void> Open(Env& env, OpenCall& call) {
  const auto& req = call.request;
  auto ttl = SessionTtl(env.limits, req.has_ttl(), req.ttl());
  if (!ttl.ok()) co_return co_await call.Fail(ttl.status());
  if (auto s = ValidateLength(req.label(), kMaxLabelBytes, "label"); !s.ok()) {
    co_return co_await call.Fail(s);
  }
  const security::Principal* who = call.principal();
  uint32_t home = env.SessionHome(who);
  apply::OpenSession cmd{*ttl, req.label(), call.owner(), security::RandomNonce(),
                         who != nullptr ? static_cast<uint64_t>(who->max_sessions) : 0};
  auto r = co_await call.Submit(home, cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& info = *r;
  v1::OpenSessionResponse resp;
  resp.set_session_id(info.session);
  ToProto(info.ttl, resp.mutable_ttl());
  // Nobody learned the id: end the session now rather than at its TTL. An
  // uncertain answer is kept (the client may use the session); if nobody
  // did, it expires at its TTL.
  if (co_await call.Reply(std::move(resp)) == Delivery::kLost)
    call.Send(home, apply::CloseSession{info.session});
}

runtime::Task<void> KeepAliveOnce(Env& env, KeepAliveCall& call) {
  uint64_t id = call.request.session_id();
  if (auto s = CheckSessionId(id); !s.ok()) co_return co_await call.Fail(s);
  apply::KeepAlive cmd{id};
  auto r = co_await call.Submit(env.cluster->ShardOfSession(id), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::KeepAliveResponse resp;
  Fill(*r, &resp);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Close(Env& env, CloseCall& call) {
  uint64_t id = call.request.session_id();
  if (auto s = CheckSessionId(id); !s.ok()) co_return co_await call.Fail(s);
  apply::CloseSession cmd{id};
  auto r = co_await call.Submit(env.cluster->ShardOfSession(id), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  v1::CloseSessionResponse resp;
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> Describe(Env& env, DescribeCall& call) {
  uint64_t id = call.request.session_id();
  if (auto s = CheckSessionId(id); !s.ok()) co_return co_await call.Fail(s);
  apply::DescribeSession cmd{id};
  auto r = co_await call.Submit(env.cluster->ShardOfSession(id), cmd);
  if (!r.ok()) co_return co_await call.Fail(r.status());
  const auto& info = *r;
  v1::DescribeSessionResponse resp;
  resp.set_session_id(info.session);
  resp.set_label(info.label);
  ToProto(info.ttl, resp.mutable_ttl());
  if (info.expires_in != kForever) ToProto(info.expires_in, resp.mutable_expires_in());
  ToProto(info.age, resp.mutable_age());
  resp.set_open_streams(info.open_streams);
  co_await call.Reply(std::move(resp));
}

runtime::Task<void> KeepAliveStream(Env& env, KeepAliveStreamCall& call) {
  env.streams[call.shard().index()].insert(&call.ctx);
  absl::btree_set<uint64_t> attached;
  grpc::Status end = grpc::Status::OK;
  for (;;) {
    v1::KeepAliveRequest req;
    bool ok = co_await runtime::CqOp([&](void* tag) { call.stream.Read(tag); });
    if (!ok) break;
    if (absl::Status decoded = call.stream.Decode(&req); !decoded.ok()) {
      end = ToGrpc(decoded);
      break;
    }
    uint64_t id = req.session_id();
    // Another principal's session ends the stream, as a unary call is
    // refused (access.h).
    if (call.principal != nullptr && id != 0) {
      absl::Status s = co_await CheckSession(env, call.shard(), *call.principal, id);
      if (s.code() == absl::StatusCode::kPermissionDenied) {
        end = ToGrpc(s);
        break;
      }
    }
    v1::KeepAliveResponse resp;
    resp.set_session_id(id);
    uint32_t home = env.cluster->ShardOfSession(id);
    absl::StatusOr<apply::SessionInfo> r = absl::NotFoundError("no session_id");
    if (id != 0 && attached.contains(id)) {
      apply::DescribeSession cmd{id};
      r = co_await call.Submit(home, cmd);
    } else if (id != 0) {
      apply::AttachStream cmd{id};
      r = co_await call.Submit(home, cmd);
    }
    if (r.ok()) {
      attached.insert(id);
      Fill(*r, &resp);
    } else if (r.status().code() == absl::StatusCode::kNotFound) {
      attached.erase(id);
      resp.set_state(v1::SESSION_STATE_NOT_FOUND);
    } else {
      // Not an answer about the session (in a failover: this node stopped
      // leading, or cannot confirm that it still does): the stream ends with
      // that status and the client reconnects, within the TTL, to whichever
      // node leads. Answering NOT_FOUND here made clients give up sessions
      // that were alive (the linearizability check under load).
      end = ToGrpc(r.status());
      break;
    }
    ok = co_await runtime::CqOp([&](void* tag) { call.stream.Write(resp, tag); });
    if (!ok) break;
  }
  for (uint64_t id : attached) {
    call.Send(env.cluster->ShardOfSession(id), apply::DetachStream{id});
  }
  env.streams[call.shard().index()].erase(&call.ctx);
  co_await runtime::CqOp([&](void* tag) { call.stream.Finish(end, tag); });
}

}  // namespace

void ListenSessions(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  auto* s = &svc.sessions;
  Listen(env, shard, out, "Open", s, &Open);
  Listen(env, shard, out, "KeepAlive", s, &KeepAliveOnce);
  Listen(env, shard, out, "Close", s, &Close);
  Listen(env, shard, out, "Describe", s, &Describe, v1::Operation::kDescribeSession);
  const int keepalive = s->BidiMethod("KeepAliveStream", v1::KeepAliveRequest::descriptor());
  auto path = std::make_shared<const std::string>(s->Path("KeepAliveStream"));
  auto stream = std::make_unique<Listener<KeepAliveStreamCall>>(
      &env, &shard,
      [s, keepalive, path](KeepAliveStreamCall& call, grpc::ServerCompletionQueue* cq, void* tag) {
        call.relay_path = path.get();
        s->RequestRawBidi(keepalive, &call.ctx, call.stream.raw(), cq, tag);
      },
      &KeepAliveStream);
  for (int i = 0; i < 4; ++i) stream->Post();
  out.push_back(std::move(stream));
}

}  // namespace baton::rpc
