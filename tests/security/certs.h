// Certificates for tests, made with OpenSSL in process: a CA, and leaf
// certificates it signs (for a server or a client), valid or expired.
#pragma once

#include <string>

namespace baton::testing {

struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

struct CertOptions {
  std::string common_name;
  // subjectAltName entries, e.g. "DNS:localhost,IP:127.0.0.1"; empty: none.
  std::string alt_names = "DNS:localhost,IP:127.0.0.1";
  // Validity relative to now, seconds: [not_before, not_after].
  long not_before = -3600;
  long not_after = 30 * 86400;
};

// A self-signed CA.
KeyPair MakeCa(const std::string& common_name);
// A leaf certificate signed by `ca`.
KeyPair MakeCert(const KeyPair& ca, const CertOptions& options);

// Writes `text` to `path` (replacing it atomically, by rename).
void WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace baton::testing
