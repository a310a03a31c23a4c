// UnaryOp: one operation of the client, sent on the session stream (the
// default transport; see session_stream.h) or as a unary RPC through gRPC's
// callback API, with cancellation (CancelToken, Call::Cancel), deadlines, and
// optional retries of requests that are safe to repeat. Every Async* call of
// the client is one UnaryOp; every blocking call is an Async* call followed by
// Call::Wait (Block below).
//
// Routing: an operation goes on the stream when the client's transport is
// kStream and its request does not name session 0 (a lease-only holding:
// the stream would act for its own session instead). A wait whose request
// carries a request_id is re-sent by the stream after a break with what is
// left of its timeout.
//
// Lifecycle: StartUnary creates the op and launches the first attempt. gRPC
// calls OnDone on one of its threads; a retry re-launches after a backoff
// (grpc::Alarm). The op's `finish` step turns the reply into the result and
// passes it to `deliver` exactly once (possibly later, after a follow-up RPC,
// e.g. giving back a grant that raced with a cancel); `deliver` runs the
// user's callback, then marks the Call done.
//
// Thread safety: internal; each op is driven by one gRPC callback at a time.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <vector>

#include "baton/call.h"
#include "baton/cancel_token.h"
#include "baton/status.h"
#include "call_state.h"
#include "callback_scope.h"
#include "core.h"
#include "proto_time.h"
#include "session_stream.h"

namespace baton::internal {

// Where a request travels on the session stream: its field in Operation and
// the response's field in OperationResult. Make one with BATON_ROUTE(field).
template <typename Req, typename Resp>
struct Route {
  Req* (v1::Operation::*request)() = nullptr;
  const Resp& (v1::OperationResult::*response)() const = nullptr;
};

template <typename Req, typename Resp>
Route<Req, Resp> MakeRoute(Req* (v1::Operation::*request)(),
                           const Resp& (v1::OperationResult::*response)() const) {
  return Route<Req, Resp>{.request = request, .response = response};
}

#define BATON_ROUTE(field)                                               \
  ::baton::internal::MakeRoute(&::baton::v1::Operation::mutable_##field, \
                               &::baton::v1::OperationResult::field)

// How an operation ended, besides its reply, for `finish` steps that must
// undo a grant.
struct Ending {
  // Cancellation was requested (Cancel, CancelToken, or a deadline).
  bool cancelled = false;
  // The reply may have been lost: a grant may stand on the server unseen
  // (a unary call that ended CANCELLED or UNAVAILABLE, or a stream operation
  // sent on a stream that broke).
  bool outcome_unknown = false;
  // The last attempt went on the session stream (else unary).
  bool on_stream = false;
};

// The request's session, or nullopt if it names none.
template <typename Req>
std::optional<uint64_t> RequestSession(const Req& request) {
  if constexpr (requires { request.session_id(); }) {
    return request.session_id();
  } else {
    return std::nullopt;
  }
}

// Whether `request` may go on the session stream of `core`.
template <typename Req>
SessionStream* StreamFor(const Core& core, const Req& request) {
  SessionStream* stream = core.stream();
  // After Client::Close, calls of handles that outlive it go unary.
  if (stream == nullptr || stream->stopped()) return nullptr;
  std::optional<uint64_t> session = RequestSession(request);
  if (session.has_value() && *session == 0) return nullptr;  // lease-only: unary
  return stream;
}

// The status of a stream operation that did not answer OK.
absl::Status StreamStatus(const StreamOutcome& outcome);

struct CallOptions {
  CancelToken cancel{};
  // For calls that wait: when the wait ends. The request's `timeout` field is
  // set to the time left at each attempt (absent for an infinite wait).
  // nullopt: the call does not wait.
  std::optional<absl::Time> wait_until{};
  // Overrides the gRPC deadline, which otherwise is rpc_timeout from now for
  // calls that do not wait, and wait_until + rpc_timeout for calls that do.
  std::optional<absl::Time> grpc_deadline{};
  // Retries after UNAVAILABLE (connection lost): only for requests that are
  // safe to repeat (an Acquire with a request_id, a read).
  int retries = 0;
  // Retries go on until then (default: until the wait ends, wait_until, or
  // without a wait, as long as `retries` allows).
  std::optional<absl::Time> retry_until{};
};

template <typename T, typename Req, typename Resp, typename LaunchFn, typename FinishFn>
class UnaryOp : public std::enable_shared_from_this<UnaryOp<T, Req, Resp, LaunchFn, FinishFn>> {
 public:
  UnaryOp(std::shared_ptr<Core> core, CallOptions options, Req request, LaunchFn launch,
          Route<Req, Resp> route, FinishFn finish, Callback<T> done)
      : core_(std::move(core)),
        options_(std::move(options)),
        request_(std::move(request)),
        launch_(std::move(launch)),
        route_(route),
        finish_(std::move(finish)),
        done_(std::move(done)),
        state_(CallState::Create(options_.cancel)) {}

