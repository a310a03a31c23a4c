// The README's code, compiled and run against a real batond so that the page
// stays true. Keep the two blocks below identical to README.md.
#include <atomic>
#include <coroutine>
#include <future>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

std::atomic<uint64_t> migrated_with_fence{0};
void RunMigration(uint64_t fence) { migrated_with_fence = fence; }

// ---- README: Quick start ------------------------------------------------------
absl::Status Migrate(const std::string& address = "127.0.0.1:7411") {
  absl::StatusOr<baton::Client> client = baton::Client::Connect(address);
  if (!client.ok()) return client.status();
  absl::StatusOr<baton::LockGuard> held = client->Lock("billing/nightly-migration").Acquire();
  if (!held.ok()) return held.status();   // kDeadlineExceeded, kAborted, ...
  RunMigration(/*fence=*/held->fence());  // pass the fencing token to your storage
  return absl::OkStatus();
}  // the lock is released here, then the session is closed
// --------------------------------------------------------------------------------

TEST(ReadmeTest, QuickStart) {
  if (SecureSuite()) GTEST_SKIP() << "the quick start connects in plaintext, without a token";
  ASSERT_TRUE(Migrate(SharedServer().address()).ok());
  EXPECT_GT(migrated_with_fence.load(), 0u);
  Client client = MustConnect();
  EXPECT_TRUE(Free(client, "billing/nightly-migration"));
}

// ---- README: wrapping a call by hand --------------------------------------------
struct AcquireAwaiter {
  baton::Lock lock;
  std::optional<absl::StatusOr<baton::LockGuard>> result{};
  std::atomic<bool> first{true};
  bool await_ready() { return false; }
  bool await_suspend(std::coroutine_handle<> h) {
    lock.AsyncAcquire({}, [this, h](absl::StatusOr<baton::LockGuard> r) {
      result.emplace(std::move(r));
      if (!first.exchange(false)) h.resume();  // await_suspend already returned true
    });
    return first.exchange(false);  // false: it completed inline, don't suspend
  }
  absl::StatusOr<baton::LockGuard> await_resume() { return std::move(*result); }
};
// --------------------------------------------------------------------------------

struct Eager {
  struct promise_type {
    Eager get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

Eager HoldBriefly(Lock lock, std::promise<absl::StatusOr<uint64_t>> out) {
  // A named awaiter, not a braced temporary in the co_await operand: GCC 12
  // miscompiles those (runtime/COROUTINES.md, rule 7).
  AcquireAwaiter awaiter{.lock = lock};
  absl::StatusOr<LockGuard> held = co_await awaiter;
  if (!held.ok()) {
    out.set_value(held.status());
    co_return;
  }
  out.set_value(held->fence());
}

TEST(ReadmeTest, HandWrittenAwaiter) {
  Client holder = MustConnect();
  Client client = MustConnect();
  std::string name = Name();
  auto held = holder.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  std::promise<absl::StatusOr<uint64_t>> promise;
  auto future = promise.get_future();
  HoldBriefly(client.Lock(name), std::move(promise));  // suspends: the lock is held
  EXPECT_EQ(future.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  ASSERT_TRUE(held->Release().ok());
  absl::StatusOr<uint64_t> fence = future.get();
  ASSERT_TRUE(fence.ok()) << fence.status();
  EXPECT_GT(*fence, held->fence());
  EXPECT_TRUE(Eventually([&] { return Free(client, name); }));
}

// ---- README: the consumer --------------------------------------------------------
int ConsumeAll(baton::Queue jobs, std::vector<std::string>& done) {
  baton::Consumer consumer = jobs.OpenConsumer({.prefetch = 32});
  for (auto d = consumer.Next(absl::Seconds(5)); d.ok(); d = consumer.Next(absl::Seconds(5))) {
    done.push_back(d->data);  // Work(d->data);
    (void)consumer.Ack(*d);   // rides on the next Get
    if (done.size() == 3) break;
  }
  return static_cast<int>(done.size());
}
// --------------------------------------------------------------------------------

TEST(ReadmeTest, Consumer) {
  Client client = MustConnect();
  baton::Queue jobs = client.Queue(Name());
  ASSERT_TRUE(jobs.PutMany({Item{.data = "a"}, Item{.data = "b"}, Item{.data = "c"}}).ok());
  std::vector<std::string> done;
  EXPECT_EQ(ConsumeAll(jobs, done), 3);
  EXPECT_EQ(done, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(Eventually([&] {
    auto info = client.Admin().Describe(jobs.name());
    return !info.ok() || info->proto.queue().in_flight() == 0;
  }));
}

}  // namespace
}  // namespace baton::testing
