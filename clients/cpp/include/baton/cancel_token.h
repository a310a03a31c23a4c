// CancelToken: a request to stop waiting, made from any thread.
//
// A token is passed (by copy; copies share one state) to the blocking or
// asynchronous form of any call that can wait. Cancel() ends every call that
// carries the token: the client cancels the gRPC call
// (grpc::ClientContext::TryCancel), the server removes the wait atomically,
// and the call completes with CANCELLED. Each call documents what happens to a
// grant that raced with the cancel (for holdings: it is given back).
//
// Thread safety: every method may be called from any thread, concurrently.
#pragma once

#include <functional>
#include <memory>

namespace baton {

class CancelToken {
 public:
  // A fresh token, not cancelled.
  CancelToken();

  // Cancels every call that carries this token, now and in the future (a call
  // started with a cancelled token ends at once with CANCELLED). Idempotent.
  void Cancel() const;
  bool cancelled() const;

  // Ends a callback registration when destroyed. Move-only.
  class Registration {
   public:
    Registration() = default;
    Registration(Registration&& other) noexcept;
    Registration& operator=(Registration&& other) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration();

   private:
    friend class CancelToken;
    struct State;
    Registration(std::shared_ptr<State> state, uint64_t id) : state_(std::move(state)), id_(id) {}
    std::shared_ptr<State> state_;
    uint64_t id_ = 0;
  };

  // Runs `fn` once when the token is cancelled: on the thread that calls
  // Cancel(), or at once on this thread if the token already is cancelled.
  // `fn` may still run after the Registration is destroyed if Cancel() raced
  // with the destruction, so it must own (or weakly refer to) what it uses.
  [[nodiscard]] Registration OnCancel(std::function<void()> fn) const;

 private:
  std::shared_ptr<Registration::State> state_;
};

}  // namespace baton