  const std::shared_ptr<CallState>& state() const { return state_; }

  void Attempt() {
    absl::Time deadline;
    if (options_.wait_until.has_value()) {
      SetTimeout(&request_, *options_.wait_until);
      deadline = core_->WaitDeadline(*options_.wait_until);
    } else {
      deadline = core_->RpcDeadline();
    }
    if (options_.grpc_deadline.has_value()) deadline = *options_.grpc_deadline;
    if (route_.request != nullptr) {
      if (SessionStream* stream = StreamFor(*core_, request_)) {
        AttemptOnStream(stream, deadline);
        return;
      }
    }
    grpc::ClientContext* context = state_->BeginAttempt(deadline);
    if (context == nullptr) {
      CancelledBeforeSent();
      return;
    }
    response_.Clear();
    auto self = this->shared_from_this();
    launch_(*core_, context, &request_, &response_,
            std::function<void(grpc::Status)>([self](grpc::Status status) mutable {
              CallbackScope scope;
              // Released in the scope, not when gRPC destroys this function.
              auto op = std::move(self);
              absl::Status s = FromGrpcStatus(status);
              absl::StatusCode code = s.code();
              op->OnDone(
                  std::move(s),
                  code == absl::StatusCode::kCancelled || code == absl::StatusCode::kUnavailable ||
                      code == absl::StatusCode::kUnknown || code == absl::StatusCode::kInternal,
                  /*on_stream=*/false);
            }));
  }

 private:
  // The call was cancelled before this attempt went out. If an earlier
  // attempt ended UNAVAILABLE (a retry was due), its outcome is unknown: the
  // finish step decides (an acquire recovers what it may have been granted).
  void CancelledBeforeSent() {
    if (retries_done_ > 0) {
      OnDone(absl::CancelledError("cancelled while retrying after the connection was lost"),
             /*outcome_unknown=*/true, /*on_stream=*/false);
      return;
    }
    Deliver(absl::CancelledError("cancelled before the call was sent"));
  }

  // Sets the request's `timeout` to what is left until `until` (none for an
  // infinite wait).
  static void SetTimeout(Req* request, absl::Time until) {
    if constexpr (requires(Req r) { r.mutable_timeout(); }) {
      if (until != absl::InfiniteFuture()) {
        *request->mutable_timeout() = ToProto(std::max(until - absl::Now(), absl::ZeroDuration()));
      }
    }
  }

  void AttemptOnStream(SessionStream* stream, absl::Time deadline) {
    if (state_->cancel_requested()) {
      CancelledBeforeSent();
      return;
    }
    v1::Operation op;
    *(op.*route_.request)() = request_;
    SessionStream::Resend resend;
    if constexpr (requires(Req r) { r.request_id(); }) {
      // A wait with a request_id goes again on the next stream with what is
      // left of its timeout: a grant whose answer was lost comes back
      // REPLAYED.
      if (!request_.request_id().empty() && options_.wait_until.has_value()) {
        resend = [route = route_, until = *options_.wait_until](v1::Operation* again) {
          SetTimeout((again->*route.request)(), until);
          return true;
        };
      }
    }
    auto self = this->shared_from_this();
    // Waits are bounded by the server (their timeout); only an explicit
    // gRPC deadline (Condition's) or a call that does not wait has one here.
    absl::Time stream_deadline =
        options_.wait_until.has_value() && !options_.grpc_deadline.has_value()
            ? absl::InfiniteFuture()
            : deadline;
    uint64_t id = stream->Submit(std::move(op), stream_deadline, std::move(resend),
                                 [self](StreamOutcome outcome) { self->OnStreamDone(outcome); });
    if (id != 0) state_->SetStreamCancel([stream, id] { stream->Cancel(id); });
  }

  void OnStreamDone(const StreamOutcome& outcome) {
    if (outcome.kind == StreamOutcome::Kind::kAnswered && outcome.result.code() == 0) {
      response_ = (outcome.result.*route_.response)();
      OnDone(absl::OkStatus(), false, /*on_stream=*/true);
      return;
    }
    OnDone(StreamStatus(outcome), outcome.kind == StreamOutcome::Kind::kBroken,
           /*on_stream=*/true);
  }

