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
// operation could not complete, so an awaiting coroutine always resumes.
#pragma once

#include <coroutine>
#include <utility>

namespace baton::runtime {

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
  void await_suspend(std::coroutine_handle<> h) {
    handle_ = h;
    start_(static_cast<void*>(static_cast<CqTag*>(this)));
  }
  bool await_resume() const noexcept { return ok_; }

  void OnComplete(bool ok) override {
    ok_ = ok;
    handle_.resume();  // may destroy *this: touch nothing after.
  }

 private:
  Start start_;
  std::coroutine_handle<> handle_;
  bool ok_ = false;
};

// Turns a CqTag* into the void* gRPC expects, and back.
inline void* AsTag(CqTag* tag) { return static_cast<void*>(tag); }
inline CqTag* FromTag(void* tag) { return static_cast<CqTag*>(tag); }

}  // namespace baton::runtime
