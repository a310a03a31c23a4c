// The RPC side of every call: how a matched gRPC call becomes a coroutine,
// submits commands to the owning shard, and finishes exactly once.
//
// Lifecycle of a call on shard A (the shard whose completion queue matched
// it; the resource may live on shard B):
//   1. Listener::Post allocates the call, arms the done notification
//      (AsyncNotifyWhenDone, before RequestX, as gRPC requires) and asks
//      for the next request.
//   2. On match the listener re-posts and spawns the handler coroutine.
//   3. The handler validates, then `co_await Submit(B, command)`. If the
//      client goes away while a submit is outstanding, the done tag sends
//      CancelWait to B: the wait ends with CANCELLED, or, if B granted
//      first, the grant is already on its way and arrives as the result.
//   4. The handler finishes the call. Reply() waits for both the Finish tag
//      and the done tag and reports what became of the response (Delivery):
//      lost (the call was dead before the Finish reached the wire: the
//      handler rolls the grant back, Undeliver), uncertain (it went to the
//      wire but the call ended cancelled: gRPC cannot say whether the client
//      read it) or delivered. Only "lost" is certain: a reply the client may
//      have read is kept unless the handler's client cannot recover it.
//   5. After the handler returns the driver waits for the done tag (never
//      free a call with a tag outstanding), then frees the call.
//
// Threading: a call lives entirely on its shard's loop thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <coroutine>
#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/cq_tag.h"
#include "runtime/task.h"
#include "service/apply/result_of.h"
#include "service/apply/shard.h"
#include "service/rpc/access.h"
#include "service/rpc/call_stats.h"
#include "service/rpc/env.h"
#include "service/rpc/forward.h"
#include "service/rpc/status.h"
#include "service/security/auth.h"

namespace baton::rpc {

class CallBase;

// Decodes `raw` into `request` (and frees the bytes). Bytes that are not a
// Req are INVALID_ARGUMENT, saying so.
template <class Req>
absl::Status DecodeRequest(grpc::ByteBuffer& raw, Req& request) {
  size_t bytes = raw.Length();
  if (grpc::SerializationTraits<Req>::Deserialize(&raw, &request).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "the request (", bytes, " bytes) does not decode as a ", Req::descriptor()->full_name()));
}

class ListenerBase {
 public:
  virtual ~ListenerBase() = default;
  virtual void OnMatch(CallBase* call, bool ok) = 0;
  // Asks gRPC for one more call of this method.
  virtual void Post() = 0;
};

// One operation in flight on a shard: submits commands to the shard that owns
// their resource and receives the results. A gRPC call is one (CallBase); so
// is each operation carried by a session stream (stream_op.h).
class OpBase : public apply::OpSink {
 public:
  explicit OpBase(apply::Shard& shard) : shard_(shard), op_(shard.Register(this)) {}
  OpBase(const OpBase&) = delete;
  OpBase& operator=(const OpBase&) = delete;
  virtual ~OpBase() { shard_.Unregister(op_); }

  apply::Shard& shard() { return shard_; }
  apply::OpRef op() const { return op_; }
  // Who asked (security/auth.h); null when the server checks no principals.
  const security::Principal* principal = nullptr;
  // The caller asked for serializable reads (forward.h, kReadHeader).
  bool serializable_reads = false;
  bool SerializableReads() const override { return serializable_reads; }
  Time Now() const { return shard_.loop().clock().Now(); }

  // `command` carrying this op's principal (apply::Command::principal): what
  // it creates is this principal's, and what it uses must be.
  apply::Command Signed(apply::Command command) const {
    if (principal != nullptr) {
      command.principal = principal->tag;
      command.admin = principal->admin;
      command.names_limit = static_cast<uint64_t>(principal->max_names);
    }
    return command;
  }

  // Whether whoever asked has gone away (the call was cancelled, the stream
  // op was cancelled or its stream ended). Checked when a Submit starts.
  virtual bool Abandoned() const = 0;

