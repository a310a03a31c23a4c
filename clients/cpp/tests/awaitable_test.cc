// The C++20 awaitable adapter (awaitable.h) against a real batond: a
// coroutine awaits Async* calls, is resumed when they complete, can be
// cancelled from another thread while suspended, continues without
// suspending when a call completes at once, and can resume on an executor.
// The README's example is compiled and run here (ReadmeExample).
#include <condition_variable>
#include <coroutine>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

// A minimal eager coroutine type for tests: starts at once, runs to the end,
// and signals `done` (a std::promise) through its body. Frames are destroyed
// at final suspend (final_suspend never suspends).
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

// ---- The README example, verbatim ------------------------------------------
// A coroutine that takes a lock, reads the fence, and releases at scope exit.
Detached TakeLockOnce(baton::Lock lock, baton::CancelToken cancel,
                      std::promise<absl::StatusOr<uint64_t>> result) {
  absl::StatusOr<baton::LockGuard> held =
      co_await baton::Await<baton::LockGuard>([&](baton::Callback<baton::LockGuard> done) {
        return lock.AsyncAcquire({.timeout = absl::Seconds(5), .cancel = cancel}, done);
      });
  if (!held.ok()) {
    result.set_value(held.status());
    co_return;
  }
  result.set_value(held->fence());
}  // `held` is released here
// -----------------------------------------------------------------------------

TEST(AwaitableTest, ReadmeExample) {
  Client client = MustConnect();
  std::string name = Name();
  std::promise<absl::StatusOr<uint64_t>> promise;
  auto future = promise.get_future();
  TakeLockOnce(client.Lock(name), CancelToken(), std::move(promise));
  absl::StatusOr<uint64_t> fence = future.get();
  ASSERT_TRUE(fence.ok()) << fence.status();
  EXPECT_GT(*fence, 0u);
  EXPECT_TRUE(Eventually([&] { return Free(client, name); }));
}

Detached WaitForEvent(Event event, CancelToken cancel, std::promise<absl::Status> result,
                      std::thread::id* resumed_on) {
  absl::StatusOr<GrantOutcome> outcome = co_await Await<GrantOutcome>(
      [&](Callback<GrantOutcome> done) { return event.AsyncWait({.cancel = cancel}, done); });
  *resumed_on = std::this_thread::get_id();
  result.set_value(outcome.status());
}

TEST(AwaitableTest, SuspendsUntilTheCallCompletesOnAnotherThread) {
  Client client = MustConnect();
  Event event = client.Event(Name());
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  std::thread::id resumed_on;
  WaitForEvent(event, CancelToken(), std::move(promise), &resumed_on);
  // The coroutine is suspended, not blocking this thread.
  EXPECT_EQ(future.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_TRUE(event.Set().ok());
  EXPECT_TRUE(future.get().ok());
  EXPECT_NE(resumed_on, std::this_thread::get_id()) << "resumed by the gRPC thread";
  ASSERT_TRUE(event.Clear().ok());
}

TEST(AwaitableTest, CancelTokenResumesASuspendedCoroutineWithCancelled) {
  Client client = MustConnect();
  Event event = client.Event(Name());
  CancelToken cancel;
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  std::thread::id resumed_on;
  WaitForEvent(event, cancel, std::move(promise), &resumed_on);
  ASSERT_TRUE(Eventually([&] { return Waiters(client, event.name()) == 1; }));
  std::thread([cancel] { cancel.Cancel(); }).join();
  EXPECT_EQ(future.get().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Eventually([&] { return Waiters(client, event.name()) == 0; }));
}

TEST(AwaitableTest, ACallThatCompletesAtOnceDoesNotSuspend) {
  Client client = MustConnect();
  CancelToken cancel;
  cancel.Cancel();  // the call ends before it is sent, on this thread
  std::promise<absl::Status> promise;
  auto future = promise.get_future();
  std::thread::id resumed_on;
  WaitForEvent(client.Event(Name()), cancel, std::move(promise), &resumed_on);
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(future.get().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());
}

// A one-thread executor: what an application's event loop would be.
class Executor {
 public:
  Executor() : thread_([this] { Run(); }) {}
  ~Executor() {
    Post(nullptr);
    thread_.join();
  }
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void Run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return !queue_.empty(); });
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      if (!fn) return;
      fn();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::thread thread_;
};

Detached SequenceOnExecutor(Queue queue, Executor* executor, std::promise<std::string> result) {
  auto on_executor = [executor](std::coroutine_handle<> h) { executor->Post([h] { h.resume(); }); };
  absl::StatusOr<PutResult> put = co_await Await<PutResult>(
      [&](Callback<PutResult> done) { return queue.AsyncPut({Item{.data = "hello"}}, {}, done); },
      on_executor);
  if (!put.ok() || std::this_thread::get_id() != executor->id()) {
    result.set_value("put failed or not on the executor");
    co_return;
  }
  absl::StatusOr<std::vector<Delivery>> got = co_await Await<std::vector<Delivery>>(
      [&](Callback<std::vector<Delivery>> done) { return queue.AsyncGet({}, done); }, on_executor);
  if (!got.ok() || std::this_thread::get_id() != executor->id()) {
    result.set_value("get failed or not on the executor");
    co_return;
  }
  // On the executor (not a gRPC thread), blocking forms are fine.
  (void)queue.Ack(got->front());
  result.set_value(got->front().data);
}

TEST(AwaitableTest, ResumesOnAnExecutorWhenAskedTo) {
  Client client = MustConnect();
  Executor executor;
  std::promise<std::string> promise;
  auto future = promise.get_future();
  SequenceOnExecutor(client.Queue(Name()), &executor, std::move(promise));
  EXPECT_EQ(future.get(), "hello");
}

}  // namespace
}  // namespace baton::testing
