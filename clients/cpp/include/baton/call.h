// Call: the handle of one asynchronous operation (the Async* form of a call).
//
// Every blocking call of the client has an asynchronous form that starts the
// operation and returns at once; its result is passed to a completion
// callback, exactly once. The Call handle lets another thread cancel the
// operation or wait for it:
//
//   baton::Call call = lock.AsyncAcquire({}, [](absl::StatusOr<baton::LockGuard> held) {...});
//   call.Cancel();  // from any thread: the server drops the wait (CANCELLED)
//   call.Wait();    // returns once the callback has returned
//
// Dropping the handle does not cancel the operation: it runs to completion
// and its callback still runs. The callback runs on a gRPC thread (or at once
// on the calling thread if the call ends before it is sent, e.g. already
// cancelled); it must not block, and must not call blocking forms of this
// client (hand the result to your own thread or executor instead). See
// awaitable.h to co_await an operation.
//
// Thread safety: a Call may be copied and used from any thread.
#pragma once

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace baton {

// The completion callback of an asynchronous operation that yields a T.
template <typename T>
using Callback = std::function<void(absl::StatusOr<T>)>;

namespace internal {
class CallState;
}  // namespace internal

class Call {
 public:
  // An empty handle: done, nothing to cancel.
  Call() = default;
  explicit Call(std::shared_ptr<internal::CallState> state) : state_(std::move(state)) {}

  // Requests cancellation: the gRPC call is cancelled (TryCancel), the server
  // ends the wait, and the callback gets CANCELLED unless the operation had
  // already completed. Idempotent; any thread.
  void Cancel() const;
  // True once the completion callback has returned.
  bool done() const;
  // Blocks until the completion callback has returned.
  void Wait() const;
  // As Wait, for at most `timeout`; returns done().
  bool WaitFor(absl::Duration timeout) const;

 private:
  std::shared_ptr<internal::CallState> state_;
};

}  // namespace baton
