// The session stream (baton.v1.Stream/Connect): one bidirectional gRPC call
// that carries any number of operations, each run by the same handler as its
// unary method (through the Op interface of call.h).
//
//   SessionStream   the gRPC call: reads requests, starts operations, and
//                   writes their answers, batching those ready together
//   StreamOpBase    one operation on it, whatever its types; an OpBase, so
//   StreamOp<Q, R>  it submits commands and is cancelled like a unary call
//   StreamOps       which handler runs each field of Operation.op
//
// A pending wait costs its StreamOp, its handler's coroutine frame and the
// shard's waiter record: no gRPC call is parked for it.
//
// Threading: a stream and all its operations live on the loop thread of the
// shard whose completion queue matched the call. StreamOps is filled while
// the server is built, before any loop runs, and is read-only afterwards.
#pragma once

#include <coroutine>
#include <deque>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "baton/v1/stream.grpc.pb.h"
#include "runtime/cq_tag.h"
#include "runtime/task.h"
#include "service/rpc/call.h"

namespace baton::rpc {

class SessionStream;

// One operation on a session stream. When its handler ends (Done: started
// by runtime::StartDetached, or at the end of DriveStreamOp) the stream
// forgets it and it is freed.
class StreamOpBase : public OpBase, public runtime::Completion {
 public:
  StreamOpBase(SessionStream& stream, uint64_t id);

  // The handler has ended: untracks and deletes this op.
  void Done() noexcept override;

  SessionStream& stream() { return stream_; }
  uint64_t id() const { return id_; }
  bool cancelled() const { return cancelled_; }
  bool Abandoned() const override { return cancelled_; }

  // Ends the operation early: a pending Submit ends (CANCELLED, or the grant
  // if it came first), and an OK answer not yet written is dropped: the
  // handler rolls back what it handed out and, once the rollback is applied
  // and the handler has ended, the op answers CANCELLED.
  void Cancel() {
    cancelled_ = true;
    CancelSubmit();
  }

 private:
  friend class SessionStream;
  SessionStream& stream_;
  const uint64_t id_;
  bool cancelled_ = false;
  // Its answer was dropped because it was cancelled first: it answers
  // CANCELLED when its handler ends, after the handler's rollback.
  bool owe_cancelled_ = false;
};

// The gRPC call of a session stream. Its handler (session_stream.cc) owns the
// read side; the write side is the small state machine below: one write in
// flight at a time, and everything answered meanwhile goes in the next one.
class SessionStream final : public CallBase {
 public:
  // Answers waiting to be written, in bytes, above which the stream stops
  // reading requests until the client reads its answers.
  static constexpr size_t kMaxUnsentBytes = 8 << 20;
  // Largest batch of answers in one message.
  static constexpr size_t kMaxBatchBytes = 1 << 20;

  explicit SessionStream(apply::Shard& shard) : CallBase(shard) {}

  RawBidiStream<v1::StreamRequest, v1::StreamResponse> stream{&ctx};
  // The method's path, for a follower's relay to the leader (forward.h).
  const std::string* relay_path = nullptr;

  // Ends a stream refused before its handler ran (Drive).
  runtime::Task<void> Refuse(absl::Status status) {
    Finishing();
    grpc::Status s = ToGrpc(status);
    co_await runtime::CqOp([&](void* tag) { stream.Finish(s, tag); });
  }

  // The session the stream acts for (0 before the welcome).
  uint64_t session() const { return session_; }
  void set_session(uint64_t id) { session_ = id; }

  // Awaits what became of an OK answer: written (delivered), handed to a
  // write that failed (uncertain: part or all of it may have gone out before
  // the stream broke), or never written (lost).
  class DeliveryAwaiter {
   public:
    bool await_ready() const noexcept { return done_; }
    void await_suspend(std::coroutine_handle<> h) noexcept { waiter_ = h; }
    Delivery await_resume() const noexcept { return delivery_; }

   private:
    friend class SessionStream;
    bool done_ = false;
    Delivery delivery_ = Delivery::kLost;
    std::coroutine_handle<> waiter_;
  };

