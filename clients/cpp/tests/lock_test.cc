// Lock and LockGuard against a real batond: grants, fencing, RAII release at
// scope exit, leases, retries by request_id, cancellation, errors.
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(LockTest, AcquireGrantsAFenceOwnedByTheSession) {
  Client client = MustConnect();
  std::string name = Name();
  absl::StatusOr<LockGuard> held = client.Lock(name).Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_TRUE(held->holds());
  EXPECT_GT(held->fence(), 0u);
  EXPECT_EQ(held->outcome(), GrantOutcome::kImmediate);
  EXPECT_EQ(held->session_id(), client.session_id());

  absl::StatusOr<ResourceInfo> info = client.Admin().Describe(name);
  ASSERT_TRUE(info.ok()) << info.status();
  ASSERT_EQ(info->holders.size(), 1u);
  EXPECT_EQ(info->holders[0].token, held->fence());
  EXPECT_EQ(info->holders[0].session_id, client.session_id());
}

TEST(LockTest, GuardReleasesAtScopeExit) {
  Client owner = MustConnect();
  Client other = MustConnect();
  std::string name = Name();
  {
    auto held = owner.Lock(name).Acquire();
    ASSERT_TRUE(held.ok()) << held.status();
    EXPECT_EQ(other.Lock(name).TryAcquire().status().code(), absl::StatusCode::kDeadlineExceeded);
  }
  // Released synchronously by the destructor: no polling needed.
  EXPECT_EQ(owner.Admin().Describe(name).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(other.Lock(name).TryAcquire().ok());
}

TEST(LockTest, MovedGuardReleasesOnceFromItsNewOwner) {
  Client client = MustConnect();
  std::string name = Name();
  LockGuard outer;
  EXPECT_FALSE(outer.holds());
  {
    auto held = client.Lock(name).Acquire();
    ASSERT_TRUE(held.ok());
    outer = std::move(*held);
    EXPECT_FALSE(held->holds());
  }
  EXPECT_FALSE(Free(client, name)) << "the moved-from guard must not release";
  EXPECT_TRUE(outer.Release().ok());
  EXPECT_TRUE(Free(client, name));
  EXPECT_TRUE(outer.Release().ok()) << "releasing an empty guard is a no-op";
}

TEST(LockTest, WaiterIsGrantedWhenHolderReleasesWithGreaterFence) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  auto first = a.Lock(name).Acquire();
  ASSERT_TRUE(first.ok());
  std::optional<absl::StatusOr<LockGuard>> second;
  std::thread waiter([&] { second.emplace(b.Lock(name).Acquire(absl::Seconds(10))); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  uint64_t first_fence = first->fence();
  ASSERT_TRUE(first->Release().ok());
  waiter.join();
  ASSERT_TRUE(second->ok()) << second->status();
  EXPECT_EQ((*second)->outcome(), GrantOutcome::kAfterWait);
  EXPECT_GT((*second)->fence(), first_fence);
}

TEST(LockTest, AcquireTimesOutWhileHeld) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  auto held = a.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  absl::Time start = absl::Now();
  auto late = b.Lock(name).Acquire(absl::Milliseconds(300));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(250));
  EXPECT_EQ(Waiters(a, name), 0u);
}

TEST(LockTest, LeaseOnlyHoldingRunsOut) {
  Client client = MustConnect();
  std::string name = Name();
  auto held = client.Lock(name).Acquire(
      AcquireOptions{.lease = absl::Milliseconds(300), .use_session = false});
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->session_id(), 0u);
  ASSERT_TRUE(held->expires_in().has_value());
  EXPECT_LE(*held->expires_in(), absl::Milliseconds(300));
  EXPECT_TRUE(Eventually([&] { return Free(client, name); }));
  EXPECT_EQ(held->Release().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LockTest, RefreshExtendsTheLease) {
  Client client = MustConnect();
  std::string name = Name();
  auto held = client.Lock(name).Acquire(AcquireOptions{.lease = absl::Milliseconds(400)});
  ASSERT_TRUE(held.ok());
  absl::StatusOr<absl::Duration> left = held->Refresh(absl::Seconds(30));
  ASSERT_TRUE(left.ok()) << left.status();
  EXPECT_GT(*left, absl::Seconds(20));
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_FALSE(Free(client, name));
}

TEST(LockTest, RetryWithTheSameRequestIdReplaysTheGrant) {
  Client client = MustConnect();
  std::string name = Name();
  auto first = client.Lock(name).Acquire(AcquireOptions{.request_id = "job-1"});
  ASSERT_TRUE(first.ok());
  auto again = client.Lock(name).Acquire(
      AcquireOptions{.timeout = absl::ZeroDuration(), .request_id = "job-1"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome(), GrantOutcome::kReplayed);
  EXPECT_EQ(again->fence(), first->fence());
}

TEST(LockTest, CancelTokenEndsABlockingAcquireFromAnotherThread) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  auto held = a.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  CancelToken cancel;
  std::optional<absl::StatusOr<LockGuard>> result;
  std::thread waiter(
      [&] { result.emplace(b.Lock(name).Acquire(AcquireOptions{.cancel = cancel})); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  cancel.Cancel();
  waiter.join();
  EXPECT_EQ(result->status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Eventually([&] { return Waiters(a, name) == 0; }));
  // A token cancelled before the call ends it at once.
  EXPECT_EQ(b.Lock(name).Acquire(AcquireOptions{.cancel = cancel}).status().code(),
            absl::StatusCode::kCancelled);
}

TEST(LockTest, GuardDroppedInACompletionCallbackIsReleased) {
  Client client = MustConnect();
  std::string name = Name();
  std::atomic<uint64_t> fence{0};
  Call call = client.Lock(name).AsyncAcquire({}, [&](absl::StatusOr<LockGuard> held) {
    if (held.ok()) fence = held->fence();
    // `held` is destroyed here, on a gRPC thread.
  });
  call.Wait();
  EXPECT_GT(fence.load(), 0u);
  EXPECT_TRUE(Free(client, name));
}

TEST(LockTest, ErrorsCarryTheServerCode) {
  Client client = MustConnect();
  std::string name = Name();
  EXPECT_EQ(client.Lock("not a name").Acquire().status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(client.Event(name).Set().ok());
  auto wrong_kind = client.Lock(name).TryAcquire();
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(wrong_kind.status().message().empty());
  ASSERT_TRUE(client.Event(name).Clear().ok());
}

}  // namespace
}  // namespace baton::testing
