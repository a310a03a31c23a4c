// Server::WriteMetrics: the Prometheus exposition of one server. Names
// follow Prometheus conventions (base units, _total for counters); the
// process_* family is the standard one client libraries export.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "service/rpc/call_stats.h"
#include "service/rpc/server.h"
#include "service/version.h"
#include "storage/local_log.h"

namespace baton::rpc {
namespace {

// The shards' gauges, each measured on its own loop. Shared with the posted
// work, which may outlive a scrape that gave up waiting.
struct Measurement {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<apply::ShardState::Gauges> parts;
  uint32_t missing = 0;
};

void WriteProcess(metrics::TextWriter& out, Time started_at) {
  out.Family("process_start_time_seconds", "gauge", "Start time of the process, Unix seconds.");
  out.Sample("process_start_time_seconds", {}, static_cast<double>(started_at / kSecond));
  long page = sysconf(_SC_PAGESIZE);
  long ticks = sysconf(_SC_CLK_TCK);
  std::ifstream statm("/proc/self/statm");
  uint64_t size_pages = 0, resident_pages = 0;
  if (statm >> size_pages >> resident_pages) {
    out.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    out.Sample("process_resident_memory_bytes", {}, static_cast<double>(resident_pages * page));
    out.Family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    out.Sample("process_virtual_memory_bytes", {}, static_cast<double>(size_pages * page));
  }
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    // Fields after the command name, which is in parentheses: utime is the
    // 14th field of the line, stime the 15th.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14) utime = std::stod(field);
      if (i == 15) stime = std::stod(field);
    }
    out.Family("process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
    out.Sample("process_cpu_seconds_total", {}, (utime + stime) / static_cast<double>(ticks));
  }
  std::error_code ec;
  size_t fds = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++fds;
  }
  out.Family("process_open_fds", "gauge", "Open file descriptors.");
  out.Sample("process_open_fds", {}, static_cast<double>(fds));
}

}  // namespace

