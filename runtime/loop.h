// Loop: one shard's event loop.
//
// A Loop owns one gRPC ServerCompletionQueue and is run by exactly one OS
// thread. Each turn it (1) runs work deferred by its own thread, (2) runs work
// posted by other threads, (3) sleeps in the completion queue until the next
// tag or the next timer deadline, (4) runs work posted meanwhile, and what it
// deferred, then completes the tag, (5) ticks the timer source when its
// deadline has passed. Deferred work always runs before the next event.
// Nothing else runs on the thread, so state owned by the loop needs no mutex
// (DESIGN.md §4.1).
//
// Threading: Post() may be called from any thread; everything else only from
// the loop's own thread, except the shutdown calls documented below.
//
// Cross-thread wake-up: posted work is queued under a small mutex, and one
// grpc::Alarm per loop is armed only on the empty -> non-empty transition,
// so at most one alarm is ever outstanding (gRPC's Alarm is not thread-safe
// to re-arm before its tag is drained).
//
// Shutdown order (see ../shared/notes/grpc-runtime.md §1.6): the server owner
// calls grpc::Server::Shutdown from a non-loop thread while loops keep
// running, then ShutdownQueue() on each loop; Run() returns once the queue is
// drained and every registered in-flight coroutine has ended (or a grace
// period has passed), running posted work meanwhile by polling.
#pragma once

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "runtime/clock.h"
#include "runtime/cq_tag.h"

namespace baton::runtime {

// What a loop asks about timers. Implemented by the shard's state machine
// driver; called only on the loop thread.
class TimerSource {
 public:
  virtual ~TimerSource() = default;
  // The earliest deadline, or kForever.
  virtual Time NextDeadline() const = 0;
  // Called when NextDeadline() <= now.
  virtual void OnTimer(Time now) = 0;
};

class Loop {
 public:
  using Work = std::function<void()>;

  Loop(int index, std::unique_ptr<grpc::ServerCompletionQueue> cq, const Clock* clock);
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;
  ~Loop();

  int index() const { return index_; }
  grpc::ServerCompletionQueue* cq() const { return cq_.get(); }
  const Clock& clock() const { return *clock_; }

  // REQUIRES: called before Run().
  void SetTimerSource(TimerSource* timers) { timers_ = timers; }

  // Runs the loop on the calling thread until shutdown completes.
  void Run();

  // Any thread: runs `work` on this loop's thread soon, in posting order.
  void Post(Work work);

  // Loop thread: runs `work` after the current event, before sleeping again.
  void Defer(Work work) { local_.push_back(std::move(work)); }

  // True when called on the thread running this loop.
  bool OnLoopThread() const { return std::this_thread::get_id() == thread_id_.load(); }

  // Any thread, once, after grpc::Server::Shutdown has returned: shuts the
  // completion queue down; Run() returns after draining it.
  void ShutdownQueue();

  // Loop thread: runs `start` (which starts a gRPC operation whose tag goes to
  // this loop's queue) unless the queue is shut down, and says whether it
  // ran. gRPC aborts the process if an operation starts on a queue that is
  // shut down; work still draining after ShutdownQueue (a rollback's answer,
  // say) may want to write to a call whose end it has not heard of yet.
  template <class Start>
  bool StartIfQueueOpen(Start&& start) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!queue_open_) return false;
    start();
    return true;
  }

  // Counts coroutines in flight on this loop, so Run() does not return while
  // one could still be resumed. Loop thread only.
  void AddInFlight() { ++in_flight_; }
  void RemoveInFlight() { --in_flight_; }

 private:
  class WakeTag final : public CqTag {
   public:
    explicit WakeTag(Loop* loop) : loop_(loop) {}
    void OnComplete(bool ok) override;

   private:
    Loop* loop_;
  };

  void RunUntilDrained();  // Run()'s body
  void RunLocal();
  bool HasPosted();
  bool RunPosted();  // returns true if it ran anything
  void CheckTimers();

  const int index_;
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  const Clock* clock_;
  TimerSource* timers_ = nullptr;
  std::atomic<std::thread::id> thread_id_{};

  std::deque<Work> local_;

  std::mutex mu_;
  std::vector<Work> posted_;  // guarded by mu_
  bool alarm_armed_ = false;  // guarded by mu_
  bool queue_open_ = true;    // guarded by mu_: false once ShutdownQueue ran
  grpc::Alarm wake_alarm_;
  WakeTag wake_tag_{this};

  int64_t in_flight_ = 0;
};

}  // namespace baton::runtime
