// SessionKeeper keeps one session alive with a Sessions/KeepAliveStream and
// notices when it is lost.
//
// One thread per keeper. It holds the stream open (the server does not expire
// a session while a stream names it) and sends a keep-alive on it every
// `ping_interval`; each answer confirms the session. When the stream breaks
// (connection lost, server restarting) the session's TTL starts counting on
// the server, and the keeper reconnects with a short backoff; a new stream
// that names the session within the TTL finds it alive, and nothing the
// session holds is lost. The session is declared lost, once, when
//  - the server answers that it does not exist (SESSION_STATE_NOT_FOUND:
//    it expired, or was closed by someone else), or
//  - no answer confirmed it for a whole TTL (the server may have expired it;
//    a holder must then assume it holds nothing). The keeper then closes it
//    on the server, best effort, so that the two views agree.
// `on_lost` then runs on the keeper thread, and the thread ends.
//
// Thread safety: every public method may be called from any thread, except
// that Stop() (and the destructor) must not be called from `on_lost`.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "baton/v1/session.grpc.pb.h"

namespace baton::internal {

class SessionKeeper {
 public:
  using OnLost = std::function<void(uint64_t session_id, absl::Status why)>;

  // Starts keeping `session_id` (whose TTL is `ttl`) alive.
  SessionKeeper(v1::Sessions::Stub* stub, uint64_t session_id, absl::Duration ttl, OnLost on_lost);
  ~SessionKeeper();
  SessionKeeper(const SessionKeeper&) = delete;
  SessionKeeper& operator=(const SessionKeeper&) = delete;

  // Ends the stream and the thread. The session itself stays open on the
  // server until its TTL passes (Client::Close closes it). Idempotent.
  void Stop();

  uint64_t session_id() const { return session_id_; }
  // OK while the session is believed alive; the reason once it is lost.
  absl::Status status() const;
  bool lost() const { return !status().ok(); }
  // Streams opened so far (1 + reconnections). For tests and diagnostics.
  int streams_opened() const;

 private:
  class Stream;

  void Run();
  // Waits until `deadline`, Stop(), or a change reported by the stream.
  // Returns false on Stop().
  bool WaitUntil(absl::Time deadline);
  void DeclareLost(absl::Status why);

  v1::Sessions::Stub* const stub_;
  const uint64_t session_id_;
  const absl::Duration ttl_;
  const absl::Duration ping_interval_;
  const OnLost on_lost_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  absl::Status status_;
  int streams_opened_ = 0;
  // Set by the stream's callbacks; read and reset by the keeper thread.
  int answers_alive_ = 0;
  bool answer_not_found_ = false;
  bool stream_done_ = false;

  std::thread thread_;
};

}  // namespace baton::internal
