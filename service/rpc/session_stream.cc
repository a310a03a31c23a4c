// The session stream: its write side, the operation registry, and the
// handler of baton.v1.Stream/Connect (the read side and the session).
#include "service/rpc/session_stream.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "service/rpc/services.h"
#include "service/rpc/validate.h"

namespace baton::rpc {

StreamOpBase::StreamOpBase(SessionStream& stream, uint64_t id)
    : OpBase(stream.shard()), stream_(stream), id_(id) {
  principal = stream.principal;
}

// --- SessionStream: answers and the write side ---

void SessionStream::Answer(StreamOpBase* op, v1::OperationResult result, DeliveryAwaiter* awaiter) {
  Enqueue(Outgoing{std::move(result), op, awaiter});
}

void SessionStream::AnswerError(uint64_t id, const absl::Status& status) {
  v1::OperationResult result;
  result.set_id(id);
  result.set_code(static_cast<int32_t>(status.code()));
  result.set_message(std::string(status.message()));
  Enqueue(Outgoing{std::move(result), nullptr, nullptr});
}

void SessionStream::Enqueue(Outgoing out) {
  if (broken_) {
    Settle(out, Delivery::kLost);
    return;
  }
  unsent_bytes_ += out.result.ByteSizeLong();
  outbox_.push_back(std::move(out));
  // Written at the end of the loop's turn, so that answers made ready in the
  // same turn share a message. The deferred work runs before the loop takes
  // its next event, so before the call can finish and be freed.
  if (flush_deferred_ || writing_) return;
  flush_deferred_ = true;
  shard().loop().Defer([this] {
    flush_deferred_ = false;
    ++busy_;
    MaybeWrite();
    --busy_;
    wake.Notify();  // last: it may let the call finish and free this
  });
}

void StreamOpBase::Done() noexcept {
  if (owe_cancelled_) stream().AnswerError(id_, absl::CancelledError("cancelled by the client"));
  stream().Untrack(this);
  delete this;
}

void SessionStream::Untrack(StreamOpBase* op) {
  ops_.erase(op->id());
  wake.Notify();
}

void SessionStream::CancelOp(uint64_t id) {
  auto it = ops_.find(id);
  if (it != ops_.end()) it->second->Cancel();
}

void SessionStream::CancelAll() {
  // Cancel may finish an operation synchronously and so erase it: collect
  // first.
  std::vector<uint64_t> ids;
  ids.reserve(ops_.size());
  for (const auto& [id, op] : ops_) ids.push_back(id);
  for (uint64_t id : ids) CancelOp(id);
}

void SessionStream::OnDone() {
  if (ctx.IsCancelled()) {
    broken_ = true;
    // Nothing queued can be written any more. Settle it now unless a write
    // is under way (its completion settles it): a deferred flush would find
    // the stream broken and write nothing, leaving the answers' handlers
    // waiting for ever.
    ++busy_;  // as in OnWritten
    if (!writing_) DropOutbox();
    CancelAll();
    --busy_;
  }
  wake.Notify();  // last: it may let the call finish and free this
}

void SessionStream::Settle(Outgoing& out, Delivery delivery) {
  if (out.awaiter == nullptr) return;
  DeliveryAwaiter* a = std::exchange(out.awaiter, nullptr);
  a->done_ = true;
  a->delivery_ = delivery;
  if (a->waiter_) std::exchange(a->waiter_, {}).resume();
}

void SessionStream::DropOutbox() {
  while (!outbox_.empty()) {
    Outgoing out = std::move(outbox_.front());
    outbox_.pop_front();
    Settle(out, Delivery::kLost);
  }
  unsent_bytes_ = 0;
}

void SessionStream::MaybeWrite() {
  if (writing_) return;
  if (broken_) {
    DropOutbox();
    return;
  }
  if (outbox_.empty() || finished_) return;
  // Set first: settling below resumes handlers, and the stream's handler
  // must see a write under way until it is issued.
  writing_ = true;
  message_.Clear();
  std::vector<Outgoing> rolled_back;
  size_t bytes = 0;
  while (!outbox_.empty() && (bytes == 0 || bytes < kMaxBatchBytes)) {
    Outgoing out = std::move(outbox_.front());
    outbox_.pop_front();
    size_t size = out.result.ByteSizeLong();
    unsent_bytes_ -= std::min(unsent_bytes_, size);
    bytes += size;
    if (out.op != nullptr && out.op->cancelled()) {
      // Cancelled before its answer left: the handler rolls back what the
      // answer handed out, and the op answers CANCELLED when its handler
      // has ended (StreamOpBase::Done), so after the rollback is applied.
      out.op->owe_cancelled_ = true;
      rolled_back.push_back(std::move(out));
      continue;
    }
    *message_.add_results() = std::move(out.result);
    if (out.awaiter != nullptr) in_flight_.push_back(std::move(out));
  }
  if (message_.results_size() == 0) {
    writing_ = false;  // every answer taken was a cancelled op's: nothing to write
  } else if (!shard().loop().StartIfQueueOpen(
                 [&] { stream.Write(message_, runtime::AsTag(&write_tag_)); })) {
    // The server is draining its queues (shutdown): nothing can be written.
    writing_ = false;
    broken_ = true;
    std::vector<Outgoing> unsent = std::move(in_flight_);
    in_flight_.clear();
    for (Outgoing& out : unsent) Settle(out, Delivery::kLost);
    DropOutbox();
  }
  for (Outgoing& out : rolled_back) Settle(out, Delivery::kLost);
  if (!writing_ && !outbox_.empty()) MaybeWrite();
}

void SessionStream::OnWritten(bool ok) {
  writing_ = false;
  if (!ok) broken_ = true;
  // Settling resumes handlers, which may answer more: take the list first.
  // busy_ keeps the call from finishing (and freeing this) meanwhile: an
  // operation that ends under Settle wakes the call's handler (Untrack),
  // which found the stream idle and freed it under this method (ASan,
  // heap-use-after-free, integration_memory under load).
  std::vector<Outgoing> written = std::move(in_flight_);
  in_flight_.clear();
  ++busy_;
  for (Outgoing& out : written) Settle(out, ok ? Delivery::kDelivered : Delivery::kUncertain);
  MaybeWrite();  // or, if the stream broke, settles what is left unwritten
  --busy_;
  wake.Notify();  // last: it may let the call finish and free this
}

// --- StreamOps ---

const google::protobuf::FieldDescriptor* StreamOps::CheckedField(
    const google::protobuf::Descriptor* of, int field,
    const google::protobuf::Descriptor* expected) {
  const auto* fd = of->FindFieldByNumber(field);
  if (fd == nullptr || fd->message_type() != expected || fd->containing_oneof() == nullptr) {
    std::fprintf(stderr, "baton: %s field %d is not a oneof field of type %s\n",
                 of->full_name().c_str(), field, expected->full_name().c_str());
    std::abort();
  }
  return fd;
}

bool StreamOps::Start(Env& env, SessionStream& stream, v1::Operation& op) const {
  auto it = starters_.find(static_cast<int>(op.op_case()));
  if (it == starters_.end()) return false;
  it->second(env, stream, op);
  return true;
}

std::vector<std::string> StreamOps::Missing() const {
  std::vector<std::string> missing;
  const auto* oneof = v1::Operation::descriptor()->FindOneofByName("op");
  for (int i = 0; i < oneof->field_count(); ++i) {
    const auto* fd = oneof->field(i);
    if (!starters_.contains(fd->number())) missing.push_back(std::string(fd->name()));
  }
  return missing;
}

// --- The handler ---

namespace {

// Opens or resumes the hello's session and attaches the stream to it, which
// keeps the session alive until DetachStream.
runtime::Task<absl::StatusOr<v1::StreamWelcome>> Attach(Env& env, SessionStream& call,
                                                        const v1::StreamHello& hello) {
  v1::StreamWelcome welcome;
  uint64_t id = hello.session_id();
  if (id == 0) {
    auto ttl = SessionTtl(env.limits, hello.has_ttl(), hello.ttl());
    if (!ttl.ok()) co_return ttl.status();
    if (auto s = ValidateLength(hello.label(), kMaxLabelBytes, "label"); !s.ok()) co_return s;
    const security::Principal* who = call.principal;
    apply::OpenSession open{*ttl, hello.label(), who != nullptr ? who->name : "",
                            security::RandomNonce(),
                            who != nullptr ? static_cast<uint64_t>(who->max_sessions) : 0};
    auto r = co_await call.Submit(env.SessionHome(who), open);
    if (!r.ok()) co_return r.status();
    id = r->session;
  } else {
    if (call.principal != nullptr) {
      if (auto s = co_await CheckSession(env, call.shard(), *call.principal, id); !s.ok())
        co_return s;
    }
    welcome.set_resumed(true);
  }
  apply::AttachStream attach{id};
  auto r = co_await call.Submit(env.cluster->ShardOfSession(id), attach);
  if (!r.ok()) {
    // A session this stream just opened is never left behind.
    if (!welcome.resumed()) call.Send(env.cluster->ShardOfSession(id), apply::CloseSession{id});
    co_return r.status();
  }
  const auto& info = *r;
  welcome.set_session_id(info.session);
  ToProto(info.ttl, welcome.mutable_ttl());
  co_return welcome;
}

// Starts the operations and cancellations of one request.
absl::Status Dispatch(Env& env, SessionStream& call, v1::StreamRequest& req) {
  if (req.has_hello()) {
    return absl::InvalidArgumentError("hello is allowed in the first message only");
  }
  for (v1::Operation& op : *req.mutable_ops()) {
    if (call.Tracks(op.id())) {
      call.AnswerError(
          op.id(), absl::InvalidArgumentError(absl::StrCat("operation id ", op.id(),
                                                           " is in use by a pending operation")));
      continue;
    }
    if (op.op_case() == v1::Operation::OP_NOT_SET) {
      call.AnswerError(op.id(),
                       absl::InvalidArgumentError(absl::StrCat(
                           "operation ", op.id(), " has no request (unknown to this server?)")));
      continue;
    }
    if (!env.stream_ops->Start(env, call, op)) {
      call.AnswerError(op.id(), absl::UnimplementedError(
                                    absl::StrCat("operation field ", static_cast<int>(op.op_case()),
                                                 " is not served on the stream")));
    }
  }
  for (uint64_t id : req.cancel()) call.CancelOp(id);
  return absl::OkStatus();
}

runtime::Task<void> Connect(Env& env, SessionStream& call) {
  env.streams[call.shard().index()].insert(&call.ctx);
  absl::Status end;
  bool attached = false;
  v1::StreamRequest req;
  bool ok = co_await runtime::CqOp([&](void* tag) { call.stream.Read(tag); });
  if (!ok) {
    end = absl::CancelledError("the stream ended before its hello");
  } else if (absl::Status decoded = call.stream.Decode(&req); !decoded.ok()) {
    end = decoded;
  } else if (!req.has_hello()) {
    end = absl::InvalidArgumentError(
        "the first message must carry hello: {session_id} to resume, or {ttl} for a new session");
  } else {
    auto welcome = co_await Attach(env, call, req.hello());
    if (!welcome.ok()) {
      end = welcome.status();
    } else {
      attached = true;
      call.set_session(welcome->session_id());
      v1::StreamResponse first;
      *first.mutable_welcome() = std::move(*welcome);
      ok = co_await runtime::CqOp([&](void* tag) { call.stream.Write(first, tag); });
      if (!ok) end = absl::CancelledError("the stream broke");
    }
  }
  if (attached && end.ok()) {
    req.clear_hello();
    end = Dispatch(env, call, req);
    while (end.ok()) {
      // A client that does not read its answers is not read from either.
      while (call.backlogged() && !call.done()) co_await call.wake;
      if (call.done()) break;
      ok = co_await runtime::CqOp([&](void* tag) { call.stream.Read(tag); });
      if (!ok) break;  // half-closed by the client, or broken
      end = call.stream.Decode(&req);
      if (end.ok()) end = Dispatch(env, call, req);
    }
    // No more requests. A client that half-closed still gets the answers of
    // what is pending; on an error or a broken stream, cancel it all.
    if (!end.ok()) call.CancelAll();
    while (call.live_ops() > 0 || !call.idle()) co_await call.wake;
    call.Send(env.cluster->ShardOfSession(call.session()), apply::DetachStream{call.session()});
  }
  env.streams[call.shard().index()].erase(&call.ctx);
  call.Finishing();
  grpc::Status status = ToGrpc(end);
  co_await runtime::CqOp([&](void* tag) { call.stream.Finish(status, tag); });
}

}  // namespace

void ListenSessionStream(Env& env, apply::Shard& shard, Services& svc, Listeners& out) {
  if (env.stream_ops != nullptr) {
    if (auto missing = env.stream_ops->Missing(); !missing.empty()) {
      std::fprintf(stderr, "baton: no handler for stream operation %s\n", missing[0].c_str());
      std::abort();
    }
  }
  auto* s = &svc.stream;
  const int method = s->BidiMethod("Connect", v1::StreamRequest::descriptor());
  auto path = std::make_shared<const std::string>(s->Path("Connect"));
  auto listener = std::make_unique<Listener<SessionStream>>(
      &env, &shard,
      [s, method, path](SessionStream& call, grpc::ServerCompletionQueue* cq, void* tag) {
        call.relay_path = path.get();
        s->RequestRawBidi(method, &call.ctx, call.stream.raw(), cq, tag);
      },
      &Connect);
  for (int i = 0; i < 4; ++i) listener->Post();
  out.push_back(std::move(listener));
}

}  // namespace baton::rpc
