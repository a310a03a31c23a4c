// Producer and consumer threads of the queue workload, their shared timeline
// and the merging of what the consumers measured.
#include "bench/queue_driver.h"

#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/queue_client.h"
#include "bench/queue_item.h"
#include "bench/session_stream.h"
#include "bench/shared_stream_driver.h"

namespace baton::bench {
namespace {

using Clock = std::chrono::steady_clock;

// How long a client may take to connect before it counts as failed.
constexpr std::chrono::seconds kConnectTimeout(10);
// How long after the window consumers keep getting before they give up on
// the stop markers (a producer failed, or the server lost items).
constexpr std::chrono::seconds kDrainTimeout(30);

// The shared timeline; written once by the barrier's completion, before any
// thread reads it.
struct Timeline {
  Clock::time_point from;
  Clock::time_point until;
  Clock::time_point give_up;
};

// Items one producer has put that no consumer has got yet.
struct Backlog {
  std::mutex mu;
  std::condition_variable below_limit;
  int64_t items = 0;  // Guarded by mu.
};

// Everything the threads share.
struct Shared {
  explicit Shared(const Options& o) : options(o), backlogs(o.clients), producers_left(o.clients) {}

  const Options& options;
  // Tells this run's items from leftovers of earlier runs.
  const uint64_t run = std::random_device()() * uint64_t{0x100000000} + std::random_device()();
  Timeline timeline;
  std::vector<Backlog> backlogs;
  // Producers that have not finished yet; the last one puts the stop markers.
  std::atomic<int> producers_left;
  // --session-stream shared: the one stream every thread's client uses.
  std::unique_ptr<SharedStream> stream;
};

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

std::chrono::milliseconds CallTimeout(const Options& options) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::duration<double>(options.call_timeout));
}

std::unique_ptr<QueueClient> Open(const Shared& shared, QueueRole role, int index,
                                  absl::Status* status) {
  const Options& options = shared.options;
  // Consumers' gRPC channels are told apart from producers' by their index.
  const int channel_index = role == QueueRole::kProducer ? index : options.clients + index;
  std::unique_ptr<QueueClient> client =
      options.session_stream == SessionStreamMode::kOff
          ? NewQueueClient(options.target, role, channel_index, options.addr, CallTimeout(options),
                           options.queue_stream, options.batch)
          : NewStreamQueueClient(role, channel_index, options.addr, StreamDeadline(options),
                                 shared.stream.get(), options.batch);
  if (client == nullptr) {
    *status = absl::InvalidArgumentError(
        absl::StrCat("--target ", TargetName(options.target), " has no queue client"));
    return nullptr;
  }
  *status = client->Open(kConnectTimeout);
  return client;
}

