// CallStats: how the calls of one method ended, by status code, and how
// long unary calls took, for the metrics endpoint. One per method and
// transport ("unary": a gRPC call; "stream": an operation on a session
// stream), created on first use and never freed.
//
// The method is found from the request type (each baton.v1 method has its
// own): "Locks/Acquire".
//
// Threading: For and Finished from any thread (loop threads record with
// relaxed atomic adds); WriteAll from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "metrics/histogram.h"
#include "metrics/text_writer.h"

namespace baton::rpc {

class CallStats {
 public:
  static CallStats* For(const google::protobuf::Descriptor* request, const char* transport);

  // A call ended with `code`, after `nanos` (negative: not timed).
  void Finished(absl::StatusCode code, int64_t nanos) {
    auto i = static_cast<size_t>(code);
    codes_[i < codes_.size() ? i : static_cast<size_t>(absl::StatusCode::kUnknown)].fetch_add(
        1, std::memory_order_relaxed);
    if (nanos >= 0) latency_.Observe(static_cast<uint64_t>(nanos));
  }

  // baton_rpc_calls_total{method,transport,code} and
  // baton_rpc_duration_seconds{method} of every method used so far.
  static void WriteAll(metrics::TextWriter& out);

 private:
  CallStats(std::string method, const char* transport);

  const std::string method_;
  const char* const transport_;
  std::array<std::atomic<uint64_t>, 17> codes_{};
  // 100 µs .. ~105 s.
  metrics::Histogram latency_{metrics::Histogram::Exponential(100'000, 4, 11)};
};

}  // namespace baton::rpc
