// The waits workload: park many waits on batond, read its VmRSS, end them.
#include "bench/waits_memory.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "baton/v1/admin.grpc.pb.h"
#include "baton/v1/event.grpc.pb.h"
#include "baton/v1/lock.grpc.pb.h"
#include "baton/v1/session.grpc.pb.h"
#include "bench/lock_client.h"
#include "bench/session_stream.h"

namespace baton::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr seconds kConnectTimeout(10);
// Bounds of the steps.
constexpr seconds kPendingTimeout(60);
constexpr seconds kAnswerTimeout(120);
constexpr seconds kLifetime(600);
// Sessions outlive the run; Close ends them.
constexpr seconds kSessionTtl(600);
// Lets the server finish what it was doing before RSS is read; shorter for
// small runs (the smoke test).
constexpr milliseconds kSettle(500);
constexpr milliseconds kSettleSmall(100);
constexpr int kSmallRun = 10000;
// Operations per stream message while parking, cancellations per message
// while ending.
constexpr int kBatch = 1000;

// VmRSS of process `pid`, in kB.
absl::StatusOr<int64_t> ReadRssKb(int pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return absl::NotFoundError(absl::StrCat("no process ", pid));
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "VmRSS:")) continue;
    rest = absl::StripAsciiWhitespace(rest);
    absl::ConsumeSuffix(&rest, "kB");
    int64_t kb = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &kb)) return kb;
    return absl::DataLossError(absl::StrCat("bad VmRSS line: ", line));
  }
  return absl::DataLossError(absl::StrCat("no VmRSS in /proc/", pid, "/status"));
}

absl::StatusOr<int64_t> SettledRssKb(const Options& options) {
  std::this_thread::sleep_for(options.waits < kSmallRun ? kSettleSmall : kSettle);
  return ReadRssKb(options.server_pid);
}

std::chrono::system_clock::time_point Deadline(std::chrono::seconds from_now) {
  return std::chrono::system_clock::now() + from_now;
}

// The unary services, on a channel of their own.
struct Admin {
  std::unique_ptr<baton::v1::Admin::Stub> admin;
  std::unique_ptr<baton::v1::Sessions::Stub> sessions;
  std::unique_ptr<baton::v1::Locks::Stub> locks;
  std::unique_ptr<baton::v1::Events::Stub> events;

  absl::StatusOr<uint64_t> OpenSession(absl::string_view label) {
    baton::v1::OpenSessionRequest request;
    request.mutable_ttl()->set_seconds(kSessionTtl.count());
    request.set_label(std::string(label));
    baton::v1::OpenSessionResponse response;
    grpc::ClientContext context;
    context.set_deadline(Deadline(kConnectTimeout));
    if (absl::Status s = FromGrpc(sessions->Open(&context, request, &response), "Sessions/Open");
        !s.ok()) {
      return s;
    }
    return response.session_id();
  }

  void CloseSession(uint64_t id) {
    baton::v1::CloseSessionRequest request;
    request.set_session_id(id);
    baton::v1::CloseSessionResponse response;
    grpc::ClientContext context;
    context.set_deadline(Deadline(kConnectTimeout));
    (void)sessions->Close(&context, request, &response);
  }

