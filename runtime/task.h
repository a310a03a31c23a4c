// Task<T>: the coroutine type of Baton's runtime.
//
// A Task is lazy: it starts when awaited (or when handed to Spawn), and
// resumes its awaiter by symmetric transfer when it finishes, so long chains
// of wake-ups cannot overflow the stack. It is move-only and owns its frame.
// Spawn() starts a Task<void> detached; the frame frees itself at the end.
//
// Threading: a Task runs on the thread that resumes it. Baton only ever
// resumes a coroutine on its own shard's loop thread (see COROUTINES.md).
// Exceptions are not used; an escaping exception terminates the process.
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace baton::runtime {

template <class T>
class Task;

// Told when a Task<void> started by StartDetached has ended (its frame is
// already freed). Runs on the thread that ran the task's last step.
class Completion {
 public:
  virtual void Done() noexcept = 0;

 protected:
  ~Completion() = default;
};

inline void StartDetached(Task<void> task, Completion* done);

namespace internal {

struct PromiseBase {
  std::coroutine_handle<> continuation = std::noop_coroutine();

  std::suspend_always initial_suspend() noexcept { return {}; }
  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      if constexpr (requires { h.promise().on_done; }) {
        if (Completion* done = h.promise().on_done) {
          h.destroy();
          done->Done();
          return std::noop_coroutine();
        }
      }
      return h.promise().continuation;
    }
    void await_resume() noexcept {}
  };
  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept { std::terminate(); }
};

template <class T>
struct Promise : PromiseBase {
  std::optional<T> value;
  Task<T> get_return_object() noexcept;
  void return_value(T v) { value.emplace(std::move(v)); }
};

template <>
struct Promise<void> : PromiseBase {
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  // Set by StartDetached: told at the end instead of resuming a continuation.
  Completion* on_done = nullptr;
};

}  // namespace internal

template <class T = void>
class [[nodiscard]] Task {
 public:
  using promise_type = internal::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiter) noexcept {
    handle_.promise().continuation = awaiter;
    return handle_;
  }
  T await_resume() {
    if constexpr (!std::is_void_v<T>) return std::move(*handle_.promise().value);
  }

 private:
  friend struct internal::Promise<T>;
  friend void StartDetached(Task<void> task, Completion* done);
  explicit Task(Handle h) : handle_(h) {}
  Handle handle_;
};

namespace internal {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}

inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}

// A fire-and-forget coroutine that frees its own frame when it ends.
struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

inline Detached RunDetached(Task<void> task) { co_await std::move(task); }

}  // namespace internal

// The return type of a coroutine that starts when called, runs on its own
// and frees its frame when it ends. Spawn() is the usual way; a coroutine
// declared Detached saves Spawn's extra frame where many are alive at once.
using Detached = internal::Detached;

// Starts `task` now, on the calling thread, and lets it run to completion on
// its own; its frame is freed when it ends.
inline void Spawn(Task<void> task) { internal::RunDetached(std::move(task)); }

// As Spawn, without Spawn's extra frame (what a pending stream operation
// costs, times 100,000): `task` frees its own frame when it ends and then
// tells `done`. REQUIRES: `done` outlives the task.
inline void StartDetached(Task<void> task, Completion* done) {
  auto h = std::exchange(task.handle_, {});
  h.promise().on_done = done;
  h.resume();
}

// Suspends one coroutine until Notify() is called. If Notify() came first,
// the next co_await returns at once. At most one coroutine may wait at a time.
// Loop thread only.
class Wakeup {
 public:
  bool await_ready() const noexcept { return notified_; }
  void await_suspend(std::coroutine_handle<> h) noexcept { waiter_ = h; }
  void await_resume() noexcept { notified_ = false; }

  void Notify() {
    if (waiter_) {
      auto h = std::exchange(waiter_, {});
      notified_ = false;
      h.resume();
    } else {
      notified_ = true;
    }
  }

 private:
  std::coroutine_handle<> waiter_;
  bool notified_ = false;
};

}  // namespace baton::runtime
