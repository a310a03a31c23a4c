#include "runtime/loop.h"

#include <chrono>

namespace baton::runtime {
namespace {

// How long Run() keeps serving posted work after its queue has drained while
// coroutines are still in flight (they wait for replies from other shards).
constexpr auto kDrainGrace = std::chrono::seconds(5);

gpr_timespec DeadlineAfter(Duration d) {
  if (d <= 0) return gpr_time_0(GPR_CLOCK_MONOTONIC);
  // Wake at least once a second: cheap, and bounds any missed timer update.
  if (d > kSecond) d = kSecond;
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_micros(d, GPR_TIMESPAN));
}

// The loop whose Run() is executing on this thread, if any.
thread_local Loop* current_loop = nullptr;

}  // namespace

bool StartUnlessQueueShutDown(void (*start)(void*), void* arg) {
  if (current_loop == nullptr) {
    start(arg);
    return true;
  }
  return current_loop->StartIfQueueOpen([&] { start(arg); });
}

Loop::Loop(int index, std::unique_ptr<grpc::ServerCompletionQueue> cq, const Clock* clock)
    : index_(index), cq_(std::move(cq)), clock_(clock) {}

Loop::~Loop() = default;

void Loop::Post(Work work) {
  bool arm = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    posted_.push_back(std::move(work));
    // The loop's own thread runs posted work before it sleeps again: no
    // alarm needed.
    if (!alarm_armed_ && queue_open_ && !OnLoopThread()) {
      alarm_armed_ = true;
      arm = true;
    }
  }
  // Only the thread that flipped alarm_armed_ touches the alarm, and the loop
  // clears the flag only after the previous alarm's tag was delivered.
  if (arm) wake_alarm_.Set(cq_.get(), gpr_time_0(GPR_CLOCK_MONOTONIC), AsTag(&wake_tag_));
}

void Loop::WakeTag::OnComplete(bool) {
  {
    std::lock_guard<std::mutex> lock(loop_->mu_);
    loop_->alarm_armed_ = false;
  }
  loop_->RunPosted();
}

bool Loop::RunPosted() {
  std::vector<Work> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(posted_);
  }
  for (auto& w : batch) w();
  return !batch.empty();
}

bool Loop::HasPosted() {
  std::lock_guard<std::mutex> lock(mu_);
  return !posted_.empty();
}

void Loop::RunLocal() {
  // Work may defer more work; run until none is left.
  while (!local_.empty()) {
    Work w = std::move(local_.front());
    local_.pop_front();
    w();
  }
}

void Loop::CheckTimers() {
  if (timers_ == nullptr) return;
  Time now = clock_->Now();
  if (timers_->NextDeadline() <= now) timers_->OnTimer(now);
}

void Loop::Run() {
  thread_id_ = std::this_thread::get_id();
  current_loop = this;
  RunUntilDrained();
  current_loop = nullptr;
}

void Loop::RunUntilDrained() {
  for (;;) {
    RunLocal();
    RunPosted();
    RunLocal();
    CheckTimers();
    RunLocal();
    Duration wait = kSecond;
    if (timers_ != nullptr) {
      Time next = timers_->NextDeadline();
      if (next != kForever) wait = next - clock_->Now();
    }
    if (!local_.empty() || HasPosted()) wait = 0;
    void* tag = nullptr;
    bool ok = false;
    auto status = cq_->AsyncNext(&tag, &ok, DeadlineAfter(wait));
    if (status == grpc::CompletionQueue::SHUTDOWN) break;
    if (status == grpc::CompletionQueue::GOT_EVENT) {
      // Work posted to this loop before the event was caused must run before
      // it: a client that opened a session on another shard sends its next
      // request only after that shard posted "session started" here, but the
      // wake-up alarm and the new call can come out of the queue in either
      // order. Draining first keeps cause before effect; and what that work
      // deferred runs before the event too (a session stream's deferred
      // write must start, or be settled, before the call's end is seen).
      RunPosted();
      RunLocal();
      FromTag(tag)->OnComplete(ok);
    }
  }
  // The queue is drained. Coroutines may still wait for replies posted by
  // other shards (which no alarm can announce any more): poll for them.
  auto give_up = std::chrono::steady_clock::now() + kDrainGrace;
  for (;;) {
    RunLocal();
    bool ran = RunPosted();
    RunLocal();
    if (in_flight_ <= 0 && !ran) break;
    if (std::chrono::steady_clock::now() > give_up) break;
    if (!ran) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void Loop::ShutdownQueue() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_open_ = false;
  }
  cq_->Shutdown();
}

}  // namespace baton::runtime
