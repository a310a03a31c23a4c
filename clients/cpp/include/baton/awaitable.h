// Awaitable: co_await any Async* call of the client from a C++20 coroutine.
//
//   baton::CancelToken cancel;
//   absl::StatusOr<baton::LockGuard> held = co_await baton::Await<baton::LockGuard>(
//       [&](baton::Callback<baton::LockGuard> done) {
//         return lock.AsyncAcquire({.timeout = absl::Seconds(5), .cancel = cancel}, done);
//       });
//
// Works with any coroutine type: the awaiter needs nothing from the promise.
// The four things every awaitable documents:
//  - Result: the Async call's absl::StatusOr<T>, from await_resume.
//  - Cancellation: cancel the CancelToken given to the Async call (any
//    thread); the coroutine resumes with kCancelled (or the result, where the
//    call documents that a reply racing the cancel is delivered).
//  - Timeout: the call's own timeout option (kDeadlineExceeded).
//  - Shutdown: the server ending makes the call fail with kUnavailable; the
//    coroutine is always resumed, exactly once.
// Where it resumes: by default on the gRPC thread that completed the call
// (or inline, without suspending, if the call completed at once). Code after
// the co_await then runs on that thread: it must not block (no blocking forms
// of the client there). Pass `resume` to hop to your own executor instead,
// e.g. [&pool](std::coroutine_handle<> h) { pool.Post([h] { h.resume(); }); }.
//
// Thread safety: an Awaitable is awaited once, by one coroutine.
#pragma once

#include <atomic>
#include <coroutine>
#include <functional>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "baton/call.h"

namespace baton {

template <typename T>
class Awaitable {
 public:
  // Starts the operation with a completion callback; returns its Call.
  using Start = std::function<Call(Callback<T>)>;
  // Resumes the coroutine; null: resume inline on the completing thread.
  using Resume = std::function<void(std::coroutine_handle<>)>;

  explicit Awaitable(Start start, Resume resume = nullptr)
      : start_(std::move(start)), resume_(std::move(resume)) {}
  Awaitable(const Awaitable&) = delete;
  Awaitable& operator=(const Awaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  // Starts the call inside await_suspend, never before the coroutine is
  // suspended: the completion may come on another thread at any moment. The
  // state handshake decides who resumes: if the callback runs before
  // await_suspend is done with `this`, await_suspend resumes it through
  // `resume` if one was given (still on the executor asked for: a loaded
  // machine made this path real), else continues without suspending
  // (returns false); otherwise the callback resumes it.
  bool await_suspend(std::coroutine_handle<> handle) {
    handle_ = handle;
    start_([this](absl::StatusOr<T> result) {
      result_.emplace(std::move(result));
      if (state_.exchange(kCompleted, std::memory_order_acq_rel) == kSuspended) {
        if (resume_) {
          resume_(handle_);
        } else {
          handle_.resume();
        }
      }
    });
    // After this exchange, `this` may be destroyed at any moment (the
    // callback may resume and finish the coroutine): touch nothing.
    if (!resume_) return state_.exchange(kSuspended, std::memory_order_acq_rel) != kCompleted;
    Resume resume = resume_;  // a copy: resuming may destroy `this`
    if (state_.exchange(kSuspended, std::memory_order_acq_rel) != kCompleted) return true;
    resume(handle);  // completed first: still resume where asked
    return true;
  }

  absl::StatusOr<T> await_resume() { return std::move(*result_); }

 private:
  enum State { kStarting, kSuspended, kCompleted };

  Start start_;
  Resume resume_;
  std::coroutine_handle<> handle_;
  std::optional<absl::StatusOr<T>> result_;
  std::atomic<int> state_{kStarting};
};

// Awaits the operation `start(done)` starts: co_await baton::Await<T>(...).
template <typename T, typename StartFn>
Awaitable<T> Await(StartFn start, typename Awaitable<T>::Resume resume = nullptr) {
  return Awaitable<T>(typename Awaitable<T>::Start(std::move(start)), std::move(resume));
}

}  // namespace baton
