// ReadStream: a server-streaming RPC read with gRPC's callback API
// (ClientReadReactor). Each message goes to `on_message`; the end, with its
// status, to `on_end`. The reactor deletes itself after OnDone.
//
// StreamState is what the public Stream handle shares with the reactor: the
// context to cancel (valid until the end) and the final status.
//
// Thread safety: StreamState's methods may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "baton/cancel_token.h"
#include "baton/status.h"
#include "baton/stream.h"
#include "callback_scope.h"
#include "core.h"

namespace baton::internal {

class StreamState {
 public:
  // Cancels the stream (now, or as soon as it starts).
  void Cancel();
  // Called by the reactor: the context of the call, before it starts.
  void Attach(grpc::ClientContext* context);
  // Called by the reactor before it deletes the context.
  void Detach();
  // Called by the reactor after on_end returned.
  void Finish(absl::Status status);
  bool done() const;
  absl::Status Wait();
  bool WaitFor(absl::Duration timeout);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  grpc::ClientContext* context_ = nullptr;
  bool cancel_requested_ = false;
  bool done_ = false;
  absl::Status status_;
};

template <typename Req, typename Resp>
class ReadStream final : public grpc::ClientReadReactor<Resp> {
 public:
  using OnMessage = std::function<void(Resp&)>;
  using OnEnd = std::function<void(absl::Status)>;

  // Starts the stream. `launch(core, context, request*, reactor*)` makes the
  // RPC. Returns the handle.
  template <typename LaunchFn>
  static Stream Start(std::shared_ptr<Core> core, Req request, LaunchFn launch,
                      OnMessage on_message, OnEnd on_end, const CancelToken& cancel) {
    auto* reactor = new ReadStream(std::move(core), std::move(request), std::move(on_message),
                                   std::move(on_end));
    std::shared_ptr<StreamState> state = reactor->state_;
    reactor->state_->Attach(&reactor->context_);
    std::weak_ptr<StreamState> weak = state;
    reactor->registration_ = cancel.OnCancel([weak] {
      if (auto s = weak.lock()) s->Cancel();
    });
    launch(*reactor->core_, &reactor->context_, &reactor->request_,
           static_cast<grpc::ClientReadReactor<Resp>*>(reactor));
    reactor->StartRead(&reactor->response_);
    reactor->StartCall();
    return Stream(state);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    CallbackScope scope;
    if (on_message_) on_message_(response_);
    response_.Clear();
    this->StartRead(&response_);
  }

  void OnDone(const grpc::Status& status) override {
    CallbackScope scope;
    absl::Status end = FromGrpcStatus(status);
    if (on_end_) on_end_(end);
    std::shared_ptr<StreamState> state = std::move(state_);
    state->Detach();  // the context dies with this reactor
    delete this;
    state->Finish(std::move(end));
  }

 private:
  ReadStream(std::shared_ptr<Core> core, Req request, OnMessage on_message, OnEnd on_end)
      : core_(std::move(core)),
        request_(std::move(request)),
        on_message_(std::move(on_message)),
        on_end_(std::move(on_end)),
        state_(std::make_shared<StreamState>()) {}

  std::shared_ptr<Core> core_;
  grpc::ClientContext context_;
  Req request_;
  Resp response_;
  OnMessage on_message_;
  OnEnd on_end_;
  std::shared_ptr<StreamState> state_;
  CancelToken::Registration registration_;
};

}  // namespace baton::internal
