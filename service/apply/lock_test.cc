// Locks as the state machine sees them: FIFO grants, fencing, leases,
// cancellation and rollback. Time is advanced by hand; nothing sleeps.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

TEST(LockTest, FreeLockIsGrantedAtOnce) {
  Harness h;
  auto out = h.Apply(LockCmd("a"), 1);
  std::optional<Result> r = ReplyTo(out, 1);
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(std::get<Granted>(r->value).how, GrantHow::kImmediate);
  EXPECT_EQ(std::get<Granted>(r->value).expires_in, kSecond);
}

TEST(LockTest, HeldLockParksTheCaller) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  auto out = h.Apply(LockCmd("a"), 2);
  EXPECT_FALSE(ReplyTo(out, 2).has_value());
  EXPECT_EQ(h.state.waiter_count(), 1u);
}

TEST(LockTest, ReleaseGrantsOldestWaiterFirst) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 1), 1));
  h.Apply(LockCmd("a"), 2);
  h.Apply(LockCmd("a"), 3);
  auto out = h.Apply(ReleasePermits{Kind::kLock, "a", t1, 0, 0}, 10);
  ASSERT_TRUE(ReplyTo(out, 10)->ok());
  EXPECT_TRUE(std::get<Released>(ReplyTo(out, 10)->value).handed_off);
  std::optional<Result> g2 = ReplyTo(out, 2);
  ASSERT_TRUE(g2.has_value());
  EXPECT_EQ(std::get<Granted>(g2->value).how, GrantHow::kAfterWait);
  EXPECT_FALSE(ReplyTo(out, 3).has_value());
}

TEST(LockTest, FencingTokensStrictlyIncrease) {
  Harness h;
  uint64_t last = 0;
  for (int i = 0; i < 100; ++i) {
    uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 1), 1));
    EXPECT_GT(t, last);
    last = t;
    ASSERT_TRUE(ReplyTo(h.Apply(ReleasePermits{Kind::kLock, "a", t, 0, 0}, 2), 2)->ok());
  }
}

TEST(LockTest, TryOnceOnHeldLockIsDeadlineExceeded) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  std::optional<Result> r = ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now), 2), 2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(LockTest, WaiterTimesOutAtItsDeadline) {
  Harness h;
  h.Apply(LockCmd("a", 0, 60 * kSecond), 1);
  h.Apply(LockCmd("a", 0, kSecond, h.now + 500 * kMillisecond), 2);
  EXPECT_FALSE(ReplyTo(h.Advance(499 * kMillisecond), 2).has_value());
  std::optional<Result> r = ReplyTo(h.Advance(kMillisecond), 2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(LockTest, CancelWaitEndsTheWaitWithCancelled) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  h.Apply(LockCmd("a"), 2);
  std::optional<Result> r = ReplyTo(h.Apply(CancelWait{}, 2), 2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(LockTest, CancelAfterGrantChangesNothing) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  auto out = h.Apply(CancelWait{}, 1);
  EXPECT_EQ(CountReplies(out), 0);  // the grant is already on its way
  EXPECT_EQ(h.state.resource_count(), 1u);
}

uint64_t DeliveryOf(const std::optional<Result>& r) { return std::get<Granted>(r->value).delivery; }

TEST(LockTest, UndeliveredGrantPassesToTheNextWaiter) {
  Harness h;
  auto g1 = ReplyTo(h.Apply(LockCmd("a"), 1), 1);
  uint64_t t1 = TokenOf(g1);
  h.Apply(LockCmd("a"), 2);
  auto out = h.Apply(Undeliver{Kind::kLock, "a", t1, DeliveryOf(g1)});
  uint64_t t2 = TokenOf(ReplyTo(out, 2));
  EXPECT_GT(t2, t1);
}

TEST(LockTest, UndeliverOfAReleasedTokenIsANoop) {
  Harness h;
  auto g1 = ReplyTo(h.Apply(LockCmd("a"), 1), 1);
  uint64_t t1 = TokenOf(g1);
  h.Apply(ReleasePermits{Kind::kLock, "a", t1, 0, 0}, 2);
  uint64_t t3 = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 3), 3));
  auto out = h.Apply(Undeliver{Kind::kLock, "a", t1, DeliveryOf(g1)});
  EXPECT_EQ(CountReplies(out), 0);
  // t3 still holds: a second acquirer must wait.
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a"), 4), 4).has_value());
  EXPECT_NE(t3, 0u);
}

