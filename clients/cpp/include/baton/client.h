// Client: a connection to a Baton server and the one session that owns what
// this client holds; the factory of every primitive's handle.
//
//   absl::StatusOr<baton::Client> client = baton::Client::Connect("127.0.0.1:7411");
//   if (!client.ok()) return client.status();
//   auto held = client->Lock("billing/nightly-migration").Acquire();  // released at scope exit
//
// The session and the transport (clients/README.md). By default Connect
// opens one session stream (Stream/Connect, ClientOptions::transport) whose
// hello opens the session (ClientOptions::session_ttl, 15 s), and every
// operation travels on it; Transport::kUnary makes a unary call per operation
// and keeps the session with a Sessions/KeepAliveStream thread. A dropped
// connection is re-established within the TTL without losing anything (waits
// with a request_id are re-sent). The session is *lost* when the server no
// longer has it (it expired, or was closed elsewhere) or when it could not be
// confirmed for a whole TTL; then everything it held has been (or must be
// assumed) released by the server: the guards' lost signals fire, pending
// operations end with kAborted, the on_session_lost callbacks run once, and
// the client opens a new session for the calls that follow (session_id()
// changes). Destroying the Client (or Close) closes the session, releasing
// what it still holds. A callback may destroy the Client or hold its last
// handle (a coroutine resumed by one often does): the session is then closed,
// and the client torn down, on a thread of their own, since gRPC must not
// destroy a channel inside its own callback. Close() itself waits for the
// client's threads: do not call it from a callback.
//
// Thread safety: every method may be called from any thread. A Client is
// move-only; handles it returned stay valid after it is destroyed (calls that
// need the session then fail with kFailedPrecondition).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "baton/admin.h"
#include "baton/barrier.h"
#include "baton/client_options.h"
#include "baton/condition.h"
#include "baton/consumer.h"
#include "baton/event.h"
#include "baton/future.h"
#include "baton/lock.h"
#include "baton/queue.h"
#include "baton/semaphore.h"
#include "baton/tasks.h"
#include "baton/timer.h"

namespace baton {

// What Sessions/Describe says about the client's session.
struct SessionInfo {
  uint64_t session_id = 0;
  std::string label{};
  absl::Duration ttl{};
  // Time left before expiry; nullopt while a KeepAliveStream holds it open.
  std::optional<absl::Duration> expires_in{};
  absl::Duration age{};
  uint32_t open_streams = 0;
};

class Client {
 public:
  // Connects to `target` ("host:port") and opens the session. Waits up to
  // options.connect_timeout for the server. Errors: kUnavailable or
  // kDeadlineExceeded (no server), kInvalidArgument (a bad session_ttl).
  static absl::StatusOr<Client> Connect(const std::string& target, ClientOptions options = {});

  Client(Client&&) noexcept = default;
  Client& operator=(Client&& other) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  // Closes the session (see Close).
  ~Client();

  // Handles of named resources. Cheap: nothing is sent until a call is made.
  baton::Lock Lock(std::string name) const;
  // `capacity`: the semaphore's total permits, declared by its first user;
  // 0 means "as declared" (the semaphore must exist).
  baton::Semaphore Semaphore(std::string name, int64_t capacity = 0) const;
  baton::Event Event(std::string name) const;
  // The condition `condition` (may be empty) bound to the lock `lock`.
  baton::Condition Condition(std::string lock, std::string condition = "") const;
  // `parties`: declared by the first Wait; 0 means "as declared".
  baton::Barrier Barrier(std::string name, uint32_t parties = 0) const;
  // `config`: declares the queue (order, maxsize...) with every call that
  // takes options; nullopt: use it as declared (or the defaults).
  baton::Queue Queue(std::string name, std::optional<QueueConfig> config = std::nullopt) const;
  baton::Future Future(std::string name) const;
  // The work queue `queue` of Tasks: submitting, awaiting, and taking work.
  baton::Tasks Tasks(std::string queue) const;
  baton::Timer Timer(std::string name) const;
  baton::Admin Admin() const;

  // The session: its id (0 on the stream while a new one is being opened
  // after a loss), and whether it is lost and not yet replaced.
  uint64_t session_id() const;
  bool session_lost() const;
  // OK while the session is alive; why it was lost (or that the client is
  // closed) otherwise.
  absl::Status session_status() const;
  // Runs `callback` each time a session of this client is lost (on the
  // unary transport, at once if it is lost now), on the thread that keeps
  // the session: it must not block (nor call Close).
  void OnSessionLost(std::function<void(absl::Status why)> callback) const;
  // The unary transport: after a loss whose automatic renewal failed (the
  // server was unreachable), opens a new session (new id); guards of the old
  // session hold nothing. OK without a change while the session is alive,
  // and always on the stream (which opens the new session itself). May be
  // called from an OnSessionLost callback.
  absl::Status RenewSession() const;
  // Sessions/Describe of the client's session.
  absl::StatusOr<SessionInfo> DescribeSession() const;
  // Session streams (or, unary, KeepAliveStreams) opened so far: 1, plus one
  // per reconnection.
  int keepalive_streams_opened() const;

  // Closes the session now: everything it holds is released and its waits
  // end with kAborted. Idempotent.
  absl::Status Close();

 private:
  explicit Client(std::shared_ptr<internal::Core> core) : core_(std::move(core)) {}

  std::shared_ptr<internal::Core> core_;
};

}  // namespace baton
