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

#include <cstdint>
#include <string>

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
};

// Runs the benchmark described by `options`. Never fails as a whole: client
// errors are reported in the result.
Result RunBenchmark(const Options& options);

}  // namespace baton::bench

#endif  // BATON_BENCH_DRIVER_H_