// A rollback sent by an op is answered Done once applied (the op then
// answers CANCELLED), after the grant it hands on; one with no op (a replay,
// a timer) gets no answer.
TEST(LockTest, ARollbackWithAnOpIsAnsweredOnceApplied) {
  Harness h;
  auto g1 = ReplyTo(h.Apply(LockCmd("a"), 1), 1);
  h.Apply(LockCmd("a"), 2);
  auto out = h.Apply(Undeliver{Kind::kLock, "a", TokenOf(g1), DeliveryOf(g1)}, 7);
  std::optional<Result> done = ReplyTo(out, 7);
  ASSERT_TRUE(done.has_value());
  ASSERT_TRUE(done->ok());
  EXPECT_TRUE(std::holds_alternative<Done>(done->value));
  EXPECT_TRUE(ReplyTo(out, 2).has_value());  // the lock went on to the next waiter
  // Also when there was nothing left to roll back.
  done = ReplyTo(h.Apply(Undeliver{Kind::kLock, "a", TokenOf(g1), DeliveryOf(g1)}, 8), 8);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->ok());
  EXPECT_EQ(CountReplies(h.Apply(Undeliver{Kind::kLock, "a", TokenOf(g1), DeliveryOf(g1)})), 0);
}

TEST(LockTest, LeaseExpiryReleasesAndGrantsTheNextWaiter) {
  Harness h;
  h.Apply(LockCmd("a", 0, 2 * kSecond), 1);
  h.Apply(LockCmd("a"), 2);
  EXPECT_FALSE(ReplyTo(h.Advance(kSecond), 2).has_value());
  std::optional<Result> r = ReplyTo(h.Advance(kSecond), 2);
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->ok());
}

TEST(LockTest, RefreshExtendsTheLease) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, 2 * kSecond), 1), 1));
  h.Advance(kSecond);
  auto r = ReplyTo(h.Apply(RefreshPermits{Kind::kLock, "a", t, 0, 5 * kSecond}, 2), 2);
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(std::get<Refreshed>(r->value).expires_in, 5 * kSecond);
  h.Advance(3 * kSecond);  // past the original lease
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now), 3), 3)->status.code(),
            absl::StatusCode::kDeadlineExceeded);
  h.Advance(2 * kSecond);
  EXPECT_TRUE(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now), 4), 4)->ok());
}

TEST(LockTest, ReleaseWithAWrongTokenIsFailedPrecondition) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 1), 1));
  auto r = ReplyTo(h.Apply(ReleasePermits{Kind::kLock, "a", t + 1, 0, 0}, 2), 2);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(LockTest, ReleaseOfAnUnknownLockIsFailedPrecondition) {
  Harness h;
  auto r = ReplyTo(h.Apply(ReleasePermits{Kind::kLock, "nope", 5, 0, 0}, 2), 2);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(LockTest, RetryWithTheSameRequestIdReturnsTheSameGrant) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, kForever, "req-1"), 1), 1));
  std::optional<Result> r = ReplyTo(h.Apply(LockCmd("a", 0, kSecond, kForever, "req-1"), 2), 2);
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(std::get<Granted>(r->value).token, t1);
  EXPECT_EQ(std::get<Granted>(r->value).how, GrantHow::kReplayed);
}

// The first reply was lost, the client retried and got a replay, and only
// then did the rollback of the first reply arrive: it must not take the lock
// away from a client that now knows it holds it.
TEST(LockTest, RollbackOfASupersededDeliveryIsIgnored) {
  Harness h;
  auto first = ReplyTo(h.Apply(LockCmd("a", 0, kSecond, kForever, "r"), 1), 1);
  auto replay = ReplyTo(h.Apply(LockCmd("a", 0, kSecond, kForever, "r"), 2), 2);
  EXPECT_EQ(std::get<Granted>(replay->value).how, GrantHow::kReplayed);
  h.Apply(Undeliver{Kind::kLock, "a", TokenOf(first), DeliveryOf(first)});
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now), 3), 3)->ok());  // still held
  // A lost replay rolls back like any grant.
  h.Apply(Undeliver{Kind::kLock, "a", TokenOf(replay), DeliveryOf(replay)});
  EXPECT_TRUE(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now), 4), 4)->ok());
}