  // Queues `op`'s OK answer. `awaiter` (which must outlive the wait, e.g. a
  // local of the awaiting coroutine) learns whether the answer was written;
  // it is not if `op` is cancelled first or the stream breaks, and then the
  // client is told CANCELLED instead.
  void Answer(StreamOpBase* op, v1::OperationResult result, DeliveryAwaiter* awaiter);
  // Queues an error answer to operation `id`.
  void AnswerError(uint64_t id, const absl::Status& status);

  // Operations still running, by id.
  bool Tracks(uint64_t id) const { return ops_.contains(id); }
  void Track(StreamOpBase* op) { ops_[op->id()] = op; }
  void Untrack(StreamOpBase* op);
  void CancelOp(uint64_t id);
  void CancelAll();
  size_t live_ops() const { return ops_.size(); }

  // Whether the stream may finish: no write in flight, and nothing left to
  // write unless nothing can be written any more.
  // Nor while one of this object's own methods is settling answers (busy_):
  // settling resumes handlers, whose end may resume the call's handler, which
  // must not finish (and free this) under that method.
  bool idle() const {
    return busy_ == 0 && !writing_ && !flush_deferred_ && (outbox_.empty() || broken_);
  }
  // Called before the handler finishes the call: nothing is written after.
  void Finishing() { finished_ = true; }
  bool backlogged() const { return unsent_bytes_ > kMaxUnsentBytes && !broken_; }
  // Whether a write failed: nothing more reaches the client.
  bool broken() const { return broken_; }

  // Resumes the handler after something it may wait for changed: an
  // operation finished, a write completed, the call ended.
  runtime::Wakeup wake;

 protected:
  void OnDone() override;

 private:
  struct Outgoing {
    v1::OperationResult result;
    StreamOpBase* op = nullptr;  // set for OK answers, whose writing is awaited
    DeliveryAwaiter* awaiter = nullptr;
  };
  struct WriteTag final : runtime::CqTag {
    explicit WriteTag(SessionStream* s) : stream(s) {}
    SessionStream* stream;
    void OnComplete(bool ok) override { stream->OnWritten(ok); }
  };

  void Enqueue(Outgoing out);
  void MaybeWrite();
  // Settles every queued answer as not delivered.
  void DropOutbox();
  void OnWritten(bool ok);
  static void Settle(Outgoing& out, Delivery delivery);

  uint64_t session_ = 0;
  absl::flat_hash_map<uint64_t, StreamOpBase*> ops_;
  std::deque<Outgoing> outbox_;
  std::vector<Outgoing> in_flight_;
  v1::StreamResponse message_;
  size_t unsent_bytes_ = 0;
  bool writing_ = false;
  bool flush_deferred_ = false;  // a MaybeWrite is deferred to the turn's end
  int busy_ = 0;                 // > 0 inside a method that settles answers (idle())
  bool broken_ = false;
  bool finished_ = false;
  WriteTag write_tag_{this};
};

// An operation with request `Req` and response `Resp`.
template <class Req, class Resp>
class StreamOp final : public StreamOpBase, public Op<Req, Resp> {
 public:
  // `result_field`: the field of OperationResult.result that carries Resp.
  StreamOp(SessionStream& stream, uint64_t id,
           const google::protobuf::FieldDescriptor* result_field)
      : StreamOpBase(stream, id),
        Op<Req, Resp>(static_cast<OpBase&>(*this)),
        field_(result_field) {}

  std::chrono::system_clock::time_point RpcDeadline() const override {
    return std::chrono::system_clock::time_point::max();
  }

  // A written answer is delivered; one that was not written (the op was
  // cancelled by id first, or the stream broke) is lost; one whose write
  // failed is uncertain. An answer written or sent just before the stream
  // broke is kept by the handlers that keep uncertain ones: the client
  // re-sends the operation with its request_id on the next stream and finds
  // it.
  runtime::Task<Delivery> Reply(Resp response) override {
    v1::OperationResult result;
    result.set_id(id());
    auto* slot = static_cast<Resp*>(result.GetReflection()->MutableMessage(&result, field_));
    *slot = std::move(response);
    SessionStream::DeliveryAwaiter delivered;
    stream().Answer(this, std::move(result), &delivered);
    Delivery delivery = co_await delivered;
    Stats()->Finished(
        delivery == Delivery::kDelivered ? absl::StatusCode::kOk : absl::StatusCode::kCancelled,
        -1);
    co_return delivery;
  }