  // Sends `command` to shard `target` and resumes with its result: the
  // type apply::ResultOf<Cmd> when OK (result_of.h), else the status.
  //
  // Takes a named command (an lvalue, moved from): GCC 12 miscompiles
  // aggregate temporaries inside a co_await expression (a std::string in
  // them is copied bitwise and ends up pointing into the coroutine frame), so
  // Submit refuses temporaries at compile time. See runtime/COROUTINES.md.
  template <class Cmd>
  class SubmitAwaiter {
   public:
    SubmitAwaiter(OpBase* op, uint32_t target, Cmd* command)
        : op_(op), target_(target), command_(command) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      op_->submit_waiter_ = h;
      op_->submit_result_ = &result_;
      op_->submit_target_ = target_;
      op_->shard_.Send(target_, op_->Signed(apply::Command(std::move(*command_))), op_->op_);
      // The requester may have left before we even asked.
      if (op_->Abandoned()) op_->CancelSubmit();
    }
    absl::StatusOr<apply::ResultOf<Cmd>> await_resume() {
      return apply::TakeResult<Cmd>(std::move(result_));
    }

   private:
    OpBase* op_;
    uint32_t target_;
    Cmd* command_;  // the caller's named command, moved from
    apply::Result result_;
  };
  template <class Cmd>
  requires requires { typename apply::ResultOf<Cmd>; }
  SubmitAwaiter<Cmd> Submit(uint32_t target, Cmd& command) {
    return SubmitAwaiter<Cmd>(this, target, &command);
  }

  // As Submit, but the command is made by `build()` (absl::StatusOr<Cmd>)
  // only when the awaiter suspends, so it never takes room in the awaiting
  // coroutine's frame, which lives as long as the wait: what a pending
  // wait costs. A command that cannot be built is the result, as an error.
  template <class Cmd, class Build>
  class BuildAwaiter {
   public:
    BuildAwaiter(OpBase* op, uint32_t target, Build build)
        : op_(op), target_(target), build_(std::move(build)) {}
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      absl::StatusOr<Cmd> command = build_();
      if (!command.ok()) {
        result_ = apply::Result::Error(command.status());
        return false;  // resume at once, with the error
      }
      op_->submit_waiter_ = h;
      op_->submit_result_ = &result_;
      op_->submit_target_ = target_;
      op_->shard_.Send(target_, op_->Signed(apply::Command(*std::move(command))), op_->op_);
      if (op_->Abandoned()) op_->CancelSubmit();
      return true;
    }
    absl::StatusOr<apply::ResultOf<Cmd>> await_resume() {
      return apply::TakeResult<Cmd>(std::move(result_));
    }

   protected:
    apply::Result result_;

   private:
    OpBase* op_;
    uint32_t target_;
    Build build_;
  };
  template <class Cmd, class Build>
  requires requires { typename apply::ResultOf<Cmd>; }
  BuildAwaiter<Cmd, Build> SubmitBuilt(uint32_t target, Build build) {
    return BuildAwaiter<Cmd, Build>(this, target, std::move(build));
  }

  // As SubmitBuilt, but resumes with an rvalue reference to the awaiter's own
  // apply::Result, for a handler that hands it straight to the coroutine
  // that answers, taking it as `apply::Result&&`:
  //   co_await Answer(call, co_await call.SubmitBuiltRaw<Cmd>(target, build));
  // The awaiter lives until that full expression ends, so the reference
  // stays good while Answer runs; nothing else takes room in the waiting
  // frame (what a pending wait costs). Unpack it with apply::TakeResult<Cmd>.
  template <class Cmd, class Build>
  class RawBuildAwaiter : public BuildAwaiter<Cmd, Build> {
   public:
    using BuildAwaiter<Cmd, Build>::BuildAwaiter;
    apply::Result&& await_resume() { return std::move(this->result_); }
  };
  template <class Cmd, class Build>
  requires requires { typename apply::ResultOf<Cmd>; }
  RawBuildAwaiter<Cmd, Build> SubmitBuiltRaw(uint32_t target, Build build) {
    return RawBuildAwaiter<Cmd, Build>(this, target, std::move(build));
  }

  // Sends `command` to shard `target`; no result is expected.
  void Send(uint32_t target, apply::Command command) {
    shard_.Send(target, std::move(command), apply::OpRef{});
  }

 protected:
  // apply::OpSink: the result of the outstanding Submit.
  void Deliver(apply::Result result) override {
    if (!submit_waiter_) return;
    *submit_result_ = std::move(result);
    submit_result_ = nullptr;
    std::exchange(submit_waiter_, {}).resume();
  }
  // If a Submit is outstanding, asks its shard to end the wait: the result
  // then arrives as CANCELLED, or as the grant if the shard granted first.
  void CancelSubmit() {
    if (submit_waiter_) shard_.Send(submit_target_, apply::CancelWait{}, op_);
  }

 private:
  apply::Shard& shard_;
  const apply::OpRef op_;
  std::coroutine_handle<> submit_waiter_;
  apply::Result* submit_result_ = nullptr;
  uint32_t submit_target_ = 0;
};

