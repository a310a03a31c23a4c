// Semaphore and SemaphoreGuard against a real batond: weighted permits, RAII
// return at scope exit, partial release, capacity rules, cancellation.
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(SemaphoreTest, WeightedPermitsAreReturnedAtScopeExit) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  {
    auto two = a.Semaphore(name, 3).Acquire(2);
    ASSERT_TRUE(two.ok()) << two.status();
    EXPECT_EQ(two->count(), 2);
    EXPECT_EQ(two->available_at_grant(), 1);
    EXPECT_EQ(b.Semaphore(name).TryAcquire(2).status().code(), absl::StatusCode::kDeadlineExceeded);
    auto one = b.Semaphore(name).TryAcquire(1);
    ASSERT_TRUE(one.ok()) << one.status();
    auto info = a.Admin().Describe(name);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->capacity, 3);
    EXPECT_EQ(info->available, 0);
    EXPECT_EQ(info->holders.size(), 2u);
  }
  // Every permit is back; the semaphore's declaration (its capacity) lasts.
  auto after = a.Admin().Describe(name);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->available, 3);
  EXPECT_TRUE(after->holders.empty());
}

TEST(SemaphoreTest, DeleteEndsTheDeclarationOnceNothingIsHeld) {
  Client a = MustConnect();
  std::string name = Name();
  {
    auto held = a.Semaphore(name, 2).Acquire();
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_EQ(a.Semaphore(name).Delete().status().code(), absl::StatusCode::kFailedPrecondition);
  }
  auto deleted = a.Semaphore(name).Delete();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(*deleted);
  EXPECT_EQ(a.Admin().Describe(name).status().code(), absl::StatusCode::kNotFound);
  deleted = a.Semaphore(name).Delete();
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_FALSE(*deleted);
  // Declared anew with another capacity.
  auto again = a.Semaphore(name, 5).Acquire(4);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->available_at_grant(), 1);
}

TEST(SemaphoreTest, PartialReleaseKeepsTheRest) {
  Client client = MustConnect();
  std::string name = Name();
  auto held = client.Semaphore(name, 5).Acquire(3);
  ASSERT_TRUE(held.ok());
  absl::StatusOr<int64_t> available = held->Release(1);
  ASSERT_TRUE(available.ok()) << available.status();
  EXPECT_EQ(*available, 3);
  EXPECT_EQ(held->count(), 2);
  EXPECT_TRUE(held->holds());
  EXPECT_TRUE(held->Release().ok());
  EXPECT_FALSE(held->holds());
  EXPECT_TRUE(Free(client, name));
}

TEST(SemaphoreTest, WaiterGetsPermitsWhenTheyAreReturned) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  auto all = a.Semaphore(name, 2).Acquire(2);
  ASSERT_TRUE(all.ok());
  std::optional<absl::StatusOr<SemaphoreGuard>> got;
  std::thread waiter(
      [&] { got.emplace(b.Semaphore(name).Acquire(2, {.timeout = absl::Seconds(10)})); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  ASSERT_TRUE(all->Release().ok());
  waiter.join();
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ((*got)->outcome(), GrantOutcome::kAfterWait);
  EXPECT_GT((*got)->token(), all->token());
}

TEST(SemaphoreTest, CapacityRules) {
  Client client = MustConnect();
  std::string name = Name();
  EXPECT_EQ(client.Semaphore(name).Acquire().status().code(), absl::StatusCode::kInvalidArgument)
      << "a new semaphore needs a capacity";
  auto held = client.Semaphore(name, 2).Acquire();
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(client.Semaphore(name, 4).TryAcquire().status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(client.Semaphore(name, 2).TryAcquire(3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SemaphoreTest, AsyncAcquireCancelledWhileWaitingLeavesNothingHeld) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  auto all = a.Semaphore(name, 1).Acquire();
  ASSERT_TRUE(all.ok());
  std::optional<absl::StatusOr<SemaphoreGuard>> got;
  Call call = b.Semaphore(name).AsyncAcquire(
      1, {}, [&](absl::StatusOr<SemaphoreGuard> g) { got.emplace(std::move(g)); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  EXPECT_FALSE(call.done());
  call.Cancel();
  call.Wait();
  EXPECT_EQ(got->status().code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(all->Release().ok());
  EXPECT_TRUE(Eventually([&] { return Free(a, name); }));
}

}  // namespace
}  // namespace baton::testing