TEST(LockTest, UsingALockNameAsAnotherKindIsFailedPrecondition) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  auto r = ReplyTo(h.Apply(SemCmd("a", 3, 1), 2), 2);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplyTo(h.Apply(SetEvent{"a"}, 3), 3)->status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(LockTest, ReleasedLockIsReclaimed) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 1), 1));
  EXPECT_EQ(h.state.resource_count(), 1u);
  h.Apply(ReleasePermits{Kind::kLock, "a", t, 0, 0}, 2);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.timer_count(), 0u);
}

TEST(LockTest, WaiterLimitPerResourceIsResourceExhausted) {
  Limits l;
  l.max_waiters_per_resource = 2;
  Harness h(l);
  h.Apply(LockCmd("a"), 1);
  h.Apply(LockCmd("a"), 2);
  h.Apply(LockCmd("a"), 3);
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("a"), 4), 4)->status.code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(LockTest, NameLimitIsResourceExhausted) {
  Limits l;
  l.max_resources = 2;
  Harness h(l);
  h.Apply(LockCmd("a"), 1);
  h.Apply(LockCmd("b"), 2);
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("c"), 3), 3)->status.code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(LockTest, ShutdownEndsWaitsWithUnavailableAndRefusesNewOnes) {
  Harness h;
  h.Apply(LockCmd("a"), 1);
  h.Apply(LockCmd("a"), 2);
  auto out = h.Apply(BeginShutdown{});
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("b"), 3), 3)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

// Tokens are a hybrid clock (max(last + 1, offset + now)): strictly
// increasing per lock even when many grants share one microsecond, and
// increasing across shards and restarts in real-time order.
TEST(LockTest, FencingTokensIncreaseWithinOneMicrosecond) {
  Harness h;
  uint64_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a"), 1), 1));
    EXPECT_GT(t, prev);
    prev = t;
    h.Apply(ReleasePermits{Kind::kLock, "a", t, 0, 0}, 2);
  }
}

TEST(LockTest, FencingTokensIncreaseAcrossShardsInRealTimeOrder) {
  Harness a({}, 0, 2), b({}, 1, 2);
  uint64_t ta = TokenOf(ReplyTo(a.Apply(LockCmd("x"), 1), 1));
  b.now = a.now + 1;  // one microsecond later, on another shard
  uint64_t tb = TokenOf(ReplyTo(b.Apply(LockCmd("y"), 1), 1));
  EXPECT_GT(tb, ta);
}

TEST(LockTest, FencingTokensIncreaseAcrossARestartByReplay) {
  // Before the restart: a burst of grants pushes the counter ahead of the
  // clock (100 grants in the same microsecond).
  ShardState before(0, 1, {});
  Effects out;
  for (uint64_t op = 1; op <= 100; ++op) {
    before.Apply(LockCmd(absl::StrCat("k", op)), OpRef{0, op}, 5'000'000, out);
  }
  uint64_t last = before.last_token();
  EXPECT_EQ(last, 5'000'099u);
  // After it: replaying the log (the same commands at the same cluster
  // times) restores the counter, and the next grant is above it even though
  // the clock has hardly moved.
  ShardState after(0, 1, {});
  for (uint64_t op = 1; op <= 100; ++op) {
    after.Apply(LockCmd(absl::StrCat("k", op)), OpRef{0, op}, 5'000'000, out);
  }
  EXPECT_EQ(after.last_token(), last);
  out.clear();
  after.Apply(LockCmd("fresh"), OpRef{0, 101}, 5'000'001, out);
  EXPECT_GT(TokenOf(ReplyTo(out, 101)), last);
}

}  // namespace
}  // namespace baton::apply
