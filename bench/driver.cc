// Client threads, the shared timeline and the merging of their measurements.
#include "bench/driver.h"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <limits>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/lock_client.h"
#include "bench/shared_stream_driver.h"

namespace baton::bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long a client may take to connect before it counts as failed.
constexpr std::chrono::seconds kConnectTimeout(10);

// The shared timeline; written once by the barrier's completion, before any
// client reads it.
struct Timeline {
  Clock::time_point from;
  Clock::time_point until;
};

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

absl::Status Prepare(const Options& options, int index, std::unique_ptr<LockClient>& client) {
  const auto call_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(options.call_timeout));
  if (options.target == Target::kRedis) {
    // Not gRPC: a TCP connection, made by Open.
    client = NewRedisLockClient(options.addr, index, kConnectTimeout, call_timeout);
    return client->Open();
  }
  std::shared_ptr<grpc::Channel> channel = NewClientChannel(options.addr, index);
  if (absl::Status status = WaitForConnected(*channel, kConnectTimeout); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(options.addr, ": ", status.message()));
  }
  if (options.session_stream == SessionStreamMode::kPerClient) {
    client = NewStreamLockClient(index, std::move(channel), call_timeout, StreamDeadline(options));
    return client->Open();
  }
  client = NewLockClient(options.target, index, std::move(channel), call_timeout);
  if (client == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--target ", TargetName(options.target), " has no lock client"));
  }
  return client->Open();
}

// The body of client thread `index`.
template <typename Barrier>
void RunClient(const Options& options, int index, Barrier& ready, const Timeline& timeline,
               ClientRecord& record) {
  std::unique_ptr<LockClient> client;
  record.status = Prepare(options, index, client);
  // Every client arrives, failed or not, so that nobody waits forever.
  ready.arrive_and_wait();
  if (!record.status.ok()) return;

  const bool contended = options.workload == Workload::kContended;
  const std::string name = contended ? std::string(kContendedLock) : UncontendedLock(index);
  for (;;) {
    const Clock::time_point begin = Clock::now();
    if (record.status = client->Acquire(name); !record.status.ok()) break;
    const Clock::time_point granted = Clock::now();
    if (record.status = client->Release(); !record.status.ok()) break;
    const Clock::time_point end = Clock::now();
    // Count an event when it happens inside the window: a grant under
    // contention (handoffs), a completed cycle otherwise.
    const Clock::time_point event = contended ? granted : end;
    if (event >= timeline.from && event < timeline.until) {
      ++record.count;
      record.latencies_ns.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(event - begin).count());
    }
    if (end >= timeline.until) break;
  }
  client->Close();
}

}  // namespace

Result RunBenchmark(const Options& options) {
  if (options.session_stream == SessionStreamMode::kShared) {
    return RunSharedStreamLockBenchmark(options);
  }
  std::vector<ClientRecord> records(options.clients);
  Timeline timeline;
  auto start = [&]() noexcept {
    timeline.from = Clock::now() + Seconds(options.warmup);
    timeline.until = timeline.from + Seconds(options.seconds);
  };
  std::barrier ready(options.clients, start);
  {
    std::vector<std::jthread> threads;
    threads.reserve(options.clients);
    for (int i = 0; i < options.clients; ++i) {
      threads.emplace_back([&, i] { RunClient(options, i, ready, timeline, records[i]); });
    }
  }  // Joins every client.
  return MergeRecords(records, options.seconds);
}

Result MergeRecords(std::vector<ClientRecord>& records, double seconds) {
  Result result;
  result.min_per_client = records.empty() ? 0 : std::numeric_limits<int64_t>::max();
  std::vector<int64_t> latencies;
  for (ClientRecord& record : records) {
    if (!record.status.ok()) {
      if (result.failed_clients++ == 0) result.first_error = record.status;
    }
    result.count += record.count;
    result.min_per_client = std::min(result.min_per_client, record.count);
    result.max_per_client = std::max(result.max_per_client, record.count);
    latencies.insert(latencies.end(), record.latencies_ns.begin(), record.latencies_ns.end());
    record.latencies_ns.clear();
  }
  result.rate = static_cast<double>(result.count) / seconds;
  result.fairness = result.min_per_client > 0 ? static_cast<double>(result.max_per_client) /
                                                    static_cast<double>(result.min_per_client)
                                              : std::numeric_limits<double>::infinity();
  result.latency = Summarize(latencies);
  return result;
}

std::chrono::system_clock::time_point StreamDeadline(const Options& options) {
  // Setup, warm-up, window, then a drain: a queue consumer may look for its
  // stop marker for 30 s, a lock user wait one call timeout.
  const double seconds = 10 + options.warmup + options.seconds + 30 + 2 * options.call_timeout;
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             std::chrono::duration<double>(seconds));
}

}  // namespace baton::bench
