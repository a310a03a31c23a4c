// baton-bench: the end-to-end load tool. Drives Baton (unary calls or session
// streams), the bare gRPC echo ceiling (baton-echo), etcd or Redis with the
// same client design (lock workloads), or Baton, Redis or beanstalkd (queue
// workload), and reports rates, latency percentiles and fairness; or
// measures what parked waits cost batond in memory (waits workload). See
// docs/benchmarks.md.
//
// Exit status: 0 when every client ran and something was counted (waits:
// every wait was pending and answered), 1 when a client failed or nothing
// was counted, 2 on bad flags.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "bench/driver.h"
#include "bench/options.h"
#include "bench/queue_driver.h"
#include "bench/report.h"
#include "bench/waits_memory.h"

int main(int argc, char** argv) {
  using baton::bench::Options;
  std::vector<absl::string_view> args(argv + 1, argv + argc);
  absl::StatusOr<Options> options = baton::bench::ParseOptions(args);
  if (!options.ok()) {
    std::fprintf(stderr, "baton-bench: %s\n\n%s", std::string(options.status().message()).c_str(),
                 baton::bench::Usage().c_str());
    return 2;
  }
  if (options->help) {
    std::fputs(baton::bench::Usage().c_str(), stdout);
    return 0;
  }

  if (options->workload == baton::bench::Workload::kWaits) {
    return baton::bench::RunWaitsMemory(*options);
  }
  const baton::bench::Result result = options->workload == baton::bench::Workload::kQueue
                                          ? baton::bench::RunQueueBenchmark(*options)
                                          : baton::bench::RunBenchmark(*options);
  const std::string report = options->json ? baton::bench::FormatJson(*options, result)
                                           : baton::bench::FormatText(*options, result);
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);

  if (result.failed_clients > 0) {
    std::fprintf(stderr, "baton-bench: %d client(s) failed: %s\n", result.failed_clients,
                 result.first_error.ToString().c_str());
    return 1;
  }
  if (result.count == 0) {
    std::fprintf(stderr, "baton-bench: nothing completed inside the window\n");
    return 1;
  }
  return 0;
}