  // Takes every lock of `names` for session `holder`.
  absl::Status Hold(const std::vector<std::string>& names, uint64_t holder) {
    for (const std::string& name : names) {
      baton::v1::AcquireLockRequest request;
      request.set_name(name);
      request.set_session_id(holder);
      request.mutable_timeout();  // Zero: the lock must be free.
      baton::v1::AcquireLockResponse response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(kConnectTimeout));
      if (absl::Status s = FromGrpc(locks->Acquire(&context, request, &response),
                                    absl::StrCat("Locks/Acquire ", name));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status SetEvents(const std::vector<std::string>& names) {
    for (const std::string& name : names) {
      baton::v1::SetEventRequest request;
      request.set_name(name);
      baton::v1::SetEventResponse response;
      grpc::ClientContext context;
      context.set_deadline(Deadline(kConnectTimeout));
      if (absl::Status s = FromGrpc(events->Set(&context, request, &response),
                                    absl::StrCat("Events/Set ", name));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  // Polls Admin/Describe until the waiters on `names` add up to `want`.
  absl::Status AwaitWaiters(const std::vector<std::string>& names, int64_t want) {
    const auto give_up = std::chrono::steady_clock::now() + kPendingTimeout;
    int64_t seen = 0;
    for (;;) {
      seen = 0;
      for (const std::string& name : names) {
        baton::v1::DescribeRequest request;
        request.set_name(name);
        baton::v1::DescribeResponse response;
        grpc::ClientContext context;
        context.set_deadline(Deadline(kConnectTimeout));
        const grpc::Status status = admin->Describe(&context, request, &response);
        // An unknown name: no wait on it has reached the server yet.
        if (status.error_code() == grpc::StatusCode::NOT_FOUND) continue;
        if (absl::Status s = FromGrpc(status, absl::StrCat("Admin/Describe ", name)); !s.ok()) {
          return s;
        }
        seen += response.waiters();
      }
      if (seen == want) return absl::OkStatus();
      if (seen > want || std::chrono::steady_clock::now() >= give_up) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    return absl::FailedPreconditionError(absl::StrCat("Admin/Describe shows ", seen,
                                                      " pending waits, want ", want, " (after ",
                                                      kPendingTimeout.count(), " s at most)"));
  }
};

// Answers counted by whether they are what the ending step expects.
class Tally {
 public:
  explicit Tally(int expected_code) : expected_code_(expected_code) {}

  void Add(int code, absl::string_view message) {
    std::lock_guard lock(mu_);
    ++answered_;
    if (code != expected_code_ && unexpected_++ == 0) {
      first_unexpected_ = absl::StrCat("code ", code, ": ", message);
    }
    changed_.notify_all();
  }

  // Waits until `n` answers came, kAnswerTimeout at most.
  bool AwaitAnswers(int64_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, kAnswerTimeout, [&] { return answered_ >= n; });
  }

  int64_t answered() const {
    std::lock_guard lock(mu_);
    return answered_;
  }
  int64_t unexpected() const {
    std::lock_guard lock(mu_);
    return unexpected_;
  }
  std::string first_unexpected() const {
    std::lock_guard lock(mu_);
    return first_unexpected_;
  }

 private:
  const int expected_code_;
  mutable std::mutex mu_;
  std::condition_variable changed_;
  int64_t answered_ = 0;
  int64_t unexpected_ = 0;
  std::string first_unexpected_;
};

// What one round (warm-up or measured) found.
struct Round {
  int64_t rss_before_kb = 0;
  int64_t rss_pending_kb = 0;
  int64_t rss_after_kb = 0;
  int64_t answered = 0;
  int64_t unexpected = 0;
  std::string first_unexpected;
};

// A way of parking waits: on one session stream, or as unary calls.
class Parker {
 public:
  virtual ~Parker() = default;
  // Parks `n` waits on `names` (wait i on names[i % size]), all counted by
  // `tally`.
  virtual absl::Status Park(const std::vector<std::string>& names, int64_t n, Tally* tally) = 0;
  // Ends every wait Park started: sets the events, or cancels lock waits.
  virtual absl::Status End(const std::vector<std::string>& names) = 0;
  // Ends the stream or calls; with `cancel` (after a failure), whatever is
  // still pending is cancelled rather than waited for.
  virtual void Close(bool cancel) = 0;
};

class StreamParker final : public Parker {
 public:
  StreamParker(WaitKind kind, std::unique_ptr<SharedStream> stream)
      : kind_(kind), stream_(std::move(stream)) {}

  absl::Status Park(const std::vector<std::string>& names, int64_t n, Tally* tally) override {
    waiter_.tally = tally;
    first_id_ = stream_->next_id();
    count_ = n;
    for (int64_t i = 0; i < n; ++i) {
      baton::v1::Operation op;
      const std::string& name = names[i % names.size()];
      if (kind_ == WaitKind::kEvent) {
        op.mutable_wait_event()->set_name(name);
      } else {
        op.mutable_acquire_lock()->set_name(name);
      }
      stream_->Start(op, &waiter_, /*flush=*/(i + 1) % kBatch == 0 || i + 1 == n);
    }
    return absl::OkStatus();
  }

  absl::Status End(const std::vector<std::string>& names) override {
    if (kind_ == WaitKind::kEvent) {
      // set_event answers go to a tally of their own.
      Tally sets(0);
      Waiter set_waiter;
      set_waiter.tally = &sets;
      for (size_t i = 0; i < names.size(); ++i) {
        baton::v1::Operation op;
        op.mutable_set_event()->set_name(names[i]);
        stream_->Start(op, &set_waiter, /*flush=*/i + 1 == names.size());
      }
      if (!sets.AwaitAnswers(static_cast<int64_t>(names.size())) || sets.unexpected() > 0) {
        return absl::InternalError(absl::StrCat("set_event: ", sets.first_unexpected()));
      }
      return absl::OkStatus();
    }
    for (int64_t i = 0; i < count_; ++i) {
      stream_->Cancel(first_id_ + i, /*flush=*/(i + 1) % kBatch == 0 || i + 1 == count_);
    }
    return absl::OkStatus();
  }

  void Close(bool cancel) override { (void)stream_->Close(cancel); }

 private:
  struct Waiter final : SharedStream::Waiter {
    Tally* tally = nullptr;
    void OnResult(baton::v1::OperationResult& result) override {
      tally->Add(result.code(), result.message());
    }
  };

  const WaitKind kind_;
  std::unique_ptr<SharedStream> stream_;
  Waiter waiter_;
  uint64_t first_id_ = 0;
  int64_t count_ = 0;
};

// Parked unary calls, from async clients: one completion queue, polled by
// one thread, for calls spread over `channels`.
class UnaryParker final : public Parker {
 public:
  UnaryParker(WaitKind kind, std::vector<std::shared_ptr<grpc::Channel>> channels, uint64_t session,
              Admin* admin)
      : kind_(kind), session_(session), admin_(admin) {
    for (auto& channel : channels) {
      events_.push_back(baton::v1::Events::NewStub(channel));
      locks_.push_back(baton::v1::Locks::NewStub(channel));
    }
    poller_ = std::thread([this] { Poll(); });
  }

  ~UnaryParker() override { Close(true); }

  absl::Status Park(const std::vector<std::string>& names, int64_t n, Tally* tally) override {
    tally_.store(tally);
    const size_t first = calls_.size();
    for (int64_t i = 0; i < n; ++i) calls_.push_back(std::make_unique<Call>());
    for (int64_t i = 0; i < n; ++i) {
      Call& call = *calls_[first + i];
      call.context.set_deadline(Deadline(kLifetime));
      const std::string& name = names[i % names.size()];
      const size_t stub = static_cast<size_t>(i) % events_.size();
      if (kind_ == WaitKind::kEvent) {
        baton::v1::WaitEventRequest request;
        request.set_name(name);
        request.set_session_id(session_);
        call.wait = events_[stub]->PrepareAsyncWait(&call.context, request, &cq_);
        call.wait->StartCall();
        call.wait->Finish(&call.wait_response, &call.status, &call);
      } else {
        baton::v1::AcquireLockRequest request;
        request.set_name(name);
        request.set_session_id(session_);
        call.acquire = locks_[stub]->PrepareAsyncAcquire(&call.context, request, &cq_);
        call.acquire->StartCall();
        call.acquire->Finish(&call.acquire_response, &call.status, &call);
      }
    }
    return absl::OkStatus();
  }

  absl::Status End(const std::vector<std::string>& names) override {
    if (kind_ == WaitKind::kEvent) return admin_->SetEvents(names);
    for (auto& call : calls_) call->context.TryCancel();
    return absl::OkStatus();
  }

  void Close(bool /*cancel*/) override {
    // Calls always end by cancellation: those ended already are unaffected.
    if (!poller_.joinable()) return;
    for (auto& call : calls_) call->context.TryCancel();
    // Every call's completion must be taken before the queue drains.
    std::unique_lock lock(mu_);
    done_.wait_for(lock, kAnswerTimeout, [&] { return completed_ == calls_.size(); });
    lock.unlock();
    cq_.Shutdown();
    poller_.join();
  }

 private:
  struct Call {
    grpc::ClientContext context;
    grpc::Status status;
    baton::v1::WaitEventResponse wait_response;
    baton::v1::AcquireLockResponse acquire_response;
    std::unique_ptr<grpc::ClientAsyncResponseReader<baton::v1::WaitEventResponse>> wait;
    std::unique_ptr<grpc::ClientAsyncResponseReader<baton::v1::AcquireLockResponse>> acquire;
  };

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      auto* call = static_cast<Call*>(tag);
      if (Tally* tally = tally_.load(); tally != nullptr) {
        tally->Add(call->status.error_code(), call->status.error_message());
      }
      std::lock_guard lock(mu_);
      ++completed_;
      done_.notify_all();
    }
  }

  const WaitKind kind_;
  const uint64_t session_;
  Admin* const admin_;
  std::vector<std::unique_ptr<baton::v1::Events::Stub>> events_;
  std::vector<std::unique_ptr<baton::v1::Locks::Stub>> locks_;
  grpc::CompletionQueue cq_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::atomic<Tally*> tally_{nullptr};
  std::mutex mu_;
  std::condition_variable done_;
  size_t completed_ = 0;  // Guarded by mu_.
  std::thread poller_;
};

std::vector<std::string> Names(absl::string_view prefix, int n) {
  std::vector<std::string> names;
  names.reserve(n);
  for (int i = 0; i < n; ++i) names.push_back(absl::StrCat(prefix, i));
  return names;
}

// Parks `waits` waits on `names`, measures, and ends them.
absl::StatusOr<Round> RunRound(const Options& options, Admin& admin, Parker& parker,
                               const std::vector<std::string>& names, int64_t waits,
                               uint64_t holder) {
  Round round;
  if (options.wait_kind == WaitKind::kLock) {
    if (absl::Status s = admin.Hold(names, holder); !s.ok()) return s;
  }
  absl::StatusOr<int64_t> rss = SettledRssKb(options);
  if (!rss.ok()) return rss.status();
  round.rss_before_kb = *rss;

  const int expected =
      options.wait_kind == WaitKind::kEvent ? 0 : static_cast<int>(absl::StatusCode::kCancelled);
  Tally tally(expected);
  if (absl::Status s = parker.Park(names, waits, &tally); !s.ok()) return s;
  if (absl::Status s = admin.AwaitWaiters(names, waits); !s.ok()) {
    // Waits that ended early say why.
    return absl::Status(
        s.code(), absl::StrCat(s.message(), "; ", tally.answered(),
                               " answered already, first unexpected: ", tally.first_unexpected()));
  }
  rss = SettledRssKb(options);
  if (!rss.ok()) return rss.status();
  round.rss_pending_kb = *rss;

  if (absl::Status s = parker.End(names); !s.ok()) return s;
  tally.AwaitAnswers(waits);
  round.answered = tally.answered();
  round.unexpected = tally.unexpected();
  round.first_unexpected = tally.first_unexpected();
  rss = SettledRssKb(options);
  if (!rss.ok()) return rss.status();
  round.rss_after_kb = *rss;
  return round;
}

void Report(const Options& options, const Round& r, const absl::Status& error) {
  const bool stream = options.session_stream != SessionStreamMode::kOff;
  const double per_wait =
      static_cast<double>(r.rss_pending_kb - r.rss_before_kb) * 1024.0 / options.waits;
  if (options.json) {
    std::printf(
        "{\"workload\":\"waits\",\"transport\":\"%s\",\"kind\":\"%s\",\"waits\":%d,"
        "\"names\":%d,\"channels\":%d,\"rss_before_kb\":%lld,\"rss_pending_kb\":%lld,"
        "\"rss_after_kb\":%lld,\"bytes_per_wait\":%.0f,\"answered\":%lld,\"unexpected\":%lld,"
        "\"error\":\"%s\"}\n",
        stream ? "stream" : "unary", std::string(WaitKindName(options.wait_kind)).c_str(),
        options.waits, options.wait_names, stream ? 1 : options.clients,
        static_cast<long long>(r.rss_before_kb), static_cast<long long>(r.rss_pending_kb),
        static_cast<long long>(r.rss_after_kb), per_wait, static_cast<long long>(r.answered),
        static_cast<long long>(r.unexpected),
        absl::StrReplaceAll(error.ok() ? r.first_unexpected : error.ToString(),
                            {{"\\", "\\\\"}, {"\"", "\\\""}})
            .c_str());
  } else {
    std::printf(
        "baton waits (%s, %s): %d waits on %d names%s\n"
        "  rss        before %lld kB, pending %lld kB, after %lld kB\n"
        "  per wait   %.0f bytes ((pending - before) / waits)\n"
        "  answered   %lld of %d, %lld unexpected%s%s\n",
        stream ? "one session stream" : "unary calls",
        std::string(WaitKindName(options.wait_kind)).c_str(), options.waits, options.wait_names,
        stream ? "" : absl::StrFormat(" over %d channel(s)", options.clients).c_str(),
        static_cast<long long>(r.rss_before_kb), static_cast<long long>(r.rss_pending_kb),
        static_cast<long long>(r.rss_after_kb), per_wait, static_cast<long long>(r.answered),
        options.waits, static_cast<long long>(r.unexpected),
        r.first_unexpected.empty() ? "" : "; first: ", r.first_unexpected.c_str());
    if (!error.ok()) std::printf("  error      %s\n", error.ToString().c_str());
  }
  std::fflush(stdout);
}

}  // namespace

int RunWaitsMemory(const Options& options) {
  std::shared_ptr<grpc::Channel> admin_channel = NewClientChannel(options.addr, 1 << 20);
  absl::Status status = WaitForConnected(*admin_channel, kConnectTimeout);
  Admin admin{baton::v1::Admin::NewStub(admin_channel), baton::v1::Sessions::NewStub(admin_channel),
              baton::v1::Locks::NewStub(admin_channel), baton::v1::Events::NewStub(admin_channel)};
  uint64_t holder = 0;
  uint64_t waiter_session = 0;
  std::unique_ptr<Parker> parker;
  if (status.ok() && options.wait_kind == WaitKind::kLock) {
    absl::StatusOr<uint64_t> id = admin.OpenSession("baton-bench/waits/holder");
    status = id.status();
    if (id.ok()) holder = *id;
  }
  if (status.ok() && options.session_stream != SessionStreamMode::kOff) {
    std::shared_ptr<grpc::Channel> channel = NewClientChannel(options.addr, 0);
    status = WaitForConnected(*channel, kConnectTimeout);
    if (status.ok()) {
      auto stream =
          SharedStream::Open(channel, "baton-bench/waits", kSessionTtl, Deadline(kLifetime));
      status = stream.status();
      if (stream.ok()) {
        parker = std::make_unique<StreamParker>(options.wait_kind, *std::move(stream));
      }
    }
  } else if (status.ok()) {
    absl::StatusOr<uint64_t> id = admin.OpenSession("baton-bench/waits/waiter");
    status = id.status();
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; status.ok() && i < options.clients; ++i) {
      channels.push_back(NewClientChannel(options.addr, i));
      status = WaitForConnected(*channels.back(), kConnectTimeout);
    }
    if (status.ok()) {
      waiter_session = *id;
      parker = std::make_unique<UnaryParker>(options.wait_kind, std::move(channels), waiter_session,
                                             &admin);
    }
  }

  // Names no earlier run used (a set event would not make anyone wait).
  const std::string prefix =
      absl::StrFormat("mem/%s/%08x/", WaitKindName(options.wait_kind), std::random_device()());
  Round round;
  if (status.ok()) {
    // Warm-up: the same shape at 1% on names of its own.
    const int64_t warm_waits = std::max<int64_t>(options.waits / 100, 1);
    const int warm_names = static_cast<int>(std::min<int64_t>(options.wait_names, warm_waits));
    absl::StatusOr<Round> warm =
        RunRound(options, admin, *parker, Names(absl::StrCat(prefix, "warm/"), warm_names),
                 warm_waits, holder);
    status = warm.status();
    if (warm.ok() && (warm->unexpected > 0 || warm->answered != warm_waits)) {
      status = absl::InternalError(absl::StrCat("warm-up: ", warm->answered, " of ", warm_waits,
                                                " answered, ", warm->unexpected,
                                                " unexpected: ", warm->first_unexpected));
    }
  }
  if (status.ok()) {
    absl::StatusOr<Round> measured =
        RunRound(options, admin, *parker, Names(absl::StrCat(prefix, "w/"), options.wait_names),
                 options.waits, holder);
    status = measured.status();
    if (measured.ok()) round = *measured;
  }
  if (parker != nullptr) parker->Close(/*cancel=*/!status.ok());
  if (holder != 0) admin.CloseSession(holder);
  if (waiter_session != 0) admin.CloseSession(waiter_session);

  Report(options, round, status);
  const bool complete = round.answered == options.waits && round.unexpected == 0;
  if (!status.ok()) {
    std::fprintf(stderr, "baton-bench: %s\n", status.ToString().c_str());
    return 1;
  }
  if (!complete) {
    std::fprintf(stderr, "baton-bench: %lld of %d waits answered as expected\n",
                 static_cast<long long>(round.answered - round.unexpected), options.waits);
    return 1;
  }
  return 0;
}

}  // namespace baton::bench
