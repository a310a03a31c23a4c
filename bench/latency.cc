// Nearest-rank percentiles of latency samples.
#include "bench/latency.h"

#include <algorithm>
#include <cmath>

namespace baton::bench {
namespace {

// The nearest-rank percentile p (0 < p <= 1) of sorted `samples`, in us.
double Percentile(const std::vector<int64_t>& sorted, double p) {
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

}  // namespace

LatencySummary Summarize(std::vector<int64_t>& samples_ns) {
  LatencySummary summary;
  if (samples_ns.empty()) return summary;
  std::sort(samples_ns.begin(), samples_ns.end());
  summary.p50_us = Percentile(samples_ns, 0.50);
  summary.p99_us = Percentile(samples_ns, 0.99);
  summary.p999_us = Percentile(samples_ns, 0.999);
  summary.max_us = static_cast<double>(samples_ns.back()) / 1000.0;
  return summary;
}

}  // namespace baton::bench
