#include "baton/cancel_token.h"

#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace baton {

struct CancelToken::Registration::State {
  std::mutex mu;
  bool cancelled = false;
  uint64_t next_id = 1;
  std::map<uint64_t, std::function<void()>> callbacks;
};

CancelToken::CancelToken() : state_(std::make_shared<Registration::State>()) {}

void CancelToken::Cancel() const {
  std::map<uint64_t, std::function<void()>> callbacks;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->cancelled) return;
    state_->cancelled = true;
    callbacks.swap(state_->callbacks);
  }
  // Outside the mutex: a callback may start or cancel other calls.
  for (auto& [id, fn] : callbacks) fn();
}

bool CancelToken::cancelled() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->cancelled;
}

CancelToken::Registration CancelToken::OnCancel(std::function<void()> fn) const {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->cancelled) {
      uint64_t id = state_->next_id++;
      state_->callbacks.emplace(id, std::move(fn));
      return Registration(state_, id);
    }
  }
  fn();
  return Registration();
}

CancelToken::Registration::Registration(Registration&& other) noexcept
    : state_(std::move(other.state_)), id_(std::exchange(other.id_, 0)) {}

CancelToken::Registration& CancelToken::Registration::operator=(Registration&& other) noexcept {
  if (this != &other) {
    Registration old(std::move(*this));
    state_ = std::move(other.state_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

CancelToken::Registration::~Registration() {
  if (!state_) return;
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->callbacks.erase(id_);
}

}  // namespace baton
