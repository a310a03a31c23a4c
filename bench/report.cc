// Text and JSON renderings of a benchmark Result.
#include "bench/report.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace baton::bench {
namespace {

absl::string_view Unit(const Options& options) {
  switch (options.workload) {
    case Workload::kUncontended:
      return "cycles/s";
    case Workload::kContended:
      return "handoffs/s";
    case Workload::kQueue:
      return "items/s";
    case Workload::kWaits:
      break;  // Reported by RunWaitsMemory.
  }
  return "?";
}

absl::string_view LatencyOf(const Options& options) {
  switch (options.workload) {
    case Workload::kUncontended:
      return "cycle";
    case Workload::kContended:
      return "acquire";
    case Workload::kQueue:
      return "put-to-get";
    case Workload::kWaits:
      break;
  }
  return "?";
}

std::string JsonString(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      absl::StrAppend(&out, "\\", std::string(1, c));
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", static_cast<unsigned char>(c));
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string FormatText(const Options& options, const Result& result) {
  const std::string clients =
      options.workload == Workload::kQueue
          ? absl::StrFormat("%d producers + %d consumers (backlog %d, batch %d)", options.clients,
                            options.clients, options.backlog, options.batch)
          : absl::StrFormat("%d clients", options.clients);
  const std::string target =
      options.session_stream == SessionStreamMode::kOff
          ? std::string(TargetName(options.target))
          : absl::StrCat(TargetName(options.target),
                         " (session stream: ", SessionStreamName(options.session_stream), ")");
  std::string out = absl::StrFormat(
      "%s %s, %s, %.2f s window\n"
      "  rate       %.1f %s (%d counted)\n"
      "  latency    p50 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us (per %s)\n"
      "  fairness   %s (max/min per client: %d/%d)\n",
      target, WorkloadName(options.workload), clients, options.seconds, result.rate, Unit(options),
      result.count, result.latency.p50_us, result.latency.p99_us, result.latency.p999_us,
      result.latency.max_us, LatencyOf(options),
      std::isfinite(result.fairness) ? absl::StrFormat("%.2f", result.fairness) : "inf",
      result.max_per_client, result.min_per_client);
  if (result.ops_per_message > 0) {
    absl::StrAppendFormat(&out,
                          "  batching   %.1f operations per message sent, %.1f answers per "
                          "message received\n",
                          result.ops_per_message, result.answers_per_message);
  }
  if (result.failed_clients > 0) {
    absl::StrAppend(&out, "  errors     ", result.failed_clients,
                    " client(s) failed; first: ", result.first_error.ToString(), "\n");
  }
  return out;
}

std::string FormatJson(const Options& options, const Result& result) {
  return absl::StrFormat(
      "{\"target\":\"%s\",\"session_stream\":\"%s\",\"workload\":\"%s\",\"clients\":%d,"
      "\"backlog\":%d,\"batch\":%d,\"seconds\":%g,"
      "\"count\":%d,\"rate\":%.1f,\"unit\":\"%s\",\"latency_of\":\"%s\","
      "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
      "\"min_per_client\":%d,\"max_per_client\":%d,\"fairness\":%s,"
      "\"ops_per_message\":%.2f,\"answers_per_message\":%.2f,"
      "\"failed_clients\":%d,\"error\":%s}\n",
      TargetName(options.target), SessionStreamName(options.session_stream),
      WorkloadName(options.workload), options.clients,
      options.workload == Workload::kQueue ? options.backlog : 0,
      options.workload == Workload::kQueue ? options.batch : 0, options.seconds, result.count,
      result.rate, Unit(options), LatencyOf(options), result.latency.p50_us, result.latency.p99_us,
      result.latency.p999_us, result.latency.max_us, result.min_per_client, result.max_per_client,
      std::isfinite(result.fairness) ? absl::StrFormat("%.3f", result.fairness) : "null",
      result.ops_per_message, result.answers_per_message, result.failed_clients,
      JsonString(result.failed_clients > 0 ? result.first_error.ToString() : ""));
}

}  // namespace baton::bench
