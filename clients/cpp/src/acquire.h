// Acquire with recovery: the one place where a grant that races with a
// cancel, or whose answer is lost, is found and given back. Used by lock and
// semaphore acquire, queue Get and task Take (requests with a request_id).
//
//  - An answer that grants something after cancellation was requested (it
//    crossed the cancel on the wire) is given back (`give_back`), and the
//    caller gets kCancelled.
//  - An attempt whose outcome is unknown (a unary call that ended CANCELLED
//    or UNAVAILABLE, an operation sent on a stream that broke and was not
//    re-sent because it was being cancelled) is asked again with the same
//    request_id and a zero timeout: a grant that stood comes back REPLAYED
//    (or, if the resource was free, a fresh grant); either is given back,
//    and the caller gets the original error.
// So no lock, permit, item or task is left stuck by a cancel.
//
// Also here: fire-and-forget operations (give-backs) and calls that block
// the caller, both on the client's transport.
//
// Thread safety: internal; as unary_op.h.
#pragma once

#include <functional>
#include <memory>

#include "absl/strings/str_cat.h"
#include "unary_op.h"

namespace baton::internal {

template <typename T, typename Resp>
struct Grant {
  // The caller's result for an answer.
  std::function<absl::StatusOr<T>(const Resp&)> accept;
  // Gives back what `answer` granted; runs `then` once that is done (or
  // failed: nothing more can be done about it).
  std::function<void(const Resp& answer, std::function<void()> then)> give_back;
  // Whether a unary attempt whose outcome is unknown is asked again. False
  // for Tasks/Take: batond itself gives back, by request_id, the task that a
  // cancelled unary Take had taken, possibly after such a retry, which would
  // only burn an attempt (as the Python and Node clients do).
  bool recover_on_unary = true;
};

// Runs `request` on the client's transport without a caller waiting; `then`
// gets its status.
template <typename Resp, typename Req, typename LaunchFn>
void StartDetached(std::shared_ptr<Core> core, Req request, LaunchFn launch, Route<Req, Resp> route,
                   std::function<void(absl::Status)> then) {
  (void)StartUnary<bool, Resp>(std::move(core), CallOptions{}, std::move(request),
                               std::move(launch), route,
                               Converting<bool, Resp>([](const Resp&) { return true; }),
                               Callback<bool>([then = std::move(then)](absl::StatusOr<bool> r) {
                                 if (then) then(r.status());
                               }));
}

// Runs `request` and waits for its answer. On a thread that runs stream
// callbacks (a completion callback, a guard dropped in one) it uses the
// synchronous unary stub `sync(stub-call)`, which does not depend on that
// thread; elsewhere the client's transport.
template <typename Resp, typename Req, typename LaunchFn, typename SyncFn>
absl::StatusOr<Resp> CallNow(const std::shared_ptr<Core>& core, const Req& request, LaunchFn launch,
                             Route<Req, Resp> route, SyncFn sync) {
  if (OnStreamCallbackThread() || StreamFor(*core, request) == nullptr) {
    grpc::ClientContext context;
    context.set_deadline(ToChrono(core->RpcDeadline()));
    Resp response;
    absl::Status status = FromGrpcStatus(sync(*core, &context, request, &response));
    if (!status.ok()) return status;
    return response;
  }
  return Block<Resp>([&](Callback<Resp> done) {
    return StartUnary<Resp, Resp>(core, CallOptions{}, request, launch, route,
                                  Converting<Resp, Resp>([](const Resp& r) { return r; }),
                                  std::move(done));
  });
}

// Asks again for what request `retry` (same request_id) may have been
// granted, with a zero timeout, gives back what comes back, then delivers
// `status`.
template <typename T, typename Resp, typename Req, typename LaunchFn>
void RecoverGrant(std::shared_ptr<Core> core, Req retry, LaunchFn launch, Route<Req, Resp> route,
                  std::shared_ptr<Grant<T, Resp>> grant, absl::Status status, Callback<T> deliver) {
  CallOptions call;
  call.wait_until = absl::Now();  // timeout 0
  // Safe (same request_id), and needed: batond keeps a grant whose answer
  // may have been read (Delivery::kUncertain), so this is what gives it
  // back. Tried for as long as the session could still hold it.
  call.retries = 1000;
  call.retry_until = absl::Now() + core->options().session_ttl + core->options().rpc_timeout;
  auto finish = [grant, status, deliver](absl::StatusOr<Resp> reply, Ending /*ending*/,
                                         Callback<bool> done) {
    if (!reply.ok()) {
      deliver(status);  // nothing of ours stands
      done(true);
      return;
    }
    bool replayed = false;
    if constexpr (requires { reply->outcome(); }) {
      replayed = reply->outcome() == v1::GRANT_OUTCOME_REPLAYED;
    }
    grant->give_back(*reply, [status, deliver, done, replayed] {
      deliver(replayed ? absl::Status(status.code(),
                                      absl::StrCat(status.message(),
                                                   "; what was granted with the lost answer was "
                                                   "recovered and given back"))
                       : status);
      done(true);
    });
  };
  (void)StartUnary<bool, Resp>(std::move(core), std::move(call), std::move(retry),
                               std::move(launch), route, std::move(finish), Callback<bool>());
}

// Starts an acquire-like wait with its recovery (see the top of this file).
// REQUIRES: `request` carries a request_id.
template <typename T, typename Resp, typename Req, typename LaunchFn>
Call StartAcquire(std::shared_ptr<Core> core, CallOptions call, Req request, LaunchFn launch,
                  Route<Req, Resp> route, Grant<T, Resp> grant_in, Callback<T> done) {
  auto grant = std::make_shared<Grant<T, Resp>>(std::move(grant_in));
  call.retries = 3;  // safe: same request_id
  auto finish = [core, retry = request, launch, route, grant](absl::StatusOr<Resp> reply,
                                                              Ending ending, Callback<T> deliver) {
    if (reply.ok()) {
      if (!ending.cancelled) {
        deliver(grant->accept(*reply));
        return;
      }
      // The grant crossed the cancel: give it back, then report the cancel.
      grant->give_back(*reply, [deliver] {
        deliver(
            absl::CancelledError("cancelled; what was granted at the same moment was given back"));
      });
      return;
    }
    bool unknown = ending.outcome_unknown ||
                   (ending.cancelled && reply.status().code() == absl::StatusCode::kUnavailable);
    if (!ending.on_stream && !grant->recover_on_unary) unknown = false;
    if (!unknown) {
      deliver(reply.status());
      return;
    }
    // A cancelled call reports the cancel, whatever ended its attempt.
    absl::Status status =
        ending.cancelled && reply.status().code() != absl::StatusCode::kCancelled
            ? absl::CancelledError(absl::StrCat("cancelled (", reply.status().message(), ")"))
            : reply.status();
    RecoverGrant<T, Resp>(core, retry, launch, route, grant, std::move(status), std::move(deliver));
  };
  return StartUnary<T, Resp>(std::move(core), std::move(call), std::move(request),
                             std::move(launch), route, std::move(finish), std::move(done));
}

}  // namespace baton::internal
