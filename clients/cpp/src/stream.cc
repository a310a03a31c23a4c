#include "baton/stream.h"

#include "read_stream.h"

namespace baton {

void Stream::Cancel() const {
  if (state_) state_->Cancel();
}

bool Stream::done() const { return !state_ || state_->done(); }

absl::Status Stream::Wait() const {
  if (!state_) return absl::OkStatus();
  return state_->Wait();
}

bool Stream::WaitFor(absl::Duration timeout) const { return !state_ || state_->WaitFor(timeout); }

namespace internal {

void StreamState::Attach(grpc::ClientContext* context) {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = context;
  if (cancel_requested_) context_->TryCancel();
}

void StreamState::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  cancel_requested_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void StreamState::Detach() {
  std::lock_guard<std::mutex> lock(mu_);
  context_ = nullptr;
}

void StreamState::Finish(absl::Status status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    context_ = nullptr;
    done_ = true;
    status_ = std::move(status);
  }
  cv_.notify_all();
}

bool StreamState::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

absl::Status StreamState::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return done_; });
  return status_;
}

bool StreamState::WaitFor(absl::Duration timeout) {
  if (timeout == absl::InfiniteDuration()) {
    (void)Wait();
    return true;
  }
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [this] { return done_; });
}

}  // namespace internal
}  // namespace baton
