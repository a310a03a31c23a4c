// CallState: the shared state of one asynchronous operation: its current gRPC
// context (one per attempt), whether cancellation was requested, and whether
// the completion callback has run. Shared by the public Call handle, the
// operation in flight and the CancelToken registration.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <grpcpp/client_context.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "absl/time/time.h"
#include "baton/cancel_token.h"

namespace baton::internal {

class CallState : public std::enable_shared_from_this<CallState> {
 public:
  // A state whose cancellation also follows `token`.
  static std::shared_ptr<CallState> Create(const CancelToken& token);

  // Starts an attempt: returns a fresh context with the given deadline
  // (InfiniteFuture: none), or nullptr if cancellation was already requested.
  // REQUIRES: the previous attempt, if any, has completed.
  grpc::ClientContext* BeginAttempt(absl::Time deadline, bool wait_for_ready = false);

  // Starts an attempt on the session stream: from now on cancellation runs
  // `cancel` (which cancels the operation by id), at once if it was requested
  // already.
  void SetStreamCancel(std::function<void()> cancel);

  // Requests cancellation and cancels the current attempt (its context, or
  // its stream operation).
  void Cancel();
  bool cancel_requested() const;

  // Marks the operation done (its callback has returned) and wakes waiters.
  void Finish();
  bool done() const;
  void Wait();
  bool WaitFor(absl::Duration timeout);

 private:
  CallState() = default;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<grpc::ClientContext> context_;
  std::function<void()> stream_cancel_;
  bool cancel_requested_ = false;
  bool done_ = false;
  CancelToken::Registration registration_;
};

}  // namespace baton::internal