void Server::WriteMetrics(metrics::TextWriter& out) {
  const BuildInfo& b = Build();
  out.Family("baton_build_info", "gauge", "Always 1; the labels say which build this is.");
  out.Sample("baton_build_info", {{"version", b.version}, {"commit", b.commit}, {"build", b.build}},
             1);
  out.Family("baton_server_role", "gauge",
             "1 for the role this node has now (standalone: a single node).");
  out.Sample("baton_server_role", {{"role", "standalone"}}, 1);
  out.Family("baton_shards", "gauge", "Event-loop threads, each owning a share of resources.");
  out.Sample("baton_shards", {}, cluster_.size());

  CallStats::WriteAll(out);

  int64_t sessions = 0;
  for (uint32_t i = 0; i < cluster_.size(); ++i) sessions += cluster_.shard(i).sessions_gauge();
  out.Family("baton_sessions", "gauge", "Open sessions.");
  out.Sample("baton_sessions", {}, static_cast<double>(sessions));

  // Per kind, from every shard's state.
  auto m = std::make_shared<Measurement>();
  m->parts.resize(cluster_.size());
  m->missing = cluster_.size();
  for (uint32_t i = 0; i < cluster_.size(); ++i) {
    apply::Shard* shard = &cluster_.shard(i);
    shard->loop().Post([m, shard, i] {
      apply::ShardState::Gauges g = shard->Measure();
      std::lock_guard<std::mutex> lock(m->mu);
      m->parts[i] = g;
      if (--m->missing == 0) m->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(m->mu);
  if (m->cv.wait_for(lock, std::chrono::seconds(1), [&] { return m->missing == 0; })) {
    apply::ShardState::Gauges total;
    for (const auto& g : m->parts) {
      for (size_t k = 0; k < apply::kKindCount; ++k) {
        total.kinds[k].resources += g.kinds[k].resources;
        total.kinds[k].holders += g.kinds[k].holders;
        total.kinds[k].waiters += g.kinds[k].waiters;
      }
      total.queue_ready += g.queue_ready;
      total.queue_delayed += g.queue_delayed;
      total.queue_in_flight += g.queue_in_flight;
      total.queue_dead += g.queue_dead;
      total.orphans += g.orphans;
      total.timers += g.timers;
    }
    auto per_kind = [&](const char* family, const char* help,
                        uint64_t apply::ShardState::Gauges::PerKind::*field) {
      out.Family(family, "gauge", help);
      for (size_t k = 0; k < apply::kKindCount; ++k) {
        out.Sample(family, {{"kind", apply::KindName(static_cast<apply::Kind>(k))}},
                   static_cast<double>(total.kinds[k].*field));
      }
    };
    per_kind("baton_resources", "Live resources (names), by kind.",
             &apply::ShardState::Gauges::PerKind::resources);
    per_kind("baton_holders",
             "Holdings of locks and semaphores, and queue items in flight, by kind.",
             &apply::ShardState::Gauges::PerKind::holders);
    per_kind("baton_waiters", "Pending waits in line, by kind of resource.",
             &apply::ShardState::Gauges::PerKind::waiters);
    out.Family("baton_orphaned_waiters", "gauge",
               "Waits kept in line after a restart for their client's retry.");
    out.Sample("baton_orphaned_waiters", {}, static_cast<double>(total.orphans));
    out.Family("baton_queue_items", "gauge",
               "Items in all queues, by state (ready, delayed, in_flight, dead).");
    out.Sample("baton_queue_items", {{"state", "ready"}}, static_cast<double>(total.queue_ready));
    out.Sample("baton_queue_items", {{"state", "delayed"}},
               static_cast<double>(total.queue_delayed));
    out.Sample("baton_queue_items", {{"state", "in_flight"}},
               static_cast<double>(total.queue_in_flight));
    out.Sample("baton_queue_items", {{"state", "dead"}}, static_cast<double>(total.queue_dead));
    out.Family("baton_timers", "gauge",
               "Deadlines the state machine keeps: waits, leases, sessions, user timers.");
    out.Sample("baton_timers", {}, static_cast<double>(total.timers));
  }
  lock.unlock();

  out.Family("baton_log_applied_index", "gauge", "Index of the last log entry applied.");
  out.Sample("baton_log_applied_index", {}, static_cast<double>(applied_index()));
  if (local_log_ != nullptr) {
    storage::LocalLog::Stats s = local_log_->stats();
    out.Family("baton_log_entries_total", "counter", "Entries appended to the write-ahead log.");
    out.Sample("baton_log_entries_total", {}, static_cast<double>(s.entries));
    out.Family("baton_log_bytes_total", "counter", "Bytes appended to the write-ahead log.");
    out.Sample("baton_log_bytes_total", {}, static_cast<double>(s.bytes));
    out.Family("baton_log_batches_total", "counter",
               "Batches written to the write-ahead log (one fdatasync each).");
    out.Sample("baton_log_batches_total", {}, static_cast<double>(s.batches));
    out.Family("baton_log_segments", "gauge", "Write-ahead log segment files.");
    out.Sample("baton_log_segments", {},
               static_cast<double>(s.segments_created) - static_cast<double>(s.segments_deleted));
    out.Family("baton_log_fsync_duration_seconds", "histogram",
               "Time fdatasync took for a batch of the write-ahead log.");
    out.Histogram("baton_log_fsync_duration_seconds", {}, local_log_->sync_nanos().Read(), 1e-9);
    out.Family("baton_log_batch_entries", "histogram",
               "Entries per batch of the write-ahead log (group commit).");
    out.Histogram("baton_log_batch_entries", {}, local_log_->batch_entries().Read(), 1);
  }
  if (snapshotter_ != nullptr) {
    log::Snapshotter::Stats s = snapshotter_->stats();
    out.Family("baton_snapshots_total", "counter", "Snapshots written, and failed.");
    out.Sample("baton_snapshots_total", {{"outcome", "written"}}, static_cast<double>(s.taken));
    out.Sample("baton_snapshots_total", {{"outcome", "failed"}}, static_cast<double>(s.failed));
    out.Family("baton_snapshot_index", "gauge", "Log index the newest snapshot covers.");
    out.Sample("baton_snapshot_index", {},
               static_cast<double>(std::max(s.last_index, restored_index_)));
    out.Family("baton_snapshot_bytes", "gauge", "Size of the newest snapshot.");
    out.Sample("baton_snapshot_bytes", {}, static_cast<double>(s.last_bytes));
    out.Family("baton_snapshot_duration_seconds", "gauge",
               "Time the newest snapshot took, by phase: cut (serialising every shard) and "
               "write (writing and syncing the file).");
    out.Sample("baton_snapshot_duration_seconds", {{"phase", "cut"}}, s.last_cut_ms / 1e3);
    out.Sample("baton_snapshot_duration_seconds", {{"phase", "write"}}, s.last_write_ms / 1e3);
  }
  WriteProcess(out, started_at_);
}

}  // namespace baton::rpc
