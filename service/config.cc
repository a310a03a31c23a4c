#include "service/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "service/version.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7411", "address to listen on, HOST:PORT (port 0: any)");
ABSL_FLAG(std::string, durability, "local",
          "local: every change is in a write-ahead log in --data_dir, fsynced before it is "
          "acknowledged, and survives kill -9 and power loss; none: in memory only, lost when "
          "batond stops");
ABSL_FLAG(std::string, data_dir, "baton-data",
          "where durable state lives (created if missing; delete it to start empty)");
ABSL_FLAG(double, wal_segment_mb, 64,
          "size of a write-ahead log segment file, MiB (fractions allowed; at least 4 KiB)");
ABSL_FLAG(int64_t, snapshot_entries, 100'000,
          "take a snapshot every this many log entries, and let the log drop what the previous "
          "snapshot covers (0: never)");
ABSL_FLAG(double, snapshot_mb, 256,
          "also take a snapshot once the log has grown by this many MiB since the last one, so "
          "that large entries bound the log too (fractions allowed; 0: by entries only)");
ABSL_FLAG(int, shards, 0,
          "event-loop threads, each owning a share of resources (0: one per core); a data "
          "directory written with another count is re-sharded at start");
ABSL_FLAG(int64_t, max_resources, 1'000'000, "live resources (names) in total");
ABSL_FLAG(int64_t, max_sessions, 100'000, "open sessions in total");
ABSL_FLAG(int64_t, max_waiters, 1'000'000, "pending waits in total");
ABSL_FLAG(int64_t, max_waiters_per_resource, 100'000, "pending waits on one resource");
ABSL_FLAG(int64_t, max_session_ttl_s, 3600, "longest session TTL, seconds");
ABSL_FLAG(int64_t, max_lease_s, 86400, "longest lease TTL, seconds");
ABSL_FLAG(uint32_t, max_queue_items, 1'000'000, "largest queue maxsize, and the default one");
ABSL_FLAG(uint32_t, max_item_bytes, 1 << 20, "largest queue item, bytes, and the default limit");
ABSL_FLAG(int64_t, max_queue_bytes, 1ll << 30, "payload bytes held by all queues together");
ABSL_FLAG(int64_t, future_retention_s, 3600, "default time a done future is kept, seconds");
ABSL_FLAG(int, max_message_bytes, 4 << 20, "largest request or response, bytes");
ABSL_FLAG(int64_t, keepalive_time_ms, 20'000, "ping idle connections this often, ms");
ABSL_FLAG(int64_t, keepalive_timeout_ms, 10'000, "drop a connection whose ping is unanswered, ms");
ABSL_FLAG(int64_t, shutdown_grace_ms, 2'000, "time in-flight calls get to finish on shutdown, ms");
ABSL_FLAG(int64_t, orphan_grace_ms, 10'000,
          "after a restart, how long a pending acquire, Get or Take with a request_id keeps its "
          "place in line for the client's retry, and a grant made to it waits to be claimed, ms "
          "(0: every wait ends at the restart)");
ABSL_FLAG(int, requests_per_method, 32, "calls pre-posted per method per shard");
ABSL_FLAG(uint64_t, node_id, 0, "cluster: this node's raft id (non-zero, unique, never reused)");
ABSL_FLAG(std::string, peers, "",
          "cluster: every member as id=peerhost:port@clienthost:port,... (empty: a single node)");
ABSL_FLAG(std::string, peer_listen, "",
          "cluster: this node's raft peer address (default: its entry in --peers)");
ABSL_FLAG(std::string, raftd, "",
          "cluster: the baton-raftd binary (default: beside batond, else PATH)");
ABSL_FLAG(bool, join, false, "cluster: a member added to a running cluster (Admin/AddMember)");
ABSL_FLAG(int, raft_tick_ms, 100, "cluster: raft tick, ms");
ABSL_FLAG(int, raft_election_ticks, 10,
          "cluster: ticks without a leader before a follower stands for election");

ABSL_FLAG(std::string, config, "",
          "a TOML file of flags (key = flag name, e.g. max_sessions = 5); the command line and "
          "BATON_* environment variables override it");
ABSL_FLAG(std::string, restore, "",
          "start from this snapshot file (written by `baton snapshot save`); --data_dir must "
          "not hold state yet");
ABSL_FLAG(std::string, metrics_listen, "",
          "serve Prometheus metrics over HTTP at HOST:PORT/metrics, and /healthz (empty: off)");
ABSL_FLAG(std::string, log_level, "info",
          "least severe log lines written: debug, info, warn, error");
ABSL_FLAG(int64_t, slow_apply_ms, 100,
          "log a warning when applying one command takes this long, ms (its shard serves "
          "nothing else meanwhile)");
ABSL_FLAG(std::string, log_format, "text",
          "text (one line per event) or json (one object per line)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the client listener; with --tls_key, serve TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert (not encrypted)");
ABSL_FLAG(std::string, client_ca, "",
          "PEM CA bundle: require a client certificate signed by it (mutual TLS)");
ABSL_FLAG(int64_t, tls_reload_s, 60,
          "re-read the certificate, key and CA files this often, seconds (renewal without a "
          "restart)");
ABSL_FLAG(std::string, auth_policy, "",
          "policy file of roles (access on name prefixes) granted to principals; set, every "
          "call needs a principal with the access it asks for (docs/security.md)");
ABSL_FLAG(std::string, auth_tokens, "",
          "tokens file: principal names and the SHA-256 of their bearer tokens (with "
          "--auth_policy)");
ABSL_FLAG(int64_t, auth_reload_s, 10,
          "re-read the policy and tokens files this often when they change, seconds");
ABSL_FLAG(bool, allow_plaintext, false,
          "serve plaintext on an address other than loopback (without TLS, batond refuses to)");
namespace baton::config {
namespace {

constexpr const char* kProgram = "batond";

// batond's own flags (not abseil's or gRPC's), by name.
std::map<std::string, absl::CommandLineFlag*> OurFlags() {
  std::map<std::string, absl::CommandLineFlag*> out;
  for (auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "service/config.cc")) out[std::string(name)] = flag;
  }
  return out;
}

std::string Canonical(absl::string_view name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }

void PrintHelp(const std::map<std::string, absl::CommandLineFlag*>& flags) {
  std::cout << "Baton coordination server: asyncio's primitives shared over gRPC.\n\n"
               "Usage: batond [--flag=value | --flag value]...\n\n"
               "Flags take dashes or underscores (--max-sessions = --max_sessions). Each can also\n"
               "be set by the environment variable BATON_<FLAG> (BATON_MAX_SESSIONS=5) or by a\n"
               "key in the TOML file of --config (max_sessions = 5); the command line wins over\n"
               "the environment, which wins over the file.\n\n"
               "Flags:\n";
  for (const auto& [name, flag] : flags) {
    std::string def = flag->DefaultValue();
    if (flag->IsOfType<std::string>()) def = absl::StrCat("\"", def, "\"");
    std::cout << "  --" << name << " (default " << def << ")\n";
    // Wrap the help at 76 columns, indented.
    std::string line = "      ";
    for (absl::string_view word : absl::StrSplit(flag->Help(), ' ')) {
      if (line.size() + word.size() > 78 && line.size() > 6) {
        std::cout << line << "\n";
        line = "      ";
      }
      absl::StrAppend(&line, line.size() > 6 ? " " : "", word);
    }
    std::cout << line << "\n";
  }
  std::cout << "  --help      this text         --version   the version and commit\n\n"
               "Documentation: docs/operations.md. Exit codes: 0 stopped by SIGTERM or SIGINT;\n"
               "1 could not start or a fatal error; 2 bad configuration.\n";
}

// Sets `flag` from `value` (from `where`, for the message).
bool Set(absl::CommandLineFlag* flag, absl::string_view value, absl::string_view where) {
  std::string error;
  if (flag->ParseFrom(value, &error)) return true;
  std::cerr << kProgram << ": " << where << ": " << error << "\n";
  return false;
}

// A TOML value as the text a flag parses.
std::optional<std::string> FlagText(const toml::node& node) {
  if (auto v = node.value<std::string>()) return *v;
  if (auto v = node.value_exact<int64_t>()) return absl::StrCat(*v);
  if (auto v = node.value_exact<double>()) return absl::StrCat(*v);
  if (auto v = node.value_exact<bool>()) return std::string(*v ? "true" : "false");
  return std::nullopt;
}

bool LoadFile(const std::string& path, const std::map<std::string, absl::CommandLineFlag*>& flags) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::cerr << kProgram << ": config file " << path << ": " << e.description() << " (line "
              << e.source().begin.line << ", column " << e.source().begin.column << ")\n";
    return false;
  }
  for (const auto& [key, node] : table) {
    std::string key_text(key.str());
    std::string name = Canonical(key_text);
    auto it = flags.find(name);
    if (it == flags.end() || name == "config") {
      std::cerr << kProgram << ": config file " << path << ": unknown key '" << key.str()
                << "' (line " << key.source().begin.line << "); `batond --help` lists the flags\n";
      return false;
    }
    std::optional<std::string> text = FlagText(node);
    if (!text) {
      std::cerr << kProgram << ": config file " << path << ": key '" << key.str()
                << "' must be a string, number or boolean\n";
      return false;
    }
    if (!Set(it->second, *text, absl::StrCat("config file ", path, ": ", key_text))) return false;
  }
  return true;
}

std::string EnvName(const std::string& flag) {
  return absl::StrCat("BATON_", absl::AsciiStrToUpper(flag));
}

}  // namespace

std::variant<Config, int> Load(int argc, char** argv) {
  auto flags = OurFlags();
  // Dashes in flag names are underscores; -h is --help.
  std::vector<std::string> args{argv, argv + argc};
  bool after_dashdash = false;
  std::string config_path;
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (after_dashdash) continue;
    if (a == "--") {
      after_dashdash = true;
      continue;
    }
    if (a == "-h") a = "--help";
    if (!absl::StartsWith(a, "-")) continue;
    size_t dashes = absl::StartsWith(a, "--") ? 2 : 1;
    size_t eq = a.find('=');
    std::string name = Canonical(a.substr(dashes, eq == std::string::npos ? a.npos : eq - dashes));
    a = absl::StrCat("--", name, eq == std::string::npos ? "" : a.substr(eq));
    if (name == "help" || name == "helpfull" || name == "helpshort" || name == "?") {
      PrintHelp(flags);
      return 0;
    }
    if (name == "version") {
      std::cout << VersionLine(kProgram) << "\n";
      return 0;
    }
    std::string bare = absl::StartsWith(name, "no") ? name.substr(2) : name;
    bool known = flags.contains(name) || (flags.contains(bare) && flags.at(bare)->IsOfType<bool>());
    if (!known) {
      std::cerr << kProgram << ": unknown flag --" << name << "; `batond --help` lists the flags\n";
      return 2;
    }
    if (name == "config") {
      if (eq != std::string::npos) {
        config_path = args[i].substr(args[i].find('=') + 1);
      } else if (i + 1 < args.size()) {
        config_path = args[i + 1];
      }
    }
  }
  if (config_path.empty()) {
    if (const char* env = std::getenv("BATON_CONFIG")) config_path = env;
  }
  // Lowest first: the file, then the environment; the command line last.
  if (!config_path.empty() && !LoadFile(config_path, flags)) return 2;
  for (const auto& [name, flag] : flags) {
    std::string var = EnvName(name);
    const char* value = std::getenv(var.c_str());
    if (value == nullptr || name == "config") continue;
    if (!Set(flag, value, absl::StrCat("environment variable ", var))) return 2;
  }
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  std::vector<char*> rest = absl::ParseCommandLine(static_cast<int>(cargs.size()), cargs.data());
  if (rest.size() > 1) {
    std::cerr << kProgram << ": unexpected argument '" << rest[1]
              << "': batond takes only flags; `batond --help` lists them\n";
    return 2;
  }

  Config c;
  rpc::ServerOptions& o = c.server;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.shards = absl::GetFlag(FLAGS_shards);
  std::string durability = absl::GetFlag(FLAGS_durability);
  std::vector<std::string> bad;
  auto require = [&bad](bool holds, std::string flag, std::string bound) {
    if (!holds) bad.push_back(absl::StrCat("--", flag, " must be ", bound));
  };
  require(durability == "local" || durability == "none", "durability", "local or none");
  o.durability = durability == "local" ? rpc::Durability::kLocal : rpc::Durability::kNone;
  o.data_dir = absl::GetFlag(FLAGS_data_dir);
  double segment_bytes = absl::GetFlag(FLAGS_wal_segment_mb) * (1 << 20);
  o.wal_segment_bytes =
      segment_bytes >= 4096 && segment_bytes < 1e15 ? static_cast<uint64_t>(segment_bytes) : 0;
  o.snapshot_entries =
      static_cast<uint64_t>(std::max<int64_t>(0, absl::GetFlag(FLAGS_snapshot_entries)));
  o.snapshot_bytes =
      static_cast<uint64_t>(std::max(0.0, absl::GetFlag(FLAGS_snapshot_mb)) * (1 << 20));
  o.max_resources = absl::GetFlag(FLAGS_max_resources);
  o.max_sessions = absl::GetFlag(FLAGS_max_sessions);
  o.max_waiters = absl::GetFlag(FLAGS_max_waiters);
  o.max_waiters_per_resource = absl::GetFlag(FLAGS_max_waiters_per_resource);
  o.max_session_ttl = absl::GetFlag(FLAGS_max_session_ttl_s) * kSecond;
  o.max_lease = absl::GetFlag(FLAGS_max_lease_s) * kSecond;
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.max_queue_items = absl::GetFlag(FLAGS_max_queue_items);
  o.max_item_bytes = absl::GetFlag(FLAGS_max_item_bytes);
  o.max_queue_bytes = absl::GetFlag(FLAGS_max_queue_bytes);
  o.future_retention = absl::GetFlag(FLAGS_future_retention_s) * kSecond;
  o.keepalive_time = absl::GetFlag(FLAGS_keepalive_time_ms) * kMillisecond;
  o.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout_ms) * kMillisecond;
  o.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace_ms) * kMillisecond;
  o.orphan_grace = absl::GetFlag(FLAGS_orphan_grace_ms) * kMillisecond;
  o.requests_per_method = absl::GetFlag(FLAGS_requests_per_method);
  o.node_id = absl::GetFlag(FLAGS_node_id);
  o.peers = absl::GetFlag(FLAGS_peers);
  o.peer_listen = absl::GetFlag(FLAGS_peer_listen);
  o.raftd = absl::GetFlag(FLAGS_raftd);
  o.join = absl::GetFlag(FLAGS_join);
  o.raft_tick_ms = absl::GetFlag(FLAGS_raft_tick_ms);
  o.raft_election_ticks = absl::GetFlag(FLAGS_raft_election_ticks);
  if (!o.peers.empty()) {
    require(o.node_id != 0, "node_id", "given (non-zero) with --peers");
    require(o.durability == rpc::Durability::kLocal, "durability", "local in a cluster");
    require(o.raft_tick_ms >= 1, "raft_tick_ms", "at least 1");
    require(o.raft_election_ticks >= 2, "raft_election_ticks", "at least 2");
  }
  require(o.shards >= 0, "shards", "0 (one per core) or more");
  require(o.max_resources >= 1, "max_resources", "at least 1");
  require(o.max_sessions >= 1, "max_sessions", "at least 1");
  require(o.max_waiters >= 1, "max_waiters", "at least 1");
  require(o.max_waiters_per_resource >= 1, "max_waiters_per_resource", "at least 1");
  require(o.max_session_ttl >= kSecond, "max_session_ttl_s", "at least 1");
  require(o.max_lease >= kSecond, "max_lease_s", "at least 1");
  require(o.orphan_grace >= 0, "orphan_grace_ms", "0 or more");
  require(o.max_message_bytes >= 1024, "max_message_bytes", "at least 1024");
  require(o.requests_per_method >= 1, "requests_per_method", "at least 1");
  require(o.max_queue_items >= 1, "max_queue_items", "at least 1");
  require(o.max_item_bytes >= 1, "max_item_bytes", "at least 1");
  require(static_cast<int64_t>(o.max_item_bytes) <= o.max_message_bytes, "max_item_bytes",
          "at most --max_message_bytes");
  require(o.max_queue_bytes >= 1, "max_queue_bytes", "at least 1");
  require(o.future_retention >= kSecond, "future_retention_s", "at least 1");
  require(o.wal_segment_bytes >= 4096, "wal_segment_mb", "at least 4 KiB (0.00390625)");
  require(absl::GetFlag(FLAGS_snapshot_entries) >= 0, "snapshot_entries", "0 (never) or more");
  require(absl::GetFlag(FLAGS_snapshot_mb) >= 0, "snapshot_mb", "0 (by entries only) or more");
  require(o.keepalive_time >= kMillisecond, "keepalive_time_ms", "at least 1");
  require(o.keepalive_timeout >= kMillisecond, "keepalive_timeout_ms", "at least 1");
  require(o.shutdown_grace >= 0, "shutdown_grace_ms", "0 or more");
  require(!o.data_dir.empty(), "data_dir", "a directory");
  c.restore = absl::GetFlag(FLAGS_restore);
  require(c.restore.empty() || o.durability == rpc::Durability::kLocal, "restore",
          "used with --durability=local (a snapshot is restored into --data_dir)");
  c.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  require(c.metrics_listen.empty() || c.metrics_listen.rfind(':') != std::string::npos,
          "metrics_listen", "HOST:PORT");
  o.slow_apply = absl::GetFlag(FLAGS_slow_apply_ms) * kMillisecond;
  require(o.slow_apply >= kMillisecond, "slow_apply_ms", "at least 1");
  c.log_level = absl::GetFlag(FLAGS_log_level);
  require(c.log_level == "debug" || c.log_level == "info" || c.log_level == "warn" ||
              c.log_level == "error",
          "log_level", "debug, info, warn or error");
  o.tls.cert_file = absl::GetFlag(FLAGS_tls_cert);
  o.tls.key_file = absl::GetFlag(FLAGS_tls_key);
  o.tls.client_ca_file = absl::GetFlag(FLAGS_client_ca);
  o.tls.reload_interval = std::chrono::seconds(absl::GetFlag(FLAGS_tls_reload_s));
  o.tls.allow_plaintext = absl::GetFlag(FLAGS_allow_plaintext);
  if (auto tls = security::CheckTls(o.tls, o.listen); !tls.ok()) {
    bad.push_back(std::string(tls.status().message()));
  } else {
    c.certificate = *tls;
  }
  o.auth.policy_file = absl::GetFlag(FLAGS_auth_policy);
  o.auth.tokens_file = absl::GetFlag(FLAGS_auth_tokens);
  o.auth.reload_interval = std::chrono::seconds(absl::GetFlag(FLAGS_auth_reload_s));
  require(o.auth.reload_interval.count() >= 1, "auth_reload_s", "at least 1");
  if (auto policy = security::Authenticator::Check(o.auth); !policy.ok()) {
    bad.push_back(std::string(policy.status().message()));
  } else {
    c.policy = *std::move(policy);
  }
  c.log_format = absl::GetFlag(FLAGS_log_format);
  require(c.log_format == "text" || c.log_format == "json", "log_format", "text or json");
  if (!bad.empty()) {
    for (const std::string& why : bad) std::cerr << kProgram << ": " << why << "\n";
    return 2;
  }
  for (const auto& [name, flag] : flags) c.effective[name] = flag->CurrentValue();
  return c;
}

}  // namespace baton::config