// What became of an OK reply (Op::Reply).
enum class Delivery {
  // It never reached the wire: the call had ended first (deadline, cancel,
  // broken connection). Nobody has it: roll back what it handed out.
  kLost,
  // It was handed to gRPC, but the call ended cancelled or the send failed
  // (a cancel or deadline crossed it, or the connection broke after it):
  // the requester may or may not have read it. Clients that ask again with the same request_id
  // (lock,
  // semaphore, queue Get and Put) find it and give it back; rolling it back
  // here could take from a client what it holds, so those handlers keep it.
  kUncertain,
  kDelivered,
};

// What a handler of a unary method sees: the request, the shard, Submit, and
// one way to answer. Implemented by UnaryCall (a gRPC call) and by StreamOp
// (one operation on a session stream), so each method has one handler.
template <class Req, class Resp>
class Op {
 public:
  explicit Op(OpBase& base) : base_(base) {}
  virtual ~Op() = default;

  Req request;

  apply::Shard& shard() { return base_.shard(); }
  Time Now() const { return base_.Now(); }
  // Who asked; null when the server checks no principals.
  const security::Principal* principal() const { return base_.principal; }
  // The name sessions opened by this op belong to ("" without principals).
  std::string owner() const { return base_.principal ? base_.principal->name : std::string(); }
  template <class Cmd>
  requires requires { typename apply::ResultOf<Cmd>; }
  OpBase::SubmitAwaiter<Cmd> Submit(uint32_t target, Cmd& command) {
    return base_.Submit(target, command);
  }
  template <class Cmd, class Build>
  requires requires { typename apply::ResultOf<Cmd>; }
  OpBase::BuildAwaiter<Cmd, Build> SubmitBuilt(uint32_t target, Build build) {
    return base_.SubmitBuilt<Cmd>(target, std::move(build));
  }
  template <class Cmd, class Build>
  requires requires { typename apply::ResultOf<Cmd>; }
  OpBase::RawBuildAwaiter<Cmd, Build> SubmitBuiltRaw(uint32_t target, Build build) {
    return base_.SubmitBuiltRaw<Cmd>(target, std::move(build));
  }
  void Send(uint32_t target, apply::Command command) { base_.Send(target, std::move(command)); }
  // `command` carrying this op's principal (OpBase::Signed).
  apply::Command Signed(apply::Command command) const { return base_.Signed(std::move(command)); }

  // The requester's own deadline (the gRPC deadline), or max() for none.
  virtual std::chrono::system_clock::time_point RpcDeadline() const = 0;
  // Answers with OK and `response`. Returns what became of it (Delivery);
  // on kLost the handler rolls back what the response handed out.
  virtual runtime::Task<Delivery> Reply(Resp response) = 0;
  // Answers with an error.
  virtual runtime::Task<void> Fail(absl::Status status) = 0;

 private:
  OpBase& base_;
};

// A gRPC call: the server context and the done notification.
class CallBase : public OpBase {
 public:
  explicit CallBase(apply::Shard& shard) : OpBase(shard) {}

  grpc::ServerContext ctx;

  // Identifies the call's principal (and keeps the policy that names it
  // alive for the call's life).
  absl::Status Authenticate(const security::Authenticator& auth) {
    auto id = auth.Identify(ctx);
    if (!id.ok()) return id.status();
    identity_ = *std::move(id);
    principal = identity_.principal;
    return absl::OkStatus();
  }

  const security::Identity& identity() const { return identity_; }
  // Counts the call against its principal's waits limit while it lives.
  security::InFlight in_flight;
  // A call relayed to the leader (forward.h): cancelled with this one.
  ForwardSlot forward;

  // True once the done notification has arrived.
  bool done() const { return done_; }
  bool Abandoned() const override { return done_ && ctx.IsCancelled(); }

  // Resumes once the done notification has arrived.
  struct DoneAwaiter {
    CallBase* call;
    bool await_ready() const noexcept { return call->done_; }
    void await_suspend(std::coroutine_handle<> h) noexcept { call->done_waiter_ = h; }
    void await_resume() const noexcept {}
  };
  DoneAwaiter AwaitDone() { return DoneAwaiter{this}; }

