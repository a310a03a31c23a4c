// Principals: parsing the tokens and policy files, identifying a call's
// principal, and re-reading the files when they change.
#include "service/security/auth.h"

#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "service/logging.h"

namespace baton::security {

const char* AccessName(Access a) {
  switch (a) {
    case Access::kNone:
      return "none";
    case Access::kRead:
      return "read";
    case Access::kWrite:
      return "write";
    case Access::kAdmin:
      return "admin";
  }
  return "?";
}

bool Principal::Allows(Access access, absl::string_view name) const {
  for (const Grant& g : grants) {
    if (g.access >= access && absl::StartsWith(name, g.prefix)) return true;
  }
  return false;
}

uint64_t RandomNonce() {
  uint64_t n = 0;
  while (n == 0) {
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&n), sizeof n) != 1) std::abort();
  }
  return n;
}

uint64_t OwnerTag(absl::string_view principal) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(principal.data()), principal.size(), digest);
  uint64_t tag = 0;
  for (int i = 0; i < 8; ++i) tag = (tag << 8) | digest[i];
  return tag == 0 ? 1 : tag;
}

std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * SHA256_DIGEST_LENGTH, '0');
  for (int i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

namespace {

// The words of each line that has any, with its number; `#` starts a comment.
std::vector<std::pair<int, std::vector<std::string>>> Lines(absl::string_view text) {
  std::vector<std::pair<int, std::vector<std::string>>> out;
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (!words.empty()) out.emplace_back(number, std::move(words));
  }
  return out;
}

bool IsHex64(absl::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<Access> ParseAccess(absl::string_view word) {
  if (word == "read") return Access::kRead;
  if (word == "write") return Access::kWrite;
  if (word == "admin") return Access::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown access '", word, "' (read, write or admin)"));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The files' modification times and sizes: a change means re-read them.
std::string Stamp(const AuthOptions& o) {
  std::string stamp;
  for (const std::string* path : {&o.tokens_file, &o.policy_file}) {
    struct stat st {};
    if (path->empty() || stat(path->c_str(), &st) != 0) {
      absl::StrAppend(&stamp, "-;");
      continue;
    }
    absl::StrAppend(&stamp, st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ":", st.st_size, ";");
  }
  return stamp;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const AccessPolicy>> AccessPolicy::Parse(
    absl::string_view tokens, absl::string_view tokens_path, absl::string_view policy,
    absl::string_view policy_path) {
  auto policy_out = std::make_shared<AccessPolicy>();
  AccessPolicy& p = *policy_out;
  auto error = [](absl::string_view path, int line, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", line, ": ", what));
  };
  auto principal = [&p](const std::string& name) -> Principal& {
    auto& slot = p.principals_[name];
    if (!slot) {
      slot = std::make_unique<Principal>();
      slot->name = name;
      slot->tag = OwnerTag(name);
    }
    return *slot;
  };

  for (auto& [line, words] : Lines(tokens)) {
    if (words.size() != 2 || !IsHex64(words[1])) {
      return error(tokens_path, line,
                   "expected `PRINCIPAL SHA256-HEX` (the token's SHA-256 in 64 hex digits: "
                   "printf %s \"$TOKEN\" | sha256sum)");
    }
    if (words[0] == kAnonymous) {
      return error(tokens_path, line, "'anonymous' is the principal of calls without credentials");
    }
    std::string hash = absl::AsciiStrToLower(words[1]);
    auto [it, fresh] = p.tokens_.emplace(hash, words[0]);
    if (!fresh) return error(tokens_path, line, "the same token hash is listed twice");
    principal(words[0]);
  }

  absl::flat_hash_map<std::string, std::vector<Grant>> roles;
  std::vector<std::pair<int, std::vector<std::string>>> grants;
  struct Limits {
    int64_t sessions = 0, waits = 0, names = 0;
  };
  absl::flat_hash_map<std::string, Limits> limits;
  for (auto& [line, words] : Lines(policy)) {
    if (words[0] == "role") {
      if (words.size() < 4)
        return error(policy_path, line, "expected `role NAME ACCESS PREFIX...`");
      auto access = ParseAccess(words[2]);
      if (!access.ok()) return error(policy_path, line, access.status().message());
      auto& role = roles[words[1]];
      for (size_t i = 3; i < words.size(); ++i) {
        role.push_back(Grant{*access, words[i] == "*" ? std::string() : words[i]});
      }
    } else if (words[0] == "limit") {
      if (words.size() < 3) {
        return error(policy_path, line,
                     "expected `limit PRINCIPAL sessions=N waits=N names=N` (any of the three)");
      }
      Limits& l = limits[words[1]];
      for (size_t i = 2; i < words.size(); ++i) {
        std::pair<std::string, std::string> kv = absl::StrSplit(words[i], absl::MaxSplits('=', 1));
        int64_t n = -1;
        if (!absl::SimpleAtoi(kv.second, &n) || n < 0) n = -1;
        if (kv.first == "sessions" && n >= 0) {
          l.sessions = n;
        } else if (kv.first == "waits" && n >= 0) {
          l.waits = n;
        } else if (kv.first == "names" && n >= 0) {
          l.names = n;
        } else {
          return error(policy_path, line,
                       absl::StrCat("bad limit '", words[i],
                                    "' (sessions=N, waits=N or names=N, N a whole number)"));
        }
      }
    } else if (words[0] == "grant") {
      if (words.size() < 3) return error(policy_path, line, "expected `grant PRINCIPAL ROLE...`");
      grants.emplace_back(line, std::move(words));
    } else {
      return error(policy_path, line,
                   absl::StrCat("unknown statement '", words[0], "' (role, grant or limit)"));
    }
  }
  // Grants after all roles: a role may be defined below its first use.
  for (auto& [line, words] : grants) {
    Principal& who = principal(words[1]);
    for (size_t i = 2; i < words.size(); ++i) {
      auto role = roles.find(words[i]);
      if (role == roles.end()) {
        return error(policy_path, line, absl::StrCat("no role named '", words[i], "'"));
      }
      for (const Grant& g : role->second) {
        who.grants.push_back(g);
        if (g.access == Access::kAdmin && g.prefix.empty()) who.admin = true;
      }
    }
  }
  const Limits every = limits.contains("*") ? limits["*"] : Limits{};
  for (auto& [name, who] : p.principals_) {
    auto own = limits.find(name);
    const Limits& l = own != limits.end() ? own->second : every;
    who->max_sessions = l.sessions;
    who->max_waits = l.waits;
    who->max_names = l.names;
  }
  return std::shared_ptr<const AccessPolicy>(std::move(policy_out));
}

const Principal* AccessPolicy::ByTokenHash(absl::string_view sha256_hex) const {
  auto it = tokens_.find(sha256_hex);
  return it == tokens_.end() ? nullptr : ByName(it->second);
}

const Principal* AccessPolicy::ByName(absl::string_view name) const {
  auto it = principals_.find(name);
  return it == principals_.end() ? nullptr : it->second.get();
}

const Principal* AccessPolicy::Anonymous() const {
  const Principal* p = ByName(kAnonymous);
  return p != nullptr && !p->grants.empty() ? p : nullptr;
}

// --- Authenticator ---

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Start(const AuthOptions& options) {
  if (!options.enabled()) {
    return absl::InvalidArgumentError("principals need a policy file (--auth_policy)");
  }
  std::unique_ptr<Authenticator> auth(new Authenticator(options));
  if (absl::Status s = auth->Reload(); !s.ok()) return s;
  auth->watcher_ = std::thread([a = auth.get()] { a->Watch(); });
  return auth;
}

absl::StatusOr<std::shared_ptr<const AccessPolicy>> Authenticator::Check(
    const AuthOptions& options) {
  if (!options.enabled()) {
    if (!options.tokens_file.empty()) {
      return absl::InvalidArgumentError(
          "--auth_tokens needs --auth_policy (the roles the tokens' principals get)");
    }
    return std::shared_ptr<const AccessPolicy>();
  }
  Authenticator once(options);
  if (absl::Status s = once.Reload(); !s.ok()) return s;
  return once.Current();
}

Authenticator::~Authenticator() {
  {
    absl::MutexLock lock(&stop_mu_);
    stop_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

absl::Status Authenticator::Reload() {
  std::string stamp = Stamp(options_);
  std::string tokens;
  if (!options_.tokens_file.empty()) {
    auto text = ReadFile(options_.tokens_file);
    if (!text.ok()) return text.status();
    tokens = *std::move(text);
  }
  auto policy_text = ReadFile(options_.policy_file);
  if (!policy_text.ok()) return policy_text.status();
  auto policy =
      AccessPolicy::Parse(tokens, options_.tokens_file, *policy_text, options_.policy_file);
  if (!policy.ok()) return policy.status();
  absl::MutexLock lock(&mu_);
  current_ = *std::move(policy);
  last_seen_ = std::move(stamp);
  return absl::OkStatus();
}

void Authenticator::Watch() {
  absl::MutexLock lock(&stop_mu_);
  for (;;) {
    stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::FromChrono(options_.reload_interval));
    if (stop_) return;
    std::string stamp = Stamp(options_);
    {
      absl::MutexLock l(&mu_);
      if (stamp == last_seen_) continue;
    }
    if (absl::Status s = Reload(); !s.ok()) {
      {
        absl::MutexLock l(&mu_);
        last_seen_ = stamp;  // say it once per change
      }
      logging::Error("principals not reloaded; the previous tokens and policy stay")
          .Str("error", std::string(s.message()));
      continue;
    }
    auto now = Current();
    logging::Info("principals reloaded")
        .Uint("principals", now->principal_count())
        .Uint("tokens", now->token_count());
  }
}

absl::Status InFlight::Enter(const Identity& id) {
  if (id.in_flight == nullptr || id.principal->max_waits <= 0) return absl::OkStatus();
  if (id.in_flight->fetch_add(1, std::memory_order_relaxed) >= id.principal->max_waits) {
    id.in_flight->fetch_sub(1, std::memory_order_relaxed);
    return absl::ResourceExhaustedError(
        absl::StrCat("principal '", id.principal->name, "' has ", id.principal->max_waits,
                     " calls and stream operations in flight, its limit (waits= in the policy)"));
  }
  count_ = id.in_flight;
  return absl::OkStatus();
}

std::atomic<int64_t>* Authenticator::InFlightOf(const std::string& name) const {
  {
    absl::ReaderMutexLock lock(&counters_mu_);
    if (auto it = counters_.find(name); it != counters_.end()) return it->second.get();
  }
  absl::MutexLock lock(&counters_mu_);
  auto& slot = counters_[name];
  if (!slot) slot = std::make_unique<std::atomic<int64_t>>(0);
  return slot.get();
}

std::shared_ptr<const AccessPolicy> Authenticator::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return current_;
}

absl::StatusOr<Identity> Authenticator::Identify(const grpc::ServerContext& ctx) const {
  absl::StatusOr<Identity> id = IdentifyPrincipal(ctx);
  if (id.ok() && id->principal->max_waits > 0) id->in_flight = InFlightOf(id->principal->name);
  return id;
}

absl::StatusOr<Identity> Authenticator::IdentifyPrincipal(const grpc::ServerContext& ctx) const {
  Identity id{Current(), nullptr};
  const auto& metadata = ctx.client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    absl::string_view value(it->second.data(), it->second.size());
    constexpr absl::string_view kBearer = "Bearer ";
    if (value.size() <= kBearer.size() ||
        !absl::EqualsIgnoreCase(value.substr(0, kBearer.size()), kBearer)) {
      return absl::UnauthenticatedError("the authorization metadata must be `Bearer <token>`");
    }
    id.principal = id.policy->ByTokenHash(Sha256Hex(value.substr(kBearer.size())));
    if (id.principal == nullptr) {
      return absl::UnauthenticatedError("unknown bearer token (not in the tokens file)");
    }
    return id;
  }
  if (auto auth = ctx.auth_context(); auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const auto& cn : auth->FindPropertyValues("x509_common_name")) {
      absl::string_view name(cn.data(), cn.size());
      id.principal = id.policy->ByName(name);
      if (id.principal == nullptr) {
        return absl::PermissionDeniedError(
            absl::StrCat("the client certificate's principal '", name, "' has no role"));
      }
      return id;
    }
  }
  id.principal = id.policy->Anonymous();
  if (id.principal == nullptr) {
    return absl::UnauthenticatedError(
        "no credentials: send `authorization: Bearer <token>` metadata or a client certificate");
  }
  return id;
}

}  // namespace baton::security
