#include "session_stream.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "baton/status.h"
#include "callback_scope.h"
#include "proto_time.h"

namespace baton::internal {

namespace {

thread_local bool t_in_stream_callback = false;

absl::Duration ProbeInterval(absl::Duration ttl) {
  return std::clamp(ttl / 3, absl::Milliseconds(100), absl::Seconds(5));
}

}  // namespace

bool OnStreamCallbackThread() { return t_in_stream_callback; }

// One Stream/Connect call. The SessionStream's thread creates it, and deletes
// it after OnDone. A hold keeps the call alive while other threads may still
// start writes (Flush); the thread removes it when it ends the stream.
class SessionStream::Reactor final
    : public grpc::ClientBidiReactor<v1::StreamRequest, v1::StreamResponse> {
 public:
  explicit Reactor(SessionStream* owner) : owner_(owner) {}

  void Start(v1::Stream::Stub* stub, v1::StreamRequest hello) {
    // Wait for the connection rather than fail at once (a new channel's
    // first connect may be reported failed for a moment: grpc/grpc#35064).
    context_.set_wait_for_ready(true);
    stub->async()->Connect(&context_, this);
    write_ = std::move(hello);
    AddHold();
    StartRead(&read_);
    StartWrite(&write_);
    StartCall();
  }

  // The message of the next write. REQUIRES: no write in flight.
  v1::StreamRequest* buffer() { return &write_; }
  void Write() { StartWrite(&write_); }
  void Cancel() { context_.TryCancel(); }
  void ReleaseHold() {
    if (!hold_released_) {
      hold_released_ = true;
      RemoveHold();
    }
  }

  void OnWriteDone(bool ok) override {
    CallbackScope scope;
    owner_->OnWriteDone(this, ok);
  }

  void OnReadDone(bool ok) override {
    CallbackScope scope;
    if (!ok) {
      owner_->OnReadFailed(this);
      return;
    }
    v1::StreamResponse response;
    response.Swap(&read_);
    StartRead(&read_);
    owner_->OnResponse(this, response);
  }

  void OnDone(const grpc::Status& status) override {
    CallbackScope scope;
    // The thread may delete this object once told: touch nothing after.
    owner_->OnStreamDone(this, status);
  }

 private:
  SessionStream* const owner_;
  grpc::ClientContext context_;
  v1::StreamRequest write_;
  v1::StreamResponse read_;
  bool hold_released_ = false;  // only the owner's thread touches it
};

SessionStream::SessionStream(std::shared_ptr<grpc::Channel> channel, Options options)
    : options_(std::move(options)), stub_(v1::Stream::NewStub(channel)) {}

SessionStream::~SessionStream() { Stop(); }

absl::Status SessionStream::Start(absl::Duration wait) {
  thread_ = std::thread([this] { Run(); });
  {
    std::unique_lock<std::mutex> lock(mu_);
    bool ready = cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                              [this] { return started_ || !start_status_.ok(); });
    if (ready && started_) return absl::OkStatus();
    if (ready) {
      absl::Status status = start_status_;
      lock.unlock();
      Stop();
      return status;
    }
  }
  Stop();
  return absl::DeadlineExceededError(
      absl::StrCat("the server did not welcome the session within ", absl::FormatDuration(wait)));
}

uint64_t SessionStream::Submit(v1::Operation op, absl::Time deadline, Resend resend, Done done) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      id = 0;
    } else {
      id = next_id_++;
      op.set_id(id);
      Pending& pending = ops_[id];
      pending.op = std::move(op);
      pending.done = std::move(done);
      pending.resend = std::move(resend);
      pending.deadline = deadline;
      outbox_.push_back(id);
    }
  }
  if (id == 0) {
    done(StreamOutcome{.kind = StreamOutcome::Kind::kFailed,
                       .result = {},
                       .status = absl::FailedPreconditionError("the client is closed")});
    return 0;
  }
  if (deadline != absl::InfiniteFuture()) cv_.notify_all();  // the thread watches deadlines
  Flush();
  return id;
}

void SessionStream::Cancel(uint64_t id) {
  std::vector<Completion> done;
  bool flush = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ops_.find(id);
    if (it == ops_.end()) return;
    Pending& pending = it->second;
    if (pending.cancel_requested) return;
    pending.cancel_requested = true;
    if (pending.sent_on == 0) {
      outbox_.erase(std::remove(outbox_.begin(), outbox_.end(), id), outbox_.end());
      // Waiting to be sent again after a break: the stream that broke may
      // have carried its answer (a grant the server counts as given), so
      // its outcome is unknown, not "nothing happened".
      done.emplace_back(
          std::move(pending.done),
          pending.sent_before
              ? StreamOutcome{.kind = StreamOutcome::Kind::kBroken,
                              .result = {},
                              .status = absl::CancelledError(
                                  "cancelled while waiting to be sent again after the session "
                                  "stream broke; it may have taken effect before the break")}
              : StreamOutcome{.kind = StreamOutcome::Kind::kUnsent, .result = {}, .status = {}});
      ops_.erase(it);
    } else if (pending.sent_on == generation_) {
      cancels_.push_back(id);
      flush = true;
    }
  }
  if (flush) Flush();
  RunCompletions(std::move(done));
}

