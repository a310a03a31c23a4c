// The benchmark driver: runs Options::clients client threads, each with its
// own channel and LockClient, through a warm-up and a measured window, and
// gathers what they measured.
//
// Timeline, shared by all clients:
//   connect + LockClient::Open      (not timed; all clients wait for each other)
//   warm-up  [start, from)          cycles run but are not counted
//   window   [from, from + seconds) counted: uncontended, cycles completed;
//                                   contended, acquisitions granted
//   drain                           each client finishes its cycle and stops
//
// Uncontended latency is that of a whole cycle (acquire + release);
// contended latency is that of an acquire, i.e. the wait in line.
#ifndef BATON_BENCH_DRIVER_H_
#define BATON_BENCH_DRIVER_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "bench/latency.h"
#include "bench/options.h"

namespace baton::bench {

struct Result {
  // Cycles (uncontended) or acquisitions (contended) counted in the window.
  int64_t count = 0;
  // count / window, per second.
  double rate = 0;
  // Fewest and most counted by a single client, and their ratio (max/min;
  // infinite when some client got nothing).
  int64_t min_per_client = 0;
  int64_t max_per_client = 0;
  double fairness = 0;
  LatencySummary latency;
  // Clients that stopped on an error, and the first such error.
  int failed_clients = 0;
  absl::Status first_error;
  // --session-stream shared: operations per message written and answers per
  // message read, over the whole run (0 otherwise).
  double ops_per_message = 0;
  double answers_per_message = 0;
};

// Runs the lock benchmark described by `options` (uncontended or
// contended; with --session-stream shared, RunSharedStreamLockBenchmark).
// Never fails as a whole: client errors are reported in the result.
Result RunBenchmark(const Options& options);

// What one client (a thread, or a user of a shared stream) measured.
struct ClientRecord {
  int64_t count = 0;
  std::vector<int64_t> latencies_ns;
  absl::Status status;
};

// Merges what the clients measured in a window of `seconds`: sums, rate,
// fairness, percentiles, failures. Reorders and empties the latencies.
Result MergeRecords(std::vector<ClientRecord>& records, double seconds);

// The deadline of a session stream opened now for a run of `options`: past
// setup, warm-up, window and the longest drain, so that it only ever ends a
// stream whose server is stuck.
std::chrono::system_clock::time_point StreamDeadline(const Options& options);

}  // namespace baton::bench

#endif  // BATON_BENCH_DRIVER_H_