  runtime::Task<void> Fail(absl::Status status) override {
    Stats()->Finished(status.code(), -1);
    stream().AnswerError(id(), status);
    co_return;
  }

 private:
  static CallStats* Stats() {
    static CallStats* stats = CallStats::For(Req::descriptor(), "stream");
    return stats;
  }

  const google::protobuf::FieldDescriptor* field_;
};

// Which handler runs each field of Operation.op.
class StreamOps {
 public:
  template <class Req, class Resp>
  using Handler = runtime::Task<void> (*)(Env&, Op<Req, Resp>&);

  // Makes `handler` run operations whose field number is `field`. The
  // request and result fields of that number must be Req and Resp: checked
  // here, and a mismatch aborts the server at startup. Registering a field
  // again is a no-op (every shard registers the same handlers).
  template <class Req, class Resp>
  void Register(int field, Handler<Req, Resp> handler);

  // Starts the operation in `op` (its oneof set) on `stream`. Returns false,
  // starting nothing, if no handler runs its field.
  bool Start(Env& env, SessionStream& stream, v1::Operation& op) const;

  // Names of Operation.op fields that have no handler.
  std::vector<std::string> Missing() const;

 private:
  using Starter = std::function<void(Env&, SessionStream&, v1::Operation&)>;
  static const google::protobuf::FieldDescriptor* CheckedField(
      const google::protobuf::Descriptor* of, int field,
      const google::protobuf::Descriptor* expected);
  absl::flat_hash_map<int, Starter> starters_;
};

// Runs one stream operation's handler, then forgets and frees it. Detached
// and eager: one coroutine frame less per pending operation than Spawn.
// `session`: the session the request names, whose owner is checked first
// (0: none, or the server checks no principals).
template <class Req, class Resp>
runtime::Detached DriveStreamOp(Env* env, StreamOp<Req, Resp>* op,
                                StreamOps::Handler<Req, Resp> handler, uint64_t session) {
  absl::Status allowed;
  security::InFlight in_flight;  // counts against the principal's limit until the end
  if (op->StreamOpBase::principal != nullptr) allowed = in_flight.Enter(op->stream().identity());
  if (allowed.ok() && session != 0) {
    allowed =
        co_await CheckSession(*env, op->stream().shard(), *op->StreamOpBase::principal, session);
  }
  if (allowed.ok()) {
    co_await handler(*env, *op);
  } else {
    co_await op->Fail(std::move(allowed));
  }
  op->Done();
}

template <class Req, class Resp>
void StreamOps::Register(int field, Handler<Req, Resp> handler) {
  if (starters_.contains(field)) return;
  const auto* request_field = CheckedField(v1::Operation::descriptor(), field, Req::descriptor());
  const auto* result_field =
      CheckedField(v1::OperationResult::descriptor(), field, Resp::descriptor());
  const auto* session_field = Req::descriptor()->FindFieldByName("session_id");
  if (session_field != nullptr &&
      session_field->type() != google::protobuf::FieldDescriptor::TYPE_UINT64) {
    session_field = nullptr;
  }
  starters_[field] = [=](Env& env, SessionStream& stream, v1::Operation& in) {
    auto* op = new StreamOp<Req, Resp>(stream, in.id(), result_field);
    auto* request = static_cast<Req*>(in.GetReflection()->MutableMessage(&in, request_field));
    op->request.Swap(request);
    if (session_field != nullptr) {
      const auto* r = op->request.GetReflection();
      if (r->GetUInt64(op->request, session_field) == 0) {
        r->SetUInt64(&op->request, session_field, stream.session());
      }
    }
    // The same checks as Drive's for a unary call (access.h).
    uint64_t session = 0;
    if (stream.principal != nullptr) {
      if (absl::Status s = AuthorizeNames(*stream.principal, op->request, &session); !s.ok()) {
        stream.AnswerError(in.id(), s);
        delete op;
        return;
      }
    }
    stream.Track(op);
    if (stream.principal == nullptr) {
      // Nothing to count or check first: the handler's frame is the only
      // one (DriveStreamOp's would cost 136 bytes per pending wait).
      runtime::StartDetached(handler(env, *op), op);
    } else {
      DriveStreamOp<Req, Resp>(&env, op, handler, session);
    }
  };
}

}  // namespace baton::rpc
