// SessionStream: the client's session stream (baton.v1.Stream/Connect), the
// default transport. One stream carries the session and every operation of
// the client: operations are queued with a client-chosen id, those queued
// while a write is in flight go out together in the next StreamRequest, and
// answers are matched back by id (stream.proto).
//
// One thread per SessionStream owns the stream's life: it opens a stream
// (hello: a new session, or resume the current one), probes the session with
// DescribeSession every probe interval, enforces the deadlines of operations
// that do not wait, and re-opens a broken stream with backoff (100 ms, x1.6,
// +-20 % jitter, at most 2 s) while the session can still be alive (a TTL
// after the server was last heard). On a break:
//  - operations not yet sent wait for the next stream;
//  - sent operations that may be re-sent (waits with a request_id: `resend`
//    given) are re-sent on the next stream with what is left of their wait;
//    one cancelled or timed out before it is re-sent ends kBroken (the
//    broken stream may have carried its answer);
//  - other sent operations end kBroken (their outcome is unknown).
// The session is lost when resuming it is NOT_FOUND, a probe says it is gone,
// or the server was not heard for a whole TTL: every pending operation ends
// with the loss, `on_lost` runs (on this thread), and the next stream opens a
// new session for the operations that follow.
//
// Completion callbacks run on a gRPC callback thread (or this class's thread,
// or the caller's, for an operation cancelled before it was sent), never
// under a lock of this class. They must not block.
//
// Thread safety: every public method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "baton/v1/stream.grpc.pb.h"

namespace baton::internal {

// How one operation ended.
struct StreamOutcome {
  enum class Kind {
    kAnswered,  // `result` holds the server's answer (OK or an error code)
    kBroken,    // sent on a stream that broke before its answer: outcome unknown
    kUnsent,    // cancelled before it was sent: nothing happened
    kFailed,    // never answered: `status` says why (session lost, client closed, deadline)
  };
  Kind kind = Kind::kFailed;
  v1::OperationResult result{};
  absl::Status status{};
};

// True on a thread that is running a SessionStream completion callback: a
// blocking call there would wait for an answer that thread must read.
bool OnStreamCallbackThread();

class SessionStream {
 public:
  struct Options {
    absl::Duration ttl = absl::Seconds(15);
    std::string label{};
    // How long an operation that does not wait may stay unanswered.
    absl::Duration rpc_timeout = absl::Seconds(10);
    // Runs on the stream's thread when the session is lost, after its
    // pending operations have ended.
    std::function<void(uint64_t session_id, absl::Status why)> on_lost{};
  };
  using Done = std::function<void(StreamOutcome)>;
  // Prepares a wait to be re-sent on a new stream (sets what is left of its
  // timeout). Returns false if it must not be re-sent.
  using Resend = std::function<bool(v1::Operation*)>;

  SessionStream(std::shared_ptr<grpc::Channel> channel, Options options);
  ~SessionStream();
  SessionStream(const SessionStream&) = delete;
  SessionStream& operator=(const SessionStream&) = delete;

  // Opens the first stream and its new session; waits up to `wait` for the
  // welcome. The error the first stream ended with, or DEADLINE_EXCEEDED.
  absl::Status Start(absl::Duration wait);

  // Queues `op` (its id is set here) and returns the id. `deadline`: when
  // the operation is cancelled and ends kFailed DEADLINE_EXCEEDED if still
  // unanswered (InfiniteFuture: never). `done` runs exactly once.
  uint64_t Submit(v1::Operation op, absl::Time deadline, Resend resend, Done done);
  // Cancels operation `id` on the server (or at once if not sent yet).
  // Unknown ids are ignored.
  void Cancel(uint64_t id);

  // The session's id; 0 while a new session is being opened after a loss.
  uint64_t session_id() const;
  // Waits up to `wait` for a session (see session_id). 0 on timeout or close.
  uint64_t WaitForSession(absl::Duration wait) const;
  // Streams opened so far (1 + re-opens). For tests and diagnostics.
  int streams_opened() const;
  // Sessions lost so far.
  int sessions_lost() const;
  // Messages with operations or cancellations written so far (not hellos).
  int messages_sent() const;
  // True once Stop was called: operations then go unary (a handle may
  // outlive its Client).
  bool stopped() const;
  // Breaks the current stream as a network failure would, and returns once
  // the stream's thread has seen it (for tests).
  void BreakStream();
  // Ends the stream; pending operations end kFailed FAILED_PRECONDITION.
  // Does not close the session. Idempotent. Not from a completion callback.
  void Stop();

 private:
  class Reactor;
  struct Pending {
    v1::Operation op;
    Done done;
    Resend resend;
    absl::Time deadline = absl::InfiniteFuture();
    uint64_t sent_on = 0;  // stream generation; 0 while queued
    // Sent on some stream before: while queued again after a break, its
    // outcome there is unknown (an answer may have been lost with it).
    bool sent_before = false;
    bool cancel_requested = false;
    bool timed_out = false;
  };
  using Completion = std::pair<Done, StreamOutcome>;

  void Run();
  void Probe();
  // Builds the next message of the current stream from the outbox.
  // REQUIRES: mu_ held. False if there is nothing to send.
  bool TakeBatch(v1::StreamRequest* out);
  // Reactor callbacks.
  void OnWriteDone(Reactor* reactor, bool ok);
  void OnResponse(Reactor* reactor, const v1::StreamResponse& response);
  void OnReadFailed(Reactor* reactor);
  void OnStreamDone(Reactor* reactor, const grpc::Status& status);
  // Starts a write on the current stream if none is in flight.
  void Flush();
  // Ends every pending operation with `status`. REQUIRES: mu_ held.
  void FailAllLocked(const absl::Status& status, std::vector<Completion>* out);
  static void RunCompletions(std::vector<Completion> completions);

  const Options options_;
  std::unique_ptr<v1::Stream::Stub> stub_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  absl::Status start_status_{};
  uint64_t session_id_ = 0;
  uint64_t generation_ = 0;
  Reactor* reactor_ = nullptr;  // the current stream; owned by the thread
  bool welcomed_ = false;
  bool writing_ = false;
  bool read_failed_ = false;
  bool stream_done_ = false;
  // Set by the thread when it ends the current stream: no write may start
  // from outside a reaction once it has (the call's hold goes away).
  bool stream_ending_ = false;
  int starting_writes_ = 0;
  grpc::Status stream_status_{};
  absl::Time last_heard_ = absl::InfinitePast();
  bool probe_lost_ = false;
  std::string probe_lost_message_{};
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> ops_;
  std::vector<uint64_t> outbox_;
  std::vector<uint64_t> cancels_;
  int streams_opened_ = 0;
  int messages_sent_ = 0;
  int sessions_lost_ = 0;

  std::thread thread_;
};

}  // namespace baton::internal
