// ClientOptions: how a Client connects and keeps its session. Plain data.
#pragma once

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace baton {

// TLS to the server (batond --tls_cert/--tls_key; --client_ca for mutual
// TLS). Files are PEM, read once at Connect.
struct ClientTls {
  std::string ca_file{};    // roots the server's certificate must chain to; empty: the system's
  std::string cert_file{};  // this client's certificate (mutual TLS), with key_file
  std::string key_file{};
  std::string server_name{};  // the name to check in the server's certificate; empty: the host
};

// How operations reach the server (clients/README.md, "Transport").
enum class Transport {
  // One Stream/Connect call per client carries the session and every
  // operation it can (the default).
  kStream,
  // A unary RPC per operation; the session is kept by a KeepAliveStream.
  kUnary,
};

struct ClientOptions {
  // The transport; calls the stream cannot carry (Sessions/Open, Close,
  // lease-only holdings, Queues/Consume, Events/Watch) are unary on both.
  Transport transport = Transport::kStream;
  // TTL of the client's session: how long the server keeps it (and what it
  // holds) once the client stops answering. Also the grace period for
  // reconnecting after a dropped connection. 1 s to the server's maximum.
  // The session is probed every TTL/3 (clamped to 100 ms .. 5 s).
  absl::Duration session_ttl = absl::Seconds(15);
  // Shown by Sessions/Describe, e.g. "billing-worker-7" (at most 256 bytes).
  std::string label{};
  // How long Connect waits for the server to answer (it waits for the
  // connection, so a server that is still starting is fine).
  absl::Duration connect_timeout = absl::Seconds(10);
  // gRPC deadline of calls that do not wait (Release, Set, Ack, Describe...),
  // and the slack added to a waiting call's timeout for its gRPC deadline.
  absl::Duration rpc_timeout = absl::Seconds(10);
  // Called once per lost session (see Client::session_lost), on the thread
  // that keeps the session (the stream's, or the keep-alive thread), after
  // the holdings' lost signals fired and before the client opens a new
  // session for the operations that follow. Must not block, nor destroy the
  // Client.
  std::function<void(absl::Status why)> on_session_lost{};
  // Connect over TLS (see ClientTls). Unset, and without credentials:
  // plaintext, which batond serves on loopback addresses only by default.
  std::optional<ClientTls> tls{};
  // Channel credentials of your own; when set, tls is ignored.
  std::shared_ptr<grpc::ChannelCredentials> credentials{};
  // Bearer token sent on every call (`authorization: Bearer <token>`), for
  // a batond started with --auth_tokens: the principal the client acts as.
  // Printable ASCII without spaces. Sent in clear only to a loopback
  // address: without tls or credentials, Connect to any other address is
  // INVALID_ARGUMENT unless insecure_token is set (a server started with
  // --allow_plaintext on a network protected otherwise).
  std::string token{};
  bool insecure_token = false;
};

}  // namespace baton
