// baton_wal_bench: how many entries per second LocalLog commits, and with
// how many fdatasyncs, when `threads` proposers each keep one entry in
// flight (a closed loop, like that many clients waiting for replies).
//
//   baton_wal_bench --dir=/work/tmp --threads=16 --seconds=2 --bytes=100
//
// Writes into a fresh directory under --dir and removes it afterwards.
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/synchronization/mutex.h"
#include "storage/local_log.h"

ABSL_FLAG(std::string, dir, ".", "parent of the temporary log directory (pick the disk to test)");
ABSL_FLAG(int, threads, 16, "proposer threads, each with one entry in flight");
ABSL_FLAG(double, seconds, 2.0, "how long to propose");
ABSL_FLAG(int, bytes, 100, "payload bytes per entry");
ABSL_FLAG(bool, sync, true, "fdatasync each batch (false: page cache only)");
ABSL_FLAG(int, segment_mb, 64, "segment size in MiB");

namespace {

using Clock = std::chrono::steady_clock;

// One proposer's entry in flight: set by the log's thread, awaited by the
// proposer.
struct Slot {
  absl::Mutex mu;
  uint64_t done ABSL_GUARDED_BY(mu) = 0;
};

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  using baton::storage::LocalLog;
  const int threads = absl::GetFlag(FLAGS_threads);
  const auto duration = std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds));

  std::string pattern = absl::GetFlag(FLAGS_dir) + "/wal_bench.XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::perror(pattern.c_str());
    return 1;
  }
  const std::string dir = pattern;

  LocalLog::Options options;
  options.directory = dir + "/wal";
  options.sync = absl::GetFlag(FLAGS_sync);
  options.segment_bytes = uint64_t(absl::GetFlag(FLAGS_segment_mb)) << 20;
  LocalLog log(options);

  std::vector<std::unique_ptr<Slot>> slots;
  for (int t = 0; t < threads; ++t) slots.push_back(std::make_unique<Slot>());
  bool failed = false;
  auto opened = log.Open(0, [](uint64_t, std::string_view) { return absl::OkStatus(); },
                         {.committed =
                              [&](uint64_t, std::string_view, uint64_t cookie) {
                                absl::MutexLock lock(&slots[cookie]->mu);
                                ++slots[cookie]->done;
                              },
                          .rejected =
                              [&](uint64_t cookie, absl::Status why) {
                                std::fprintf(stderr, "rejected: %s\n", why.ToString().c_str());
                                failed = true;
                                absl::MutexLock lock(&slots[cookie]->mu);
                                ++slots[cookie]->done;
                              },
                          .fatal =
                              [&](absl::Status why) {
                                std::fprintf(stderr, "fatal: %s\n", why.ToString().c_str());
                                failed = true;
                              }});
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    return 1;
  }

  std::vector<std::vector<double>> latencies(threads);
  const std::string payload(absl::GetFlag(FLAGS_bytes), 'p');
  const Clock::time_point start = Clock::now();
  const Clock::time_point stop = start + std::chrono::duration_cast<Clock::duration>(duration);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      Slot& slot = *slots[t];
      for (uint64_t n = 1; Clock::now() < stop; ++n) {
        Clock::time_point begin = Clock::now();
        log.Propose({payload, uint64_t(t)});
        absl::MutexLock lock(&slot.mu);
        auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(slot.mu) { return slot.done >= n; };
        slot.mu.Await(absl::Condition(&done));
        latencies[t].push_back(
            std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
      }
    });
  }
  for (std::thread& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  LocalLog::Stats s = log.stats();
  log.Close();
  std::filesystem::remove_all(dir);

  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all.empty() ? 0.0 : all[size_t(p * (all.size() - 1))]; };
  std::printf(
      "threads=%d bytes=%d sync=%d elapsed=%.2fs\n"
      "entries=%llu (%.0f/s)  batches=%llu  fdatasyncs=%llu (%.0f/s)  entries/batch=%.1f  "
      "MB/s=%.1f\n"
      "commit latency us: p50=%.0f p90=%.0f p99=%.0f max=%.0f\n",
      threads, absl::GetFlag(FLAGS_bytes), int(options.sync), elapsed,
      (unsigned long long)s.entries, s.entries / elapsed, (unsigned long long)s.batches,
      (unsigned long long)s.syncs, s.syncs / elapsed,
      s.batches ? double(s.entries) / s.batches : 0.0, s.bytes / elapsed / 1e6, pct(0.5), pct(0.9),
      pct(0.99), all.empty() ? 0.0 : all.back());
  return failed ? 1 : 0;
}
