// Condition against a real batond: Wait releases the lock and re-acquires it
// with a new fence; Notify / NotifyAll; timeouts; WaitUntil; a cancelled wait
// leaves nothing held.
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(ConditionTest, NotifyWakesAWaiterWhichHoldsTheLockAgain) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string lock = Name("lock");
  auto held = a.Lock(lock).Acquire();
  ASSERT_TRUE(held.ok());
  uint64_t before = held->fence();
  std::optional<absl::StatusOr<ConditionOutcome>> outcome;
  std::thread waiter([&] { outcome.emplace(a.Condition(lock, "ready").Wait(*held)); });

  // The wait released the lock, so the notifier can take it.
  auto notifier = b.Lock(lock).Acquire(absl::Seconds(10));
  ASSERT_TRUE(notifier.ok()) << notifier.status();
  absl::StatusOr<uint32_t> woken = b.Condition(lock, "ready").Notify(*notifier);
  ASSERT_TRUE(woken.ok()) << woken.status();
  EXPECT_EQ(*woken, 1u);
  ASSERT_TRUE(notifier->Release().ok());
  waiter.join();

  ASSERT_TRUE(outcome->ok()) << outcome->status();
  EXPECT_EQ(**outcome, ConditionOutcome::kNotified);
  EXPECT_TRUE(held->holds());
  EXPECT_GT(held->fence(), notifier->fence());
  EXPECT_GT(notifier->fence(), before);
  auto info = a.Admin().Describe(lock);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->holders.size(), 1u);
  EXPECT_EQ(info->holders[0].token, held->fence());
  EXPECT_EQ(info->holders[0].session_id, a.session_id());
}

TEST(ConditionTest, TimeoutReacquiresAndSaysSo) {
  Client client = MustConnect();
  std::string lock = Name("lock");
  auto held = client.Lock(lock).Acquire();
  ASSERT_TRUE(held.ok());
  uint64_t before = held->fence();
  auto outcome = client.Condition(lock).Wait(*held, {.timeout = absl::Milliseconds(100)});
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, ConditionOutcome::kTimedOut);
  EXPECT_GT(held->fence(), before);
  EXPECT_TRUE(held->Release().ok()) << "the new fence is the holder's";
}

TEST(ConditionTest, NotifyAllWakesEveryWaiter) {
  Client a = MustConnect();
  Client b = MustConnect();
  Client c = MustConnect();
  std::string lock = Name("lock");
  std::vector<std::thread> waiters;
  std::atomic<int> notified{0};
  for (Client* w : {&a, &b}) {
    waiters.emplace_back([&, w] {
      auto held = w->Lock(lock).Acquire();
      ASSERT_TRUE(held.ok());
      auto outcome = w->Condition(lock).Wait(*held);
      if (outcome.ok() && *outcome == ConditionOutcome::kNotified) ++notified;
    });
  }
  ASSERT_TRUE(Eventually([&] {
    auto info = c.Admin().Describe(lock);
    return info.ok() && info->proto.conditions_size() == 1 &&
           info->proto.conditions(0).waiters() == 2;
  }));
  auto held = c.Lock(lock).Acquire();
  ASSERT_TRUE(held.ok());
  EXPECT_EQ(c.Condition(lock).NotifyAll(*held).value(), 2u);
  ASSERT_TRUE(held->Release().ok());
  for (auto& t : waiters) t.join();
  EXPECT_EQ(notified.load(), 2);
  EXPECT_TRUE(Free(c, lock));
}

TEST(ConditionTest, WaitUntilChecksThePredicateUnderTheLock) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string lock = Name("lock");
  std::atomic<int> items{0};
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) {
      auto held = b.Lock(lock).Acquire();
      ASSERT_TRUE(held.ok());
      ++items;
      ASSERT_TRUE(b.Condition(lock).Notify(*held).ok());
    }
  });
  auto held = a.Lock(lock).Acquire();
  ASSERT_TRUE(held.ok());
  absl::Status status = a.Condition(lock).WaitUntil(*held, [&] { return items.load() == 3; },
                                                    {.timeout = absl::Seconds(10)});
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_TRUE(held->holds());
  producer.join();
  EXPECT_EQ(a.Condition(lock)
                .WaitUntil(*held, [] { return false; }, {.timeout = absl::Milliseconds(100)})
                .code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(ConditionTest, CancelledWaitLeavesTheLockFree) {
  Client client = MustConnect();
  std::string lock = Name("lock");
  auto held = client.Lock(lock).Acquire();
  ASSERT_TRUE(held.ok());
  CancelToken cancel;
  std::optional<absl::StatusOr<ConditionOutcome>> outcome;
  std::thread waiter(
      [&] { outcome.emplace(client.Condition(lock).Wait(*held, {.cancel = cancel})); });
  ASSERT_TRUE(Eventually([&] {
    auto info = client.Admin().Describe(lock);
    return info.ok() && info->holders.empty() && info->proto.conditions_size() == 1;
  }));
  cancel.Cancel();
  waiter.join();
  EXPECT_EQ(outcome->status().code(), absl::StatusCode::kCancelled);
  EXPECT_FALSE(held->holds());
  EXPECT_TRUE(Eventually([&] { return Free(client, lock); }));
}

TEST(ConditionTest, NeedsAGuardOfItsOwnLock) {
  Client client = MustConnect();
  auto other = client.Lock(Name("other")).Acquire();
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(client.Condition(Name("lock")).Wait(*other).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(other->holds());
  LockGuard empty;
  EXPECT_EQ(client.Condition(Name("lock")).Notify(empty).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace baton::testing