  void OnDone(absl::Status status, bool outcome_unknown, bool on_stream) {
    std::optional<absl::Time> retry_until =
        options_.retry_until.has_value() ? options_.retry_until : options_.wait_until;
    if (status.code() == absl::StatusCode::kUnavailable && retries_done_ < options_.retries &&
        !state_->cancel_requested() &&
        (!retry_until.has_value() || *retry_until == absl::InfiniteFuture() ||
         absl::Now() < *retry_until + backoff_)) {
      ++retries_done_;
      auto self = this->shared_from_this();
      alarms_.push_back(std::make_unique<grpc::Alarm>());
      // The alarm keeps its callback until the alarm is destroyed (with this
      // op): move the reference out when it fires, or the two would keep each
      // other alive.
      alarms_.back()->Set(ToChrono(absl::Now() + backoff_), [self](bool /*fired*/) mutable {
        CallbackScope scope;
        auto op = std::move(self);
        op->Attempt();
      });
      backoff_ = std::min(backoff_ * 3, absl::Seconds(2));
      return;
    }
    Ending ending{.cancelled = state_->cancel_requested(),
                  .outcome_unknown = !status.ok() && outcome_unknown,
                  .on_stream = on_stream};
    auto self = this->shared_from_this();
    Callback<T> deliver = [self](absl::StatusOr<T> result) { self->Deliver(std::move(result)); };
    if (status.ok()) {
      finish_(absl::StatusOr<Resp>(std::move(response_)), ending, std::move(deliver));
    } else {
      finish_(absl::StatusOr<Resp>(std::move(status)), ending, std::move(deliver));
    }
  }

  void Deliver(absl::StatusOr<T> result) {
    if (done_) done_(std::move(result));
    // Drop the callback (and what it captured) before waking waiters.
    done_ = nullptr;
    state_->Finish();
  }

  std::shared_ptr<Core> core_;
  CallOptions options_;
  Req request_;
  Resp response_;
  LaunchFn launch_;
  Route<Req, Resp> route_;
  FinishFn finish_;
  Callback<T> done_;
  std::shared_ptr<CallState> state_;
  int retries_done_ = 0;
  absl::Duration backoff_ = absl::Milliseconds(100);
  // One alarm per retry: an alarm must not be re-armed from its own callback.
  std::vector<std::unique_ptr<grpc::Alarm>> alarms_;
};

// Starts an operation. `launch(core, context, request*, response*, on_done)`
// makes the unary RPC; `route` says where it goes on the stream;
// `finish(StatusOr<Resp>, Ending, deliver)` produces the result.
template <typename T, typename Resp, typename Req, typename LaunchFn, typename FinishFn>
Call StartUnary(std::shared_ptr<Core> core, CallOptions options, Req request, LaunchFn launch,
                Route<Req, Resp> route, FinishFn finish, Callback<T> done) {
  auto op = std::make_shared<UnaryOp<T, Req, Resp, LaunchFn, FinishFn>>(
      std::move(core), std::move(options), std::move(request), std::move(launch), route,
      std::move(finish), std::move(done));
  Call call(op->state());
  op->Attempt();
  return call;
}

// A finish step that maps an OK reply with `convert(const Resp&) -> T`, and
// passes errors through. For operations whose reply holds nothing to give
// back: a reply that raced with a cancel is delivered as it is.
template <typename T, typename Resp, typename ConvertFn>
auto Converting(ConvertFn convert) {
  return [convert = std::move(convert)](absl::StatusOr<Resp> reply, Ending /*ending*/,
                                        Callback<T> deliver) {
    if (!reply.ok()) {
      deliver(reply.status());
      return;
    }
    deliver(absl::StatusOr<T>(convert(*reply)));
  };
}

// Runs an Async* form and waits for its result: the blocking form.
template <typename T, typename StartFn>
absl::StatusOr<T> Block(StartFn start) {
  std::optional<absl::StatusOr<T>> result;
  Call call = start(Callback<T>([&result](absl::StatusOr<T> r) { result.emplace(std::move(r)); }));
  call.Wait();
  return std::move(*result);
}

// A session for a call: the client's session if `use_session`, else 0.
inline absl::StatusOr<uint64_t> SessionIf(const Core& core, bool use_session) {
  if (!use_session) return uint64_t{0};
  return core.SessionForCall();
}

// Delivers `status` at once (a call that fails before it is sent).
template <typename T>
Call FailNow(absl::Status status, const Callback<T>& done) {
  auto state = CallState::Create(CancelToken());
  if (done) done(std::move(status));
  state->Finish();
  return Call(state);
}

}  // namespace baton::internal
