#include "session_keeper.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "callback_scope.h"
#include "proto_time.h"

namespace baton::internal {

// One KeepAliveStream. The keeper thread owns it and deletes it only after
// OnDone, the last reaction, has reported to the keeper.
class SessionKeeper::Stream final
    : public grpc::ClientBidiReactor<v1::KeepAliveRequest, v1::KeepAliveResponse> {
 public:
  explicit Stream(SessionKeeper* keeper) : keeper_(keeper) {
    request_.set_session_id(keeper->session_id_);
  }

  // Opens the stream and sends the first keep-alive.
  void Start(v1::Sessions::Stub* stub) {
    // Wait for the connection rather than fail at once while it is down; the
    // keeper cancels a stream that stays unanswered.
    context_.set_wait_for_ready(true);
    stub->async()->KeepAliveStream(&context_, this);
    StartRead(&response_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = true;
    }
    StartWrite(&request_);
    StartCall();
  }

  // Sends a keep-alive, unless the previous one is still being written or
  // the stream has ended.
  void Ping() {
    std::lock_guard<std::mutex> lock(mu_);
    if (done_ || writing_) return;
    writing_ = true;
    StartWrite(&request_);
  }

  void Cancel() { context_.TryCancel(); }

  void OnWriteDone(bool /*ok*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the stream is ending; OnDone follows
    {
      std::lock_guard<std::mutex> lock(keeper_->mu_);
      if (response_.state() == v1::SESSION_STATE_ALIVE) {
        ++keeper_->answers_alive_;
      } else {
        keeper_->answer_not_found_ = true;
      }
    }
    keeper_->cv_.notify_all();
    StartRead(&response_);
  }

  void OnDone(const grpc::Status& /*status*/) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    SessionKeeper* keeper = keeper_;
    {
      std::lock_guard<std::mutex> lock(keeper->mu_);
      keeper->stream_done_ = true;
    }
    // From here on the keeper may delete this object: touch only `keeper`.
    keeper->cv_.notify_all();
  }

 private:
  SessionKeeper* const keeper_;
  grpc::ClientContext context_;
  v1::KeepAliveRequest request_;
  v1::KeepAliveResponse response_;
  std::mutex mu_;
  bool writing_ = false;
  bool done_ = false;
};

namespace {

absl::Duration PingInterval(absl::Duration ttl) {
  return std::clamp(ttl / 3, absl::Milliseconds(100), absl::Seconds(5));
}

}  // namespace

SessionKeeper::SessionKeeper(v1::Sessions::Stub* stub, uint64_t session_id, absl::Duration ttl,
                             OnLost on_lost)
    : stub_(stub),
      session_id_(session_id),
      ttl_(ttl),
      ping_interval_(PingInterval(ttl)),
      on_lost_(std::move(on_lost)) {
  thread_ = std::thread([this] { Run(); });
}

SessionKeeper::~SessionKeeper() { Stop(); }

void SessionKeeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

absl::Status SessionKeeper::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

int SessionKeeper::streams_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_opened_;
}

bool SessionKeeper::WaitUntil(absl::Time deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, ToChrono(deadline), [this] {
    return stopping_ || answers_alive_ > 0 || answer_not_found_ || stream_done_;
  });
  return !stopping_;
}

void SessionKeeper::Run() {
  CallbackScope scope;  // the whole thread: ~Core joins it
  // The session was opened (or last confirmed) just before the keeper started.
  absl::Time confirmed = absl::Now();
  // The contract's re-open backoff (clients/README.md): 100 ms, x1.6 per
  // failed attempt, +-20 % jitter, at most 2 s; reset once the server answers.
  absl::Duration backoff = absl::Milliseconds(100);
  std::mt19937_64 random(std::random_device{}());
  for (;;) {
    auto stream = std::make_unique<Stream>(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      answers_alive_ = 0;
      answer_not_found_ = false;
      stream_done_ = false;
      ++streams_opened_;
    }
    absl::Time opened = absl::Now();
    absl::Time last_ping = opened;
    stream->Start(stub_);

    bool stop = false;
    absl::Status lost;
    for (;;) {
      bool running = WaitUntil(std::min(last_ping + ping_interval_, confirmed + ttl_));
      absl::Time now = absl::Now();
      int alive = 0;
      bool not_found = false, done = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        alive = std::exchange(answers_alive_, 0);
        not_found = answer_not_found_;
        done = stream_done_;
      }
      if (!running) {
        stop = true;
        break;
      }
      if (not_found) {
        lost = absl::AbortedError(absl::StrCat(
            "session ", session_id_,
            " no longer exists on the server (it expired or was closed); everything it held "
            "was released"));
        break;
      }
      if (alive > 0) {
        confirmed = now;
        backoff = absl::Milliseconds(100);
      }
      if (done) break;  // reconnect below
      if (now - confirmed >= ttl_) {
        lost = absl::AbortedError(absl::StrCat(
            "session ", session_id_, " was not confirmed by the server for its whole TTL (",
            absl::FormatDuration(ttl_),
            "); the server may have expired it, so it is treated as lost"));
        break;
      }
      // A stream whose keep-alives stay unanswered is stuck (a dead
      // connection not yet noticed): drop it, and reconnect.
      if (now - std::max(confirmed, opened) > 2 * ping_interval_) {
        stream->Cancel();
        continue;
      }
      if (now - last_ping >= ping_interval_) {
        stream->Ping();
        last_ping = now;
      }
    }

    // Ending the stream lets the server count the TTL again: the grace
    // period in which the next stream (or nobody) claims the session.
    stream->Cancel();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stream_done_; });
    }
    stream.reset();
    {
      // What the old stream reported must not wake the backoff wait below.
      std::lock_guard<std::mutex> lock(mu_);
      answers_alive_ = 0;
      answer_not_found_ = false;
      stream_done_ = false;
    }
    if (stop) return;
    if (!lost.ok()) {
      DeclareLost(std::move(lost));
      return;
    }
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    if (!WaitUntil(std::min(absl::Now() + backoff * jitter(random), confirmed + ttl_))) return;
    if (absl::Now() - confirmed >= ttl_) {
      DeclareLost(absl::AbortedError(
          absl::StrCat("session ", session_id_,
                       " could not be kept alive: the server was unreachable for its "
                       "whole TTL (",
                       absl::FormatDuration(ttl_), ")")));
      return;
    }
    backoff = std::min(backoff * 1.6, absl::Seconds(2));
  }
}

void SessionKeeper::DeclareLost(absl::Status why) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_ = why;
  }
  // Best effort: if the server still has the session, end it, so that what
  // it holds is released as this client now assumes.
  grpc::ClientContext context;
  context.set_deadline(ToChrono(absl::Now() + absl::Seconds(1)));
  v1::CloseSessionRequest request;
  request.set_session_id(session_id_);
  v1::CloseSessionResponse response;
  (void)stub_->Close(&context, request, &response);
  if (on_lost_) on_lost_(session_id_, std::move(why));
}

}  // namespace baton::internal
