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
//      and the done tag and reports whether the client got the response
//      (finish ok and not cancelled); if not, the handler rolls the grant
//      back (Undeliver). Exactly one outcome, as the client observes it.
//   5. After the handler returns the driver waits for the done tag (never
//      free a call with a tag outstanding), then frees the call.
//
// Threading: a call lives entirely on its shard's loop thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <coroutine>
#include <functional>
#include <utility>

#include "runtime/cq_tag.h"
#include "runtime/task.h"
#include "service/apply/shard.h"
#include "service/rpc/env.h"
#include "service/rpc/status.h"

namespace baton::rpc {

class CallBase;

class ListenerBase {
 public:
  virtual ~ListenerBase() = default;
  virtual void OnMatch(CallBase* call, bool ok) = 0;
  // Asks gRPC for one more call of this method.
  virtual void Post() = 0;
};

class CallBase : public apply::OpSink {
 public:
  explicit CallBase(apply::Shard& shard) : shard_(shard), op_(shard.Register(this)) {}
  CallBase(const CallBase&) = delete;
  CallBase& operator=(const CallBase&) = delete;
  virtual ~CallBase() { shard_.Unregister(op_); }

  grpc::ServerContext ctx;

  apply::Shard& shard() { return shard_; }
  apply::OpRef op() const { return op_; }
  Time Now() const { return shard_.loop().clock().Now(); }
  // True once the done notification has arrived.
  bool done() const { return done_; }

  // Sends `command` to shard `target` and resumes with its Result.
  //
  // Takes a named command (an lvalue, moved from): GCC 12 miscompiles
  // aggregate temporaries inside a co_await expression (a std::string in
  // them is copied bitwise and ends up pointing into the coroutine frame), so
  // Submit refuses temporaries at compile time. See runtime/COROUTINES.md.
  class SubmitAwaiter {
   public:
    SubmitAwaiter(CallBase* call, uint32_t target, apply::Command command)
        : call_(call), target_(target), command_(std::move(command)) {}
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) {
      call_->submit_waiter_ = h;
      call_->submit_result_ = &result_;
      call_->submit_target_ = target_;
      call_->shard_.Send(target_, std::move(command_), call_->op_);
      // The client may have left before we even asked.
      if (call_->done_ && call_->ctx.IsCancelled()) call_->SendCancel();
    }
    apply::Result await_resume() { return std::move(result_); }

   private:
    CallBase* call_;
    uint32_t target_;
    apply::Command command_;
    apply::Result result_;
  };
  SubmitAwaiter Submit(uint32_t target, apply::Command& command) {
    return SubmitAwaiter(this, target, std::move(command));
  }

  // Sends `command` to shard `target`; no result is expected.
  void Send(uint32_t target, apply::Command command) {
    shard_.Send(target, std::move(command), apply::OpRef{});
  }

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
  void* done_tag() { return runtime::AsTag(&done_tag_); }
  void* match_tag() { return runtime::AsTag(&match_tag_); }

 protected:
  // apply::OpSink: the result of the outstanding Submit.
  void Deliver(apply::Result result) override {
    if (!submit_waiter_) return;
    *submit_result_ = std::move(result);
    submit_result_ = nullptr;
    std::exchange(submit_waiter_, {}).resume();
  }
  // Called when the done notification arrives, after cancellation handling.
  virtual void OnDone() {}

 private:
  void SendCancel() { shard_.Send(submit_target_, apply::CancelWait{}, op_); }

  struct DoneTag final : runtime::CqTag {
    explicit DoneTag(CallBase* c) : call(c) {}
    CallBase* call;
    void OnComplete(bool) override {
      call->done_ = true;
      if (call->submit_waiter_ && call->ctx.IsCancelled()) call->SendCancel();
      call->OnDone();
      if (call->done_waiter_) std::exchange(call->done_waiter_, {}).resume();
    }
  };
  struct MatchTag final : runtime::CqTag {
    explicit MatchTag(CallBase* c) : call(c) {}
    CallBase* call;
    void OnComplete(bool ok) override { call->listener->OnMatch(call, ok); }
  };

  apply::Shard& shard_;
  const apply::OpRef op_;
  bool done_ = false;
  std::coroutine_handle<> done_waiter_;
  std::coroutine_handle<> submit_waiter_;
  apply::Result* submit_result_ = nullptr;
  uint32_t submit_target_ = 0;
  DoneTag done_tag_{this};
  MatchTag match_tag_{this};
};

// A unary call.
template <class Req, class Resp>
class UnaryCall final : public CallBase {
 public:
  using CallBase::CallBase;

  Req request;
  grpc::ServerAsyncResponseWriter<Resp> writer{&ctx};

  // Finishes with OK and `response`. Returns whether the client received it:
  // the Finish went to the wire and the call was not cancelled, decided once
  // both the Finish tag and the done tag are back (their order varies).
  runtime::Task<bool> Reply(Resp response) {
    bool ok =
        co_await runtime::CqOp([&](void* tag) { writer.Finish(response, grpc::Status::OK, tag); });
    co_await AwaitDone();
    co_return ok && !ctx.IsCancelled();
  }

  // Finishes with an error status.
  runtime::Task<void> Fail(absl::Status status) {
    grpc::Status s = ToGrpc(status);
    co_await runtime::CqOp([&](void* tag) { writer.FinishWithError(s, tag); });
  }
};

// Runs a handler for a matched call, then frees the call once no tag is
// outstanding.
template <class CallT>
runtime::Task<void> Drive(Env* env, CallT* call, runtime::Task<void> (*handler)(Env&, CallT&)) {
  co_await handler(*env, *call);
  co_await call->AwaitDone();
  apply::Shard& shard = call->shard();
  delete call;
  shard.loop().RemoveInFlight();
}

// Keeps requests for one method posted on one shard's completion queue.
template <class CallT>
class Listener final : public ListenerBase {
 public:
  using RequestFn = std::function<void(CallT&, grpc::ServerCompletionQueue*, void*)>;
  using Handler = runtime::Task<void> (*)(Env&, CallT&);

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
    Post();
    shard_->loop().AddInFlight();
    runtime::Spawn(Drive<CallT>(env_, call, handler_));
  }

 private:
  Env* env_;
  apply::Shard* shard_;
  RequestFn request_;
  Handler handler_;
};

}  // namespace baton::rpc
