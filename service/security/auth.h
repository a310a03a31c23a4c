// Who makes a call, and what they may do (DESIGN.md §7).
//
//   Principal     the name a call acts for, and the grants of its roles
//   AccessPolicy  the tokens file and the policy file, parsed: token hashes
//                 to principal names, roles of (access, name prefixes),
//                 principals to roles
//   Authenticator identifies the principal of a call (a bearer token, else
//                 the client certificate's common name, else "anonymous")
//                 and re-reads both files when they change
//
// Tokens file, one principal per line (`#` starts a comment):
//     billing-worker  9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
// the SHA-256 of the token in hex: the file never holds a token itself.
//
// Policy file:
//     role  billing-rw  write  billing/ shared/billing/
//     role  reader      read   *
//     role  operator    admin  *
//     grant billing-worker billing-rw reader
//     grant ops-alice      operator
// `role NAME ACCESS PREFIX...` gives ACCESS (read < write < admin; each
// includes the ones before it) on every name that starts with one of the
// prefixes (`*`: every name). `grant PRINCIPAL ROLE...` gives a principal
// roles; PRINCIPAL is a token's name, a client certificate's common name, or
// `anonymous` (calls with neither; without such a line they are refused).
// `limit PRINCIPAL sessions=N waits=N` caps what one principal may hold of
// the server (`*`: every principal without a limit line of its own): live
// sessions, and calls plus stream operations in flight (each pending wait is
// one); over it, RESOURCE_EXHAUSTED. 0 or absent: no cap.
//
// Threading: Authenticator::Identify and Current are called from every
// loop thread; the configuration is an immutable snapshot swapped whole by
// the reload thread.
#pragma once

#include <grpcpp/server_context.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace baton::security {

enum class Access : uint8_t { kNone = 0, kRead = 1, kWrite = 2, kAdmin = 3 };
const char* AccessName(Access a);

struct Grant {
  Access access = Access::kNone;
  std::string prefix = "";  // "" for every name
};

// A principal and what its roles grant. Immutable.
struct Principal {
  std::string name = "";
  std::vector<Grant> grants;
  // Admin on every name: may use other principals' sessions, SaveSnapshot.
  bool admin = false;
  // OwnerTag(name): what commands carry and state records as the owner of
  // holdings, items in flight and running tasks (apply::Command::principal).
  uint64_t tag = 0;
  // The policy's limits (0: none). max_names is enforced by the shards
  // (apply::Command::names_limit), the others by the RPC layer.
  int64_t max_sessions = 0;
  int64_t max_waits = 0;
  int64_t max_names = 0;

  // Whether a grant of at least `access` covers `name` (a resource name, or
  // the prefix a List asks for: the grant's prefix must start it).
  bool Allows(Access access, absl::string_view name) const;
};

inline constexpr char kAnonymous[] = "anonymous";

// The parsed tokens and policy files.
class AccessPolicy {
 public:
  // Parses the files' text; an error names the file, the line and what is
  // wrong. `tokens_path`/`policy_path` are only for the messages.
  static absl::StatusOr<std::shared_ptr<const AccessPolicy>> Parse(absl::string_view tokens,
                                                                   absl::string_view tokens_path,
                                                                   absl::string_view policy,
                                                                   absl::string_view policy_path);

  // The principal whose token hashes to `sha256_hex`, or nullptr.
  const Principal* ByTokenHash(absl::string_view sha256_hex) const;
  // The principal `name` (with no roles if the policy grants it none).
  const Principal* ByName(absl::string_view name) const;
  // The anonymous principal if the policy grants it a role, else nullptr.
  const Principal* Anonymous() const;

  size_t principal_count() const { return principals_.size(); }
  size_t token_count() const { return tokens_.size(); }

 private:
  absl::flat_hash_map<std::string, std::string> tokens_;  // hash -> principal name
  absl::flat_hash_map<std::string, std::unique_ptr<Principal>> principals_;
};

// 64 random bits from OpenSSL's generator (never 0): session id nonces.
uint64_t RandomNonce();

// SHA-256 of `text` in lower-case hex.
std::string Sha256Hex(absl::string_view text);

// The first 8 bytes of SHA-256(`principal`) (never 0): the principal as the
// replicated state records it. The same on every node and build; two names
// collide with probability 2^-64.
uint64_t OwnerTag(absl::string_view principal);

struct AuthOptions {
  std::string tokens_file = "";  // optional
  std::string policy_file = "";  // set: principals are checked
  std::chrono::seconds reload_interval{10};

  bool enabled() const { return !policy_file.empty(); }
};

// The principal of a call with the policy that named it (kept alive as long
// as the call holds this).
struct Identity {
  std::shared_ptr<const AccessPolicy> policy;
  const Principal* principal = nullptr;
  // The principal's count of calls and stream operations in flight, across
  // the server (set when its policy limits them).
  std::atomic<int64_t>* in_flight = nullptr;
};

// Counts one call or stream operation in flight against its principal's
// waits limit, for as long as it lives.
class InFlight {
 public:
  InFlight() = default;
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight() {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_relaxed);
  }
  // RESOURCE_EXHAUSTED if the principal already has its limit in flight.
  absl::Status Enter(const Identity& id);

 private:
  std::atomic<int64_t>* count_ = nullptr;
};

class Authenticator {
 public:
  // Reads the files (an error stops batond at start) and starts watching
  // them: a change is read within `reload_interval`; a changed file that
  // does not parse is logged and the previous configuration kept.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Start(const AuthOptions& options);
  // Reads and parses the files once: what Start would say of them.
  static absl::StatusOr<std::shared_ptr<const AccessPolicy>> Check(const AuthOptions& options);
  ~Authenticator();

  // The principal of a call: its bearer token (`authorization: Bearer T`
  // metadata) if it sends one, else its client certificate's common name,
  // else anonymous if the policy allows that. UNAUTHENTICATED otherwise,
  // saying why.
  absl::StatusOr<Identity> Identify(const grpc::ServerContext& ctx) const;

  std::shared_ptr<const AccessPolicy> Current() const;
  // Reads the files now (the reload thread's step); for tests.
  absl::Status Reload();

 private:
  explicit Authenticator(AuthOptions options) : options_(std::move(options)) {}
  void Watch();

  std::atomic<int64_t>* InFlightOf(const std::string& name) const;
  absl::StatusOr<Identity> IdentifyPrincipal(const grpc::ServerContext& ctx) const;

  const AuthOptions options_;
  // Per principal name, for ever (names come from the policy: few).
  mutable absl::Mutex counters_mu_;
  mutable absl::flat_hash_map<std::string, std::unique_ptr<std::atomic<int64_t>>> counters_
      ABSL_GUARDED_BY(counters_mu_);
  mutable absl::Mutex mu_;
  std::shared_ptr<const AccessPolicy> current_ ABSL_GUARDED_BY(mu_);
  std::string last_seen_ ABSL_GUARDED_BY(mu_);  // files' mtimes and sizes
  absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread watcher_;
};

}  // namespace baton::security
