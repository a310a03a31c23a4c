// Lock users as state machines on one shared session stream.
#include "bench/shared_stream_driver.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/lock_client.h"

namespace baton::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kConnectTimeout(10);
// Long enough to outlive any run; the stream's end starts it anyway.
constexpr std::chrono::seconds kSessionTtl(60);

Clock::duration Seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// What every user shares.
struct Run {
  const Options* options = nullptr;
  SharedStream* stream = nullptr;
  bool contended = false;
  Clock::time_point from;
  Clock::time_point until;
  // How long an acquire may wait in line: the unary client's deadline.
  google::protobuf::Duration acquire_timeout;
  // The last token granted on the contended lock; the reader thread's only.
  uint64_t last_contended_token = 0;

  std::mutex mu;
  std::condition_variable all_done;
  int running = 0;  // Users not finished yet; guarded by mu.
};

class User final : public SharedStream::Waiter {
 public:
  User(Run* run, int index)
      : run_(run), name_(run->contended ? std::string(kContendedLock) : UncontendedLock(index)) {}

  // Starts a cycle: an acquire, written with the next flush.
  void StartCycle() {
    begin_ = Clock::now();
    acquiring_ = true;
    baton::v1::Operation op;
    baton::v1::AcquireLockRequest* acquire = op.mutable_acquire_lock();
    acquire->set_name(name_);
    *acquire->mutable_timeout() = run_->acquire_timeout;
    run_->stream->Start(op, this, /*flush=*/false);
  }

  void OnResult(baton::v1::OperationResult& result) override {
    const Clock::time_point now = Clock::now();
    const bool in_window = now >= run_->from && now < run_->until;
    if (acquiring_) {
      record.status = ResultStatus(result, "acquire_lock");
      if (!record.status.ok()) return Finish();
      const uint64_t token = result.acquire_lock().token();
      uint64_t& last = run_->contended ? run_->last_contended_token : last_token_;
      if (token <= last) {
        record.status = absl::InternalError(absl::StrCat("acquire_lock: fencing token ", token,
                                                         " not above the previous grant's ", last));
        return Finish();
      }
      last = last_token_ = token;
      // Contended: count the grant, and the wait in line.
      if (run_->contended && in_window) Count(now);
      acquiring_ = false;
      baton::v1::Operation op;
      baton::v1::ReleaseLockRequest* release = op.mutable_release_lock();
      release->set_name(name_);
      release->set_token(token);
      run_->stream->Start(op, this, /*flush=*/false);
      return;
    }
    record.status = ResultStatus(result, "release_lock");
    if (!record.status.ok()) return Finish();
    // Uncontended: count the cycle.
    if (!run_->contended && in_window) Count(now);
    if (now >= run_->until) return Finish();
    StartCycle();
  }

  ClientRecord record;

 private:
  void Count(Clock::time_point now) {
    ++record.count;
    record.latencies_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - begin_).count());
  }

  void Finish() {
    std::lock_guard lock(run_->mu);
    if (--run_->running == 0) run_->all_done.notify_all();
  }

  Run* const run_;
  const std::string name_;
  bool acquiring_ = false;
  Clock::time_point begin_;
  uint64_t last_token_ = 0;
};

}  // namespace

void SetBatching(const SharedStream::Stats& stats, Result* result) {
  if (stats.messages_sent > 0) {
    result->ops_per_message =
        static_cast<double>(stats.ops_sent) / static_cast<double>(stats.messages_sent);
  }
  if (stats.messages_received > 0) {
    result->answers_per_message =
        static_cast<double>(stats.answers_received) / static_cast<double>(stats.messages_received);
  }
}

absl::StatusOr<std::unique_ptr<SharedStream>> OpenSharedStream(const Options& options) {
  std::shared_ptr<grpc::Channel> channel = NewClientChannel(options.addr, 0);
  if (absl::Status status = WaitForConnected(*channel, kConnectTimeout); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat(options.addr, ": ", status.message()));
  }
  return SharedStream::Open(channel, "baton-bench/shared", kSessionTtl, StreamDeadline(options));
}

Result RunSharedStreamLockBenchmark(const Options& options) {
  absl::StatusOr<std::unique_ptr<SharedStream>> stream = OpenSharedStream(options);
  if (!stream.ok()) {
    Result result;
    result.failed_clients = options.clients;
    result.first_error = stream.status();
    return result;
  }

  Run run;
  run.options = &options;
  run.stream = stream->get();
  run.contended = options.workload == Workload::kContended;
  const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options.call_timeout));
  run.acquire_timeout.set_seconds(timeout.count() / 1000000000);
  run.acquire_timeout.set_nanos(static_cast<int32_t>(timeout.count() % 1000000000));
  std::vector<std::unique_ptr<User>> users;
  for (int i = 0; i < options.clients; ++i) users.push_back(std::make_unique<User>(&run, i));

  run.running = options.clients;
  run.from = Clock::now() + Seconds(options.warmup);
  run.until = run.from + Seconds(options.seconds);
  // Every first acquire in one message.
  for (auto& user : users) user->StartCycle();
  run.stream->Flush();
  {
    // Bounded: every user finishes after the window, or when the stream
    // ends (at its deadline at the latest) and answers it with an error.
    std::unique_lock lock(run.mu);
    run.all_done.wait(lock, [&] { return run.running == 0; });
  }
  const absl::Status closed = (*stream)->Close();
  const SharedStream::Stats stats = (*stream)->stats();

  std::vector<ClientRecord> records;
  records.reserve(users.size());
  for (auto& user : users) records.push_back(std::move(user->record));
  Result result = MergeRecords(records, options.seconds);
  if (result.failed_clients == 0 && !closed.ok()) {
    result.failed_clients = 1;
    result.first_error = closed;
  }
  SetBatching(stats, &result);
  return result;
}

}  // namespace baton::bench