uint64_t SessionStream::session_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return session_id_;
}

uint64_t SessionStream::WaitForSession(absl::Duration wait) const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
               [this] { return session_id_ != 0 || stopping_; });
  return stopping_ ? 0 : session_id_;
}

int SessionStream::streams_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_opened_;
}

int SessionStream::messages_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_sent_;
}

int SessionStream::sessions_lost() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sessions_lost_;
}

bool SessionStream::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void SessionStream::BreakStream() {
  std::unique_lock<std::mutex> lock(mu_);
  if (reactor_ == nullptr || stream_ending_) return;
  reactor_->Cancel();
  uint64_t generation = generation_;
  cv_.wait(lock, [&] { return reactor_ == nullptr || generation_ != generation || stopping_; });
}

void SessionStream::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

bool SessionStream::TakeBatch(v1::StreamRequest* out) {
  if (!welcomed_ || stream_ending_ || (outbox_.empty() && cancels_.empty())) return false;
  out->Clear();
  for (uint64_t id : outbox_) {
    auto it = ops_.find(id);
    if (it == ops_.end()) continue;
    *out->add_ops() = it->second.op;
    it->second.sent_on = generation_;
    it->second.sent_before = true;
  }
  for (uint64_t id : cancels_) out->add_cancel(id);
  outbox_.clear();
  cancels_.clear();
  bool any = out->ops_size() > 0 || out->cancel_size() > 0;
  if (any) ++messages_sent_;
  return any;
}

void SessionStream::Flush() {
  Reactor* reactor = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || reactor_ == nullptr || !TakeBatch(reactor_->buffer())) return;
    writing_ = true;
    reactor = reactor_;
    ++starting_writes_;
  }
  reactor->Write();  // not under mu_: a reaction may run inline
  {
    std::lock_guard<std::mutex> lock(mu_);
    --starting_writes_;
  }
  cv_.notify_all();
}

void SessionStream::OnWriteDone(Reactor* reactor, bool ok) {
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    more = ok && TakeBatch(reactor->buffer());
    writing_ = more;
  }
  if (!ok) {
    reactor->Cancel();  // the read fails next; the thread re-opens
    return;
  }
  if (more) reactor->Write();  // from a reaction: the call is alive
}

void SessionStream::OnReadFailed(Reactor* /*reactor*/) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    read_failed_ = true;
  }
  cv_.notify_all();
}

void SessionStream::OnResponse(Reactor* /*reactor*/, const v1::StreamResponse& response) {
  std::vector<Completion> done;
  bool welcome = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_heard_ = absl::Now();
    if (response.has_welcome()) {
      welcome = true;
      welcomed_ = true;
      started_ = true;
      session_id_ = response.welcome().session_id();
    }
    for (const v1::OperationResult& result : response.results()) {
      auto it = ops_.find(result.id());
      if (it == ops_.end()) continue;
      StreamOutcome outcome{.kind = StreamOutcome::Kind::kAnswered, .result = result, .status = {}};
      if (it->second.timed_out && result.code() == grpc::StatusCode::CANCELLED) {
        outcome.kind = StreamOutcome::Kind::kFailed;
        outcome.status = absl::DeadlineExceededError("no answer from the server in time");
      }
      done.emplace_back(std::move(it->second.done), std::move(outcome));
      ops_.erase(it);
    }
  }
  if (welcome) {
    cv_.notify_all();
    Flush();
  }
  RunCompletions(std::move(done));
}

void SessionStream::OnStreamDone(Reactor* /*reactor*/, const grpc::Status& status) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stream_done_ = true;
    stream_status_ = status;
  }
  cv_.notify_all();
}

void SessionStream::FailAllLocked(const absl::Status& status, std::vector<Completion>* out) {
  for (auto& [id, pending] : ops_) {
    out->emplace_back(
        std::move(pending.done),
        StreamOutcome{.kind = StreamOutcome::Kind::kFailed, .result = {}, .status = status});
  }
  ops_.clear();
  outbox_.clear();
  cancels_.clear();
}

void SessionStream::RunCompletions(std::vector<Completion> completions) {
  bool was = t_in_stream_callback;
  t_in_stream_callback = true;
  for (auto& [done, outcome] : completions) {
    if (done) done(std::move(outcome));
  }
  t_in_stream_callback = was;
}

