// Latency percentiles from raw samples. Every measured sample is kept (a run
// produces at most a few hundred thousand) and sorted once at the end, so
// the percentiles are exact rather than bucketed.
#ifndef BATON_BENCH_LATENCY_H_
#define BATON_BENCH_LATENCY_H_

#include <cstdint>
#include <vector>

namespace baton::bench {

struct LatencySummary {
  // In microseconds; all zero when there were no samples.
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double max_us = 0;
};

// Returns the nearest-rank percentiles of `samples_ns` (nanoseconds).
// Reorders `samples_ns`.
LatencySummary Summarize(std::vector<int64_t>& samples_ns);

}  // namespace baton::bench

#endif  // BATON_BENCH_LATENCY_H_