  // For listeners.
  ListenerBase* listener = nullptr;
  // The call was matched (for its duration).
  void MarkStarted() { started_ = std::chrono::steady_clock::now(); }
  // Nanoseconds since MarkStarted.
  int64_t Elapsed() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                                started_)
        .count();
  }
  void* done_tag() { return runtime::AsTag(&done_tag_); }
  void* match_tag() { return runtime::AsTag(&match_tag_); }

 protected:
  // Called when the done notification arrives, after cancellation handling.
  virtual void OnDone() {}

 private:
  struct DoneTag final : runtime::CqTag {
    explicit DoneTag(CallBase* c) : call(c) {}
    CallBase* call;
    void OnComplete(bool) override {
      call->done_ = true;
      if (call->ctx.IsCancelled()) {
        call->CancelSubmit();
        call->forward.Cancel();
      }
      call->OnDone();
      if (call->done_waiter_) std::exchange(call->done_waiter_, {}).resume();
    }
  };
  struct MatchTag final : runtime::CqTag {
    explicit MatchTag(CallBase* c) : call(c) {}
    CallBase* call;
    void OnComplete(bool ok) override { call->listener->OnMatch(call, ok); }
  };

  security::Identity identity_;
  bool done_ = false;
  std::chrono::steady_clock::time_point started_;
  std::coroutine_handle<> done_waiter_;
  DoneTag done_tag_{this};
  MatchTag match_tag_{this};
};

// Whether `who` may use session `session` (access.h): the calling shard
// knows the owner of every session it has heard of; one it has not heard of
// yet (its SessionStarted still on the way, e.g. behind a log write) is
// asked of the session's home shard, which answered the open. NOT_FOUND for
// a session that is not alive.
//
// The question goes through an op of its own (SessionProbe), not the
// call's: a call may take its results itself (Consume and Watch override
// Deliver), and the answer must not land there.
class SessionProbe final : public OpBase {
 public:
  using OpBase::OpBase;
  bool Abandoned() const override { return false; }  // one quick read
};
inline runtime::Task<absl::Status> CheckSession(Env& env, apply::Shard& shard,
                                                const security::Principal& who, uint64_t session) {
  if (const std::string* owner = shard.state().SessionOwner(session); owner != nullptr) {
    co_return SessionAllowed(who, session, *owner);
  }
  SessionProbe probe(shard);
  apply::DescribeSession ask{session};
  auto info = co_await probe.Submit(env.cluster->ShardOfSession(session), ask);
  if (!info.ok()) co_return info.status();
  co_return SessionAllowed(who, session, info->owner);
}

// A unary call.
template <class Req, class Resp>
class UnaryCall final : public CallBase, public Op<Req, Resp> {
 public:
  explicit UnaryCall(apply::Shard& shard)
      : CallBase(shard), Op<Req, Resp>(static_cast<OpBase&>(*this)) {}

  using Op<Req, Resp>::request;
  // The request as received; Decode() turns it into `request`.
  grpc::ByteBuffer raw_request;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> writer{&ctx};
  // The method's path (/baton.v1.Locks/Acquire), held by its listener.
  const std::string* method_path = nullptr;

  // Decodes raw_request into request (and frees the bytes).
  absl::Status Decode() { return DecodeRequest(raw_request, request); }
  // Answers a request refused before its handler ran.
  runtime::Task<void> Refuse(absl::Status status) { return Fail(std::move(status)); }

  std::chrono::system_clock::time_point RpcDeadline() const override { return ctx.deadline(); }

  // Finishes with OK and `response`. Returns what became of it, decided once
  // both the Finish tag and the done tag are back (their order varies): lost
  // if the call was over (its done tag back, cancelled) before the Finish
  // was started, so nothing was sent; else uncertain if the call ended
  // cancelled or the Finish failed; else delivered. A failed Finish is not
  // proof that nothing went out: a cancel arriving just after the response
  // left (the client read it, then cancelled) fails it too.
  runtime::Task<Delivery> Reply(Resp response) override {
    grpc::ByteBuffer bytes;
    bool own = false;
    grpc::Status encoded = grpc::SerializationTraits<Resp>::Serialize(response, &bytes, &own);
    if (!encoded.ok()) {  // only a message over 2 GiB: not one of ours
      co_await Fail(absl::InternalError(
          absl::StrCat("cannot encode the response: ", encoded.error_message())));
      co_await AwaitDone();
      co_return Delivery::kLost;
    }
    // The done tag comes back before the Finish is started only for a call
    // that ended without it: cancelled, past its deadline, disconnected.
    const bool over_first = done();
    bool ok =
        co_await runtime::CqOp([&](void* tag) { writer.Finish(bytes, grpc::Status::OK, tag); });
    co_await AwaitDone();
    Delivery delivery = over_first                 ? Delivery::kLost
                        : !ok || ctx.IsCancelled() ? Delivery::kUncertain
                                                   : Delivery::kDelivered;
    Stats()->Finished(
        delivery == Delivery::kDelivered ? absl::StatusCode::kOk : absl::StatusCode::kCancelled,
        Elapsed());
    co_return delivery;
  }

