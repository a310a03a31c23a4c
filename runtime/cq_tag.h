// Completion-queue tags.
//
// Every pointer Baton hands to gRPC as a tag is a CqTag; the loop that polls
// the completion queue calls OnComplete(ok) on its own thread. CqOp<Start> is
// the awaitable form: `bool ok = co_await CqOp([&](void* tag) {
// writer.Finish(resp, status, tag); });` starts the gRPC operation inside
// await_suspend (never before the coroutine is suspended) and resumes the
// coroutine with the operation's `ok` when its tag comes back.
//
// Shutdown: gRPC delivers every tag it accepted, with ok=false when the
// operation could not complete, so an awaiting coroutine always resumes. gRPC
// aborts the process when an operation starts on a completion queue that is
// already shut down, and work still draining after Loop::ShutdownQueue (a
// rollback's answer, a handler's final Finish) may start one on a call whose
// end it has not heard of yet: CqOp starts through StartUnlessQueueShutDown,
// and an operation that could not start resumes at once with ok=false.
#pragma once

#include <coroutine>
#include <utility>

namespace baton::runtime {

// Defined in loop.cc. Runs start(arg) unless the completion queue of the
// loop running on the calling thread is shut down, and says whether it ran;
// off a loop thread it always runs it. The check and the start happen under
// the loop's mutex, which ShutdownQueue also takes.
bool StartUnlessQueueShutDown(void (*start)(void*), void* arg);

class CqTag {
 public:
  // Called exactly once per operation started with this tag, on the loop
  // thread that polls the tag's completion queue.
  virtual void OnComplete(bool ok) = 0;

 protected:
  ~CqTag() = default;
};

template <class Start>
class [[nodiscard]] CqOp final : public CqTag {
 public:
  explicit CqOp(Start start) : start_(std::move(start)) {}

  bool await_ready() const noexcept { return false; }
  // Suspends unless the operation could not start (the queue is shut down):
  // then the coroutine goes on at once with ok=false.
  bool await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    return StartUnlessQueueShutDown(&CqOp::StartOn, this);
  }
  bool await_resume() const noexcept { return ok_; }

  void OnComplete(bool ok) override {
    ok_ = ok;
    handle_.resume();  // may destroy *this: touch nothing after.
  }

 private:
  static void StartOn(void* self) {
    auto* op = static_cast<CqOp*>(self);
    op->start_(static_cast<void*>(static_cast<CqTag*>(op)));
  }

  Start start_;
  std::coroutine_handle<> handle_;
  bool ok_ = false;
};

// Turns a CqTag* into the void* gRPC expects, and back.
inline void* AsTag(CqTag* tag) { return static_cast<void*>(tag); }
inline CqTag* FromTag(void* tag) { return static_cast<CqTag*>(tag); }

}  // namespace baton::runtime
