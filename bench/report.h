// Formatting of a benchmark Result for people (text) and scripts (one JSON
// object per line).
#ifndef BATON_BENCH_REPORT_H_
#define BATON_BENCH_REPORT_H_

#include <string>

#include "bench/driver.h"
#include "bench/options.h"

namespace baton::bench {

// A few lines of text, ending in a newline.
std::string FormatText(const Options& options, const Result& result);

// One JSON object on one line, ending in a newline. Keys: target,
// session_stream (off, per-client, shared), workload,
// clients (queue: producers, and as many consumers), backlog (queue only; 0
// otherwise), seconds, count, rate, unit, latency_of, p50_us, p99_us, p999_us,
// max_us, min_per_client, max_per_client, fairness (null when some client got
// nothing), ops_per_message and answers_per_message (--session-stream shared;
// 0 otherwise), failed_clients, error.
std::string FormatJson(const Options& options, const Result& result);

}  // namespace baton::bench

#endif  // BATON_BENCH_REPORT_H_