  // Finishes with an error status.
  runtime::Task<void> Fail(absl::Status status) override {
    grpc::Status s = ToGrpc(status);
    Stats()->Finished(status.code(), Elapsed());
    co_await runtime::CqOp([&](void* tag) { writer.FinishWithError(s, tag); });
  }

 private:
  static CallStats* Stats() {
    static CallStats* stats = CallStats::For(Req::descriptor(), "unary");
    return stats;
  }
};

// A server-streaming call's writer: encodes each Resp itself and writes the
// bytes (its method is requested raw, see RawRequests).
template <class Resp>
class EncodingWriter {
 public:
  explicit EncodingWriter(grpc::ServerContext* ctx) : raw_(ctx) {}
  void Write(const Resp& message, void* tag) {
    grpc::ByteBuffer bytes;
    bool own = false;
    // Fails only for a message over 2 GiB; chunks and changes are small.
    (void)grpc::SerializationTraits<Resp>::Serialize(message, &bytes, &own);
    raw_.Write(bytes, tag);  // copies the bytes' slices: `bytes` may go
  }
  void Finish(const grpc::Status& status, void* tag) { raw_.Finish(status, tag); }
  grpc::ServerAsyncWriter<grpc::ByteBuffer>* raw() { return &raw_; }

 private:
  grpc::ServerAsyncWriter<grpc::ByteBuffer> raw_;
};

// A bidirectional stream whose messages Baton decodes and encodes itself
// (its method is requested raw, see RawRequests): a message that is not a
// Req is INVALID_ARGUMENT, where gRPC's typed stream would end the call as
// if the client had stopped sending.
template <class Req, class Resp>
class RawBidiStream {
 public:
  explicit RawBidiStream(grpc::ServerContext* ctx) : raw_(ctx) {}
  // Reads the next message's bytes; Decode() then makes it a Req.
  void Read(void* tag) { raw_.Read(&in_, tag); }
  absl::Status Decode(Req* out) {
    out->Clear();
    return DecodeRequest(in_, *out);
  }
  void Write(const Resp& message, void* tag) {
    grpc::ByteBuffer bytes;
    bool own = false;
    // Fails only for a message over 2 GiB; answers are batched far below.
    (void)grpc::SerializationTraits<Resp>::Serialize(message, &bytes, &own);
    raw_.Write(bytes, tag);  // takes references to the slices: `bytes` may go
  }
  void Finish(const grpc::Status& status, void* tag) { raw_.Finish(status, tag); }
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* raw() { return &raw_; }

 private:
  grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer> raw_;
  grpc::ByteBuffer in_;
};

// A server-streaming call: one request, taken as bytes and decoded by
// Decode(), and a stream of Resp.
template <class Req, class Resp>
class ServerStreamCall : public CallBase {
 public:
  using Request = Req;
  using CallBase::CallBase;

  grpc::ByteBuffer raw_request;
  Req request;
  EncodingWriter<Resp> writer{&ctx};

  absl::Status Decode() { return DecodeRequest(raw_request, request); }
  runtime::Task<void> Refuse(absl::Status status) {
    grpc::Status s = ToGrpc(status);
    co_await runtime::CqOp([&](void* tag) { writer.Finish(s, tag); });
  }
};

