// batond: the Baton server. Flags -> options -> server; waits for SIGINT or
// SIGTERM, then shuts down in order and exits 0.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "service/rpc/server.h"

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

namespace {

bool OurFlag(absl::string_view file) { return absl::StrContains(file, "service/main.cc"); }

}  // namespace

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_helpshort_flags = OurFlag;
  usage.contains_help_flags = OurFlag;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "Baton coordination server: asyncio's primitives shared over gRPC.\n"
      "Usage: batond [--listen 127.0.0.1:7411] [flags]");
  absl::ParseCommandLine(argc, argv);
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock
  // detection on: every lock gRPC takes then also updates a process-wide
  // lock graph under a global mutex (GraphCycles in a profile of batond).
  // It is a debugging aid; batond does without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals in every thread; the main thread waits for them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  baton::rpc::ServerOptions o;
  o.listen = absl::GetFlag(FLAGS_listen);
  o.shards = absl::GetFlag(FLAGS_shards);
  std::string durability = absl::GetFlag(FLAGS_durability);
  if (durability == "local") {
    o.durability = baton::rpc::Durability::kLocal;
  } else if (durability != "none") {
    std::cerr << "batond: --durability must be local or none, not '" << durability << "'\n";
    return 2;
  }
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
  o.max_session_ttl = absl::GetFlag(FLAGS_max_session_ttl_s) * baton::kSecond;
  o.max_lease = absl::GetFlag(FLAGS_max_lease_s) * baton::kSecond;
  o.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  o.max_queue_items = absl::GetFlag(FLAGS_max_queue_items);
  o.max_item_bytes = absl::GetFlag(FLAGS_max_item_bytes);
  o.max_queue_bytes = absl::GetFlag(FLAGS_max_queue_bytes);
  o.future_retention = absl::GetFlag(FLAGS_future_retention_s) * baton::kSecond;
  o.keepalive_time = absl::GetFlag(FLAGS_keepalive_time_ms) * baton::kMillisecond;
  o.keepalive_timeout = absl::GetFlag(FLAGS_keepalive_timeout_ms) * baton::kMillisecond;
  o.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace_ms) * baton::kMillisecond;
  o.orphan_grace = absl::GetFlag(FLAGS_orphan_grace_ms) * baton::kMillisecond;
  o.requests_per_method = absl::GetFlag(FLAGS_requests_per_method);
  if (o.shards < 0 || o.max_resources < 1 || o.max_sessions < 1 || o.max_waiters < 1 ||
      o.max_waiters_per_resource < 1 || o.max_session_ttl < baton::kSecond || o.orphan_grace < 0 ||
      o.max_lease < baton::kMillisecond || o.max_message_bytes < 1024 ||
      o.requests_per_method < 1 || o.max_queue_items < 1 || o.max_item_bytes < 1 ||
      static_cast<int64_t>(o.max_item_bytes) > o.max_message_bytes || o.max_queue_bytes < 1 ||
      o.future_retention < baton::kSecond || o.wal_segment_bytes < 4096 ||
      absl::GetFlag(FLAGS_snapshot_entries) < 0 || absl::GetFlag(FLAGS_snapshot_mb) < 0 ||
      o.data_dir.empty()) {
    std::cerr << "batond: a flag is out of range; see --help\n";
    return 2;
  }

  auto server = baton::rpc::Server::Start(o);
  if (!server.ok()) {
    std::cerr << "batond: " << server.status().message() << "\n";
    return 1;
  }
  std::string host = o.listen.substr(0, o.listen.rfind(':'));
  // Tests and scripts read this exact line to learn the port.
  std::cout << "listening on " << host << ":" << (*server)->port() << std::endl;
  std::cerr << "batond: " << (*server)->shard_count() << " shards\n";
  if (o.durability == baton::rpc::Durability::kLocal) {
    std::error_code ec;
    std::cerr << "batond: durable: state in " << std::filesystem::absolute(o.data_dir, ec).string()
              << " (snapshot at log index " << (*server)->restored_index() << ", "
              << (*server)->replayed() << " log entries replayed after it)\n";
  } else {
    std::cerr << "batond: WARNING: --durability=none: state is in memory only; everything is "
                 "lost when batond stops\n";
  }

  int sig = 0;
  sigwait(&stop, &sig);
  std::cerr << "batond: " << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ", shutting down\n";
  (*server)->Shutdown();
  server->reset();
  std::cerr << "batond: stopped\n";
  return 0;
}