// Puts items, options.batch at a time, until the window ends, at most
// options.backlog of them not got yet at any time.
absl::Status Produce(Shared& shared, int index, QueueClient& client) {
  const int64_t limit = shared.options.backlog;
  const int batch = shared.options.batch;
  const Clock::time_point until = shared.timeline.until;
  Backlog& backlog = shared.backlogs[index];
  std::vector<std::string> items(batch);
  for (;;) {
    if (limit > 0) {
      std::unique_lock lock(backlog.mu);
      if (!backlog.below_limit.wait_until(lock, until,
                                          [&] { return backlog.items + batch <= limit; })) {
        break;  // The window ended while consumers were behind.
      }
    }
    const Clock::time_point put_at = Clock::now();
    if (put_at >= until) break;
    if (limit > 0) {
      // Counted before the Put: a consumer may get an item before Put
      // returns. Only this thread adds, so the limit still holds.
      std::lock_guard lock(backlog.mu);
      backlog.items += batch;
    }
    const int64_t put_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(put_at.time_since_epoch()).count();
    for (std::string& item : items) EncodeItem(shared.run, index, put_ns, &item);
    absl::Status status = batch == 1 ? client.Put(items[0]) : client.PutMany(items);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// Tells producer `producer` that one of its items was got.
void ReleaseBacklog(Shared& shared, int producer) {
  const int64_t limit = shared.options.backlog;
  if (limit == 0) return;
  Backlog& backlog = shared.backlogs[producer];
  bool room;
  {
    std::lock_guard lock(backlog.mu);
    // The producer waits for room for a whole batch.
    room = --backlog.items + shared.options.batch <= limit;
  }
  if (room) backlog.below_limit.notify_one();
}

// Gets and acknowledges items until a stop marker of this run comes; counts
// those got inside the window.
absl::Status Consume(Shared& shared, QueueClient& client, ClientRecord& record) {
  const Timeline& timeline = shared.timeline;
  std::string data;
  for (;;) {
    if (Clock::now() >= timeline.give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("no stop marker within ", kDrainTimeout.count(), " s after the window"));
    }
    absl::StatusOr<bool> got = client.Get(&data);
    const Clock::time_point got_at = Clock::now();
    if (!got.ok()) return got.status();
    if (!*got) continue;  // The queue stayed empty for kGetTimeout.
    const DecodedItem item = DecodeItem(data, shared.run);
    if (item.kind == ItemKind::kItem && item.producer < shared.options.clients) {
      ReleaseBacklog(shared, item.producer);
      if (got_at >= timeline.from && got_at < timeline.until) {
        ++record.count;
        record.latencies_ns.push_back(
            std::chrono::duration_cast<std::chrono::nanoseconds>(got_at.time_since_epoch())
                .count() -
            item.put_ns);
      }
    }
    if (absl::Status status = client.Ack(); !status.ok()) return status;
    if (item.kind == ItemKind::kStop) return absl::OkStatus();
  }
}

template <typename Barrier>
void RunProducer(Shared& shared, int index, Barrier& ready, ClientRecord& record) {
  std::unique_ptr<QueueClient> client = Open(shared, QueueRole::kProducer, index, &record.status);
  // Every thread arrives, failed or not, so that nobody waits forever.
  ready.arrive_and_wait();
  if (record.status.ok()) record.status = Produce(shared, index, *client);
  // The last producer to finish tells every consumer to stop once the queue
  // is drained. If its client failed, consumers give up after kDrainTimeout.
  if (shared.producers_left.fetch_sub(1) == 1 && record.status.ok()) {
    const std::string stop = EncodeStop(shared.run);
    for (int i = 0; i < shared.options.clients && record.status.ok(); ++i) {
      record.status = client->Put(stop);
    }
  }
  if (client != nullptr) client->Close();
}

template <typename Barrier>
void RunConsumer(Shared& shared, int index, Barrier& ready, ClientRecord& record) {
  std::unique_ptr<QueueClient> client = Open(shared, QueueRole::kConsumer, index, &record.status);
  // Leftovers of an earlier run would count against this one's latency.
  if (index == 0 && record.status.ok()) record.status = client->Purge();
  ready.arrive_and_wait();
  if (record.status.ok()) record.status = Consume(shared, *client, record);
  if (client != nullptr) client->Close();
}

}  // namespace

Result RunQueueBenchmark(const Options& options) {
  const int n = options.clients;
  Shared shared(options);
  std::vector<ClientRecord> producers(n);
  std::vector<ClientRecord> consumers(n);
  if (options.session_stream == SessionStreamMode::kShared) {
    absl::StatusOr<std::unique_ptr<SharedStream>> stream = OpenSharedStream(options);
    if (!stream.ok()) {
      Result result;
      result.failed_clients = 2 * n;
      result.first_error = stream.status();
      return result;
    }
    shared.stream = *std::move(stream);
  }
  auto start = [&]() noexcept {
    Timeline& t = shared.timeline;
    t.from = Clock::now() + Seconds(options.warmup);
    t.until = t.from + Seconds(options.seconds);
    t.give_up = t.until + kDrainTimeout;
  };
  std::barrier ready(2 * n, start);
  {
    std::vector<std::jthread> threads;
    threads.reserve(2 * n);
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] { RunConsumer(shared, i, ready, consumers[i]); });
      threads.emplace_back([&, i] { RunProducer(shared, i, ready, producers[i]); });
    }
  }  // Joins every thread.
  absl::Status closed;
  SharedStream::Stats stats;
  if (shared.stream != nullptr) {
    closed = shared.stream->Close();
    stats = shared.stream->stats();
  }

  Result result = MergeRecords(consumers, options.seconds);
  // A producer's failure comes first: it is what starves the consumers.
  int failed_producers = 0;
  for (const ClientRecord& record : producers) {
    if (!record.status.ok() && failed_producers++ == 0) result.first_error = record.status;
  }
  if (failed_producers == 0 && result.failed_clients == 0 && !closed.ok()) {
    result.failed_clients = 1;
    result.first_error = closed;
  }
  result.failed_clients += failed_producers;
  SetBatching(stats, &result);
  return result;
}

}  // namespace baton::bench
