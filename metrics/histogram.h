// Histogram: counts of observations under fixed upper bounds, with their
// count and sum, as Prometheus histograms expose them. Observations are
// integers in a base unit the owner chooses (nanoseconds, entries, bytes);
// the exposition scales them (text_writer.h).
//
// Threading: Observe from any thread (relaxed atomic adds: a scrape may see
// one observation counted in a bucket and not yet in the count, which
// Prometheus tolerates); Read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace baton::metrics {

class Histogram {
 public:
  // `bounds`: ascending upper bounds (the +Inf bucket is implied).
  explicit Histogram(std::vector<uint64_t> bounds)
      : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
    for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
  }

  void Observe(uint64_t value) {
    size_t i = 0;
    while (i < bounds_.size() && value > bounds_[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<uint64_t> bounds;
    std::vector<uint64_t> cumulative;  // per bound, then +Inf (= count)
    uint64_t sum = 0;
  };
  Snapshot Read() const {
    Snapshot s;
    s.bounds = bounds_;
    uint64_t running = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      running += buckets_[i].load(std::memory_order_relaxed);
      s.cumulative.push_back(running);
    }
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
  }

  // Bounds growing by `factor` from `first`, `count` of them.
  static std::vector<uint64_t> Exponential(uint64_t first, double factor, int count) {
    std::vector<uint64_t> out;
    double b = static_cast<double>(first);
    for (int i = 0; i < count; ++i, b *= factor) out.push_back(static_cast<uint64_t>(b));
    return out;
  }

 private:
  const std::vector<uint64_t> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<uint64_t> sum_{0};
};

}  // namespace baton::metrics
