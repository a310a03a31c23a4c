#include "baton/call.h"

#include <chrono>

#include "call_state.h"
#include "proto_time.h"

namespace baton {

void Call::Cancel() const {
  if (state_) state_->Cancel();
}

bool Call::done() const { return !state_ || state_->done(); }

void Call::Wait() const {
  if (state_) state_->Wait();
}

bool Call::WaitFor(absl::Duration timeout) const { return !state_ || state_->WaitFor(timeout); }

namespace internal {

std::shared_ptr<CallState> CallState::Create(const CancelToken& token) {
  std::shared_ptr<CallState> state(new CallState());
  std::weak_ptr<CallState> weak = state;
  // Registered after construction: the callback holds only a weak pointer, so
  // the token (which may outlive many calls) never keeps a call alive.
  auto registration = token.OnCancel([weak] {
    if (auto s = weak.lock()) s->Cancel();
  });
  std::lock_guard<std::mutex> lock(state->mu_);
  state->registration_ = std::move(registration);
  return state;
}

grpc::ClientContext* CallState::BeginAttempt(absl::Time deadline, bool wait_for_ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancel_requested_) return nullptr;
  stream_cancel_ = nullptr;
  context_ = std::make_unique<grpc::ClientContext>();
  if (deadline != absl::InfiniteFuture()) context_->set_deadline(ToChrono(deadline));
  context_->set_wait_for_ready(wait_for_ready);
  return context_.get();
}

void CallState::SetStreamCancel(std::function<void()> cancel) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_.reset();
    if (!cancel_requested_) {
      stream_cancel_ = std::move(cancel);
      return;
    }
  }
  cancel();  // requested while the operation was being queued
}

void CallState::Cancel() {
  std::function<void()> stream_cancel;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancel_requested_) return;
    cancel_requested_ = true;
    // TryCancel is safe at any time, also before the call starts (then the
    // call is cancelled as soon as it starts) and after it completed.
    if (context_) context_->TryCancel();
    stream_cancel = stream_cancel_;
  }
  // Outside mu_: cancelling an unsent operation completes it here.
  if (stream_cancel) stream_cancel();
}

bool CallState::cancel_requested() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cancel_requested_;
}

void CallState::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
    registration_ = CancelToken::Registration();
    stream_cancel_ = nullptr;
  }
  cv_.notify_all();
}

bool CallState::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void CallState::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
}

bool CallState::WaitFor(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) {
    Wait();
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return done_; });
}

}  // namespace internal
}  // namespace baton