void SessionStream::Probe() {
  v1::Operation op;
  uint64_t session;
  {
    std::lock_guard<std::mutex> lock(mu_);
    session = session_id_;
  }
  op.mutable_describe_session()->set_session_id(session);
  Submit(std::move(op), absl::Now() + options_.rpc_timeout, nullptr,
         [this, session](StreamOutcome outcome) {
           if (outcome.kind != StreamOutcome::Kind::kAnswered ||
               outcome.result.code() != grpc::StatusCode::NOT_FOUND) {
             return;
           }
           {
             std::lock_guard<std::mutex> lock(mu_);
             if (session_id_ != session) return;
             probe_lost_ = true;
           }
           cv_.notify_all();
         });
}

void SessionStream::Run() {
  CallbackScope scope;  // the whole thread: ~Core joins it
  const absl::Duration probe_interval = ProbeInterval(options_.ttl);
  absl::Duration backoff = absl::Milliseconds(100);
  std::mt19937_64 random(std::random_device{}());
  // First streams that gRPC ended CANCELLED although nobody cancelled them.
  int unexplained_cancels = 0;
  for (;;) {
    auto reactor = std::make_unique<Reactor>(this);
    v1::StreamRequest hello;
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      generation = ++generation_;
      ++streams_opened_;
      welcomed_ = false;
      writing_ = true;  // the hello
      read_failed_ = false;
      stream_done_ = false;
      stream_ending_ = false;
      probe_lost_ = false;
      if (session_id_ != 0) {
        hello.mutable_hello()->set_session_id(session_id_);
      } else {
        *hello.mutable_hello()->mutable_ttl() = ToProto(options_.ttl);
        hello.mutable_hello()->set_label(options_.label);
      }
      reactor_ = reactor.get();
    }
    reactor->Start(stub_.get(), std::move(hello));

    absl::Status lost;
    absl::Time next_probe = absl::Now() + probe_interval;
    {
      std::unique_lock<std::mutex> lock(mu_);
      for (;;) {
        absl::Time wake = next_probe;
        for (const auto& [id, pending] : ops_) {
          if (!pending.timed_out) wake = std::min(wake, pending.deadline);
        }
        if (session_id_ != 0 && last_heard_ != absl::InfinitePast()) {
          wake = std::min(wake, last_heard_ + options_.ttl);
        }
        cv_.wait_until(lock, ToChrono(wake),
                       [&] { return stopping_ || read_failed_ || stream_done_ || probe_lost_; });
        if (stopping_ || read_failed_ || stream_done_) break;
        absl::Time now = absl::Now();
        if (probe_lost_) {
          lost = absl::AbortedError(absl::StrCat(
              "session ", session_id_,
              " no longer exists on the server (it expired or was closed); everything it held "
              "was released"));
          break;
        }
        // Not heard for a whole TTL (also while trying to resume): the
        // server may have expired the session.
        if (session_id_ != 0 && last_heard_ != absl::InfinitePast() &&
            now - last_heard_ >= options_.ttl) {
          lost = absl::AbortedError(absl::StrCat(
              "session ", session_id_, " was not confirmed by the server for its whole TTL (",
              absl::FormatDuration(options_.ttl),
              "); the server may have expired it, so it is treated as lost"));
          break;
        }
        // A stream unanswered for two probes is stuck (a dead connection
        // not yet noticed): drop it and re-open.
        if (welcomed_ && now - last_heard_ > 2 * probe_interval + absl::Seconds(1)) break;
        std::vector<Completion> expired;
        bool flush = false;
        for (auto it = ops_.begin(); it != ops_.end();) {
          Pending& pending = it->second;
          if (pending.timed_out || pending.deadline > now) {
            ++it;
            continue;
          }
          pending.timed_out = true;
          if (pending.sent_on == 0) {
            outbox_.erase(std::remove(outbox_.begin(), outbox_.end(), it->first), outbox_.end());
            expired.emplace_back(
                std::move(pending.done),
                StreamOutcome{
                    // As in Cancel: sent before the break, it may have
                    // taken effect.
                    .kind = pending.sent_before ? StreamOutcome::Kind::kBroken
                                                : StreamOutcome::Kind::kFailed,
                    .result = {},
                    .status = absl::DeadlineExceededError(
                        pending.sent_before
                            ? "not sent again in time after the session stream broke; it may "
                              "have taken effect before the break"
                            : "not sent in time: the session stream is not connected")});
            it = ops_.erase(it);
            continue;
          }
          cancels_.push_back(it->first);
          flush = true;
          ++it;
        }
        bool probe = welcomed_ && now >= next_probe;
        if (probe) next_probe = now + probe_interval;
        lock.unlock();
        RunCompletions(std::move(expired));
        if (flush) Flush();
        if (probe) Probe();
        lock.lock();
      }
      // End the stream: no write may start from outside a reaction after
      // the hold is gone.
      stream_ending_ = true;
      cv_.wait(lock, [this] { return starting_writes_ == 0; });
    }
    reactor->Cancel();
    reactor->ReleaseHold();
    grpc::Status status;
    bool welcomed;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stream_done_; });
      status = stream_status_;
      welcomed = welcomed_;
      reactor_ = nullptr;
      welcomed_ = false;
      writing_ = false;
    }
    reactor.reset();

    std::vector<Completion> done;
    uint64_t lost_session = 0;
    bool give_up = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      absl::Time now = absl::Now();
      if (stopping_) {
        FailAllLocked(absl::FailedPreconditionError("the client was closed during the call"),
                      &done);
        give_up = true;
      } else if (!started_) {
        // The first stream: a refusal (bad TTL, unauthenticated...) is
        // Start's answer; a connection not made yet is tried again. When
        // the server refuses at the headers, the hello's write can lose the
        // race with its status and gRPC then reports CANCELLED (the failed
        // write) instead of the refusal: ask again to learn the real one.
        bool write_lost_the_race =
            status.error_code() == grpc::StatusCode::CANCELLED && ++unexplained_cancels <= 3;
        if (status.error_code() != grpc::StatusCode::UNAVAILABLE && !write_lost_the_race) {
          start_status_ = FromGrpcStatus(status);
          if (start_status_.ok()) start_status_ = absl::UnavailableError("the stream ended");
          give_up = true;
        }
      } else {
        if (lost.ok() && !welcomed && session_id_ != 0 &&
            status.error_code() == grpc::StatusCode::NOT_FOUND) {
          lost = absl::AbortedError(absl::StrCat(
              "session ", session_id_,
              " no longer exists on the server (it expired or was closed); everything it held "
              "was released"));
        }
        if (lost.ok() && session_id_ != 0 && now - last_heard_ >= options_.ttl) {
          lost = absl::AbortedError(
              absl::StrCat("session ", session_id_, " could not be resumed within its TTL (",
                           absl::FormatDuration(options_.ttl), "): it is treated as lost"));
        }
        // What was sent on the broken stream: waits with a request_id go
        // again (first, in their order); the rest end with an unknown outcome.
        std::vector<uint64_t> again;
        for (auto it = ops_.begin(); it != ops_.end();) {
          Pending& pending = it->second;
          if (pending.sent_on != generation) {
            ++it;
            continue;
          }
          if (lost.ok() && pending.resend && !pending.cancel_requested && !pending.timed_out &&
              pending.resend(&pending.op)) {
            pending.sent_on = 0;
            again.push_back(it->first);
            ++it;
            continue;
          }
          done.emplace_back(std::move(pending.done),
                            StreamOutcome{.kind = StreamOutcome::Kind::kBroken,
                                          .result = {},
                                          .status = absl::UnavailableError(
                                              "the session stream broke during the call; it "
                                              "may or may not have taken effect")});
          it = ops_.erase(it);
        }
        outbox_.insert(outbox_.begin(), again.begin(), again.end());
        cancels_.clear();
        if (!lost.ok()) {
          lost_session = session_id_;
          session_id_ = 0;
          last_heard_ = absl::InfinitePast();
          ++sessions_lost_;
          FailAllLocked(lost, &done);
        }
      }
    }
    cv_.notify_all();
    RunCompletions(std::move(done));
    if (lost_session != 0 && options_.on_lost) {
      // As for completions: a call that would wait for the stream must not
      // wait on this thread, which runs it.
      bool was = t_in_stream_callback;
      t_in_stream_callback = true;
      options_.on_lost(lost_session, lost);
      t_in_stream_callback = was;
    }
    if (give_up) break;
    if (welcomed) backoff = absl::Milliseconds(100);
    if (lost_session != 0) continue;  // a new session at once
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    absl::Duration pause = backoff * jitter(random);
    backoff = std::min(backoff * 1.6, absl::Seconds(2));
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(pause), [this] { return stopping_; });
  }
  // Stopped between streams (or gave up): nothing may stay pending.
  std::vector<Completion> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FailAllLocked(absl::FailedPreconditionError("the client was closed during the call"), &done);
  }
  cv_.notify_all();
  RunCompletions(std::move(done));
}

}  // namespace baton::internal

namespace baton::internal {

absl::Status StreamStatus(const StreamOutcome& outcome) {
  switch (outcome.kind) {
    case StreamOutcome::Kind::kAnswered:
      return FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(outcome.result.code()),
                                         outcome.result.message()));
    case StreamOutcome::Kind::kUnsent:
      return absl::CancelledError("cancelled before the call was sent");
    case StreamOutcome::Kind::kBroken:
    case StreamOutcome::Kind::kFailed:
      break;
  }
  return outcome.status;
}

}  // namespace baton::internal