// Runs a handler for a matched call, then frees the call once no tag is
// outstanding. A cluster follower relays a unary call to the leader instead
// (forward.h). Before the handler: decodes the request (calls that take one
// as bytes), and, when the server checks principals, identifies the call's
// principal and checks the request against its permissions (access.h). A
// call refused there is answered by its Refuse() and never reaches its
// handler.
// `Arg` is what the handler takes: the call itself, or its Op interface.
template <class CallT, class Arg>
runtime::Task<void> Drive(Env* env, CallT* call, runtime::Task<void> (*handler)(Env&, Arg&)) {
  if constexpr (requires { call->relay_path; }) {
    if (env->forwarder != nullptr && call->relay_path != nullptr) {
      if (auto leader = env->forwarder->Target(*call->relay_path, call->ctx)) {
        apply::Shard& shard = call->CallBase::shard();
        // Cancelled at shutdown with the server's other long streams.
        env->streams[shard.index()].insert(&call->ctx);
        co_await RelayStream(call->ctx, call->forward, *call->relay_path, *call->stream.raw(),
                             shard.loop().cq(), std::move(leader), env->forwarder->node_tag());
        env->streams[shard.index()].erase(&call->ctx);
        co_await call->AwaitDone();
        delete call;
        shard.loop().RemoveInFlight();
        co_return;
      }
      if (env->forwarder->Electing()) {
        co_await call->Refuse(absl::UnavailableError(
            "this node is not the leader, and no leader is known now (an election is under "
            "way): retry shortly"));
        co_await call->AwaitDone();
        apply::Shard& shard = call->CallBase::shard();
        delete call;
        shard.loop().RemoveInFlight();
        co_return;
      }
    }
  }
  // A serializable read is this node's to answer, leader or not.
  absl::StatusOr<bool> serializable = false;
  if constexpr (requires { call->method_path; }) {
    serializable = SerializableReads(call->ctx);
    if (serializable.ok() && !*serializable && env->forwarder != nullptr &&
        call->method_path != nullptr) {
      if (auto leader = env->forwarder->Target(*call->method_path, call->ctx)) {
        co_await ForwardUnary(call->ctx, call->forward, *call->method_path, call->raw_request,
                              call->writer, call->CallBase::shard().loop().cq(), std::move(leader),
                              env->forwarder->node_tag());
        co_await call->AwaitDone();
        apply::Shard& shard = call->CallBase::shard();
        delete call;
        shard.loop().RemoveInFlight();
        co_return;
      }
    }
  }
  absl::Status admitted = serializable.status();
  call->serializable_reads = serializable.value_or(false);
  if constexpr (requires { call->Decode(); }) {
    if (admitted.ok()) admitted = call->Decode();
  }
  if (admitted.ok() && env->auth != nullptr) {
    admitted = call->Authenticate(*env->auth);
    if (admitted.ok()) admitted = call->in_flight.Enter(call->identity());
    if constexpr (requires { call->request.GetDescriptor(); }) {
      uint64_t session = 0;
      const security::Principal* who = call->CallBase::principal;
      if (admitted.ok()) admitted = AuthorizeNames(*who, call->request, &session);
      if (admitted.ok() && session != 0) {
        admitted = co_await CheckSession(*env, call->CallBase::shard(), *who, session);
      }
    }
  }
  if (!admitted.ok()) {
    co_await call->Refuse(std::move(admitted));
  } else {
    co_await handler(*env, *call);
  }
  co_await call->AwaitDone();
  apply::Shard& shard = call->CallBase::shard();
  delete call;
  shard.loop().RemoveInFlight();
}

// Keeps requests for one method posted on one shard's completion queue.
template <class CallT, class Arg = CallT>
class Listener final : public ListenerBase {
 public:
  using RequestFn = std::function<void(CallT&, grpc::ServerCompletionQueue*, void*)>;
  using Handler = runtime::Task<void> (*)(Env&, Arg&);

  Listener(Env* env, apply::Shard* shard, RequestFn request, Handler handler)
      : env_(env), shard_(shard), request_(std::move(request)), handler_(handler) {}

  void Post() override {
    auto* call = new CallT(*shard_);
    call->listener = this;
    call->ctx.AsyncNotifyWhenDone(call->done_tag());
    request_(*call, shard_->loop().cq(), call->match_tag());
  }

  void OnMatch(CallBase* base, bool ok) override {
    auto* call = static_cast<CallT*>(base);
    if (!ok) {  // the server is shutting down; no done tag will follow
      delete call;
      return;
    }
    call->MarkStarted();
    Post();
    shard_->loop().AddInFlight();
    runtime::Spawn(Drive<CallT, Arg>(env_, call, handler_));
  }

 private:
  Env* env_;
  apply::Shard* shard_;
  RequestFn request_;
  Handler handler_;
};

}  // namespace baton::rpc
