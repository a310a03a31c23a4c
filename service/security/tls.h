// Transport security of the client listener: TLS, mutual TLS, and the rule
// that plaintext is served on loopback only unless the operator says
// otherwise (DESIGN.md §7).
//
// The certificate, key and CA files are checked once at start (readable,
// PEM, the key matching the certificate), so that a wrong path or a
// mismatched pair stops batond with a message instead of failing every
// handshake. gRPC then re-reads them every `reload_interval`
// (FileWatcherCertificateProvider): renewing a certificate is replacing its
// files, with no restart, and connections already open stay open.
//
// Threading: any thread; no state.
#pragma once

#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace baton::security {

struct TlsOptions {
  std::string cert_file = "";  // PEM certificate chain; with key_file: TLS
  std::string key_file = "";   // PEM private key of cert_file's first certificate
  // PEM CA bundle: set, every client must present a certificate it signed
  // (mutual TLS).
  std::string client_ca_file = "";
  std::chrono::seconds reload_interval{60};
  // Plaintext on an address other than loopback.
  bool allow_plaintext = false;

  bool enabled() const { return !cert_file.empty(); }
};

// What a certificate file holds, for the start-up line.
struct CertificateInfo {
  std::string subject;    // of the first certificate
  std::string not_after;  // its expiry, as OpenSSL prints it
  int64_t expires_unix = 0;
};

// True for 127.0.0.0/8, [::1], localhost and unix sockets.
bool IsLoopback(const std::string& listen);

// Checks `tls` (both of cert and key or neither; files readable and
// matching; plaintext only where allowed) and returns the certificate's
// description (empty without TLS).
absl::StatusOr<CertificateInfo> CheckTls(const TlsOptions& tls, const std::string& listen);

// Credentials for a listener on `listen`. Calls CheckTls first.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ListenerCredentials(
    const TlsOptions& tls, const std::string& listen);

}  // namespace baton::security
