// Futures, barriers and conditions: their state machines under a manual
// clock, no sleeps.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

using primitives::FutureState;
using primitives::FutureValue;

FutureValue Value(FutureState state, std::string value = "", int32_t code = 0,
                  std::string message = "") {
  FutureValue v;
  v.state = state;
  v.value = std::move(value);
  v.error_code = code;
  v.error_message = std::move(message);
  return v;
}

CompleteFuture Result_(std::string name, std::string value, Duration retention = 0) {
  return CompleteFuture{std::move(name), Value(FutureState::kResult, std::move(value)), retention};
}

FutureOutcome Outcome(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value() && r->ok());
  return (*std::get<Boxed<FutureOutcome>>(r->value));
}

// --- futures ---

TEST(FutureTest, EveryAwaiterGetsTheResult) {
  Harness h;
  h.Apply(AwaitFuture{"f", 0, kForever}, 1);
  h.Apply(AwaitFuture{"f", 0, kForever}, 2);
  auto out = h.Apply(Result_("f", "42"), 3);
  EXPECT_EQ(Outcome(ReplyTo(out, 1)).value.value, "42");
  EXPECT_EQ(Outcome(ReplyTo(out, 2)).value.value, "42");
  EXPECT_EQ(Outcome(ReplyTo(out, 3)).woken, 2u);
  // Later awaiters get it at once.
  EXPECT_EQ(Outcome(ReplyTo(h.Apply(AwaitFuture{"f", 0, h.now}, 4), 4)).how, GrantHow::kImmediate);
}

TEST(FutureTest, SettingADoneFutureIsFailedPrecondition) {
  Harness h;
  h.Apply(Result_("f", "1"), 1);
  EXPECT_EQ(ReplyTo(h.Apply(Result_("f", "2"), 2), 2)->status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FutureTest, CancelOfADoneFutureReturnsFalse) {
  Harness h;
  h.Apply(Result_("f", "1"), 1);
  auto r = ReplyTo(h.Apply(CompleteFuture{"f", Value(FutureState::kCancelled), 0}, 2), 2);
  EXPECT_FALSE(Outcome(r).changed);
  EXPECT_EQ(Outcome(r).value.state, FutureState::kResult);
}

TEST(FutureTest, ExceptionIsDeliveredAsData) {
  Harness h;
  h.Apply(AwaitFuture{"f", 0, kForever}, 1);
  auto out = h.Apply(CompleteFuture{"f", Value(FutureState::kException, "", 13, "boom"), 0}, 2);
  EXPECT_EQ(Outcome(ReplyTo(out, 1)).value.error_message, "boom");
}

TEST(FutureTest, DoneFutureIsReclaimedAfterItsRetention) {
  Harness h;
  h.Apply(Result_("f", "1", 10 * kSecond), 1);
  h.Advance(9 * kSecond);
  EXPECT_EQ(h.state.resource_count(), 1u);
  h.Advance(kSecond);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(FutureTest, PendingAwaitTimesOutAndLeavesNothing) {
  Harness h;
  h.Apply(AwaitFuture{"f", 0, h.now + kSecond}, 1);
  auto out = h.Advance(kSecond);
  EXPECT_EQ(ReplyTo(out, 1)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

// --- barriers ---

TEST(BarrierTest, TripsWhenAllPartiesArriveWithTheirIndices) {
  Harness h;
  EXPECT_TRUE(h.Apply(BarrierWait{"b", 3, 0, kForever}, 1).empty());
  EXPECT_TRUE(h.Apply(BarrierWait{"b", 3, 0, kForever}, 2).empty());
  auto out = h.Apply(BarrierWait{"b", 3, 0, kForever}, 3);
  EXPECT_EQ(std::get<Passed>(ReplyTo(out, 1)->value).index, 0u);
  EXPECT_EQ(std::get<Passed>(ReplyTo(out, 2)->value).index, 1u);
  EXPECT_EQ(std::get<Passed>(ReplyTo(out, 3)->value).index, 2u);
  EXPECT_EQ(std::get<Passed>(ReplyTo(out, 3)->value).cycle, 1u);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(BarrierTest, AWaiterThatTimesOutBreaksTheBarrier) {
  Harness h;
  h.Apply(BarrierWait{"b", 3, 0, kForever}, 1);
  h.Apply(BarrierWait{"b", 3, 0, h.now + kSecond}, 2);
  auto out = h.Advance(kSecond);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ReplyTo(out, 1)->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReplyTo(h.Apply(BarrierWait{"b", 3, 0, kForever}, 3), 3)->status.code(),
            absl::StatusCode::kAborted);
  h.Apply(ResetBarrier{"b"}, 4);
  EXPECT_TRUE(h.Apply(BarrierWait{"b", 3, 0, kForever}, 5).empty());  // waits again
}

TEST(BarrierTest, AbortBreaksUntilReset) {
  Harness h;
  h.Apply(BarrierWait{"b", 2, 0, kForever}, 1);
  auto out = h.Apply(AbortBarrier{"b"}, 2);
  EXPECT_EQ(ReplyTo(out, 1)->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReplyTo(h.Apply(BarrierWait{"b", 2, 0, kForever}, 3), 3)->status.code(),
            absl::StatusCode::kAborted);
  h.Apply(ResetBarrier{"b"}, 4);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(BarrierTest, PartiesAreFixedOnFirstUse) {
  Harness h;
  h.Apply(BarrierWait{"b", 3, 0, kForever}, 1);
  EXPECT_EQ(ReplyTo(h.Apply(BarrierWait{"b", 4, 0, kForever}, 2), 2)->status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplyTo(h.Apply(BarrierWait{"new", 0, 0, kForever}, 3), 3)->status.code(),
            absl::StatusCode::kInvalidArgument);
}

// --- conditions ---

Granted GrantOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value() && r->ok());
  return std::get<Granted>(r->value);
}

TEST(ConditionTest, WaitReleasesTheLockAndNotifyHandsItBackWithANewToken) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("l", 0, 60 * kSecond), 1), 1));
  auto out = h.Apply(ConditionWait{"l", "c", t1, 0, 0, kForever, kForever}, 2);
  EXPECT_TRUE(out.empty());
  // The lock is free for someone else now.
  uint64_t t2 = TokenOf(ReplyTo(h.Apply(LockCmd("l", 0, 60 * kSecond), 3), 3));
  EXPECT_GT(t2, t1);
  auto n = h.Apply(Notify{"l", "c", t2, 0, 1, false}, 4);
  EXPECT_EQ(std::get<Notified>(ReplyTo(n, 4)->value).woken, 1u);
  EXPECT_FALSE(ReplyTo(n, 2).has_value());  // still needs the lock
  auto rel = h.Apply(ReleasePermits{Kind::kLock, "l", t2, 0, 0}, 5);
  Granted g = GrantOf(ReplyTo(rel, 2));
  EXPECT_GT(g.token, t2);
  EXPECT_EQ(g.condition_outcome, primitives::ConditionOutcome::kNotified);
}

TEST(ConditionTest, WaitWithoutHoldingTheLockIsFailedPrecondition) {
  Harness h;
  EXPECT_EQ(
      ReplyTo(h.Apply(ConditionWait{"l", "", 7, 0, 0, kForever, kForever}, 1), 1)->status.code(),
      absl::StatusCode::kFailedPrecondition);
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 2), 2));
  EXPECT_EQ(ReplyTo(h.Apply(ConditionWait{"l", "", t + 1, 0, 0, kForever, kForever}, 3), 3)
                ->status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ReplyTo(h.Apply(Notify{"l", "", t + 1, 0, 1, false}, 4), 4)->status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(ConditionTest, TimeoutReacquiresTheLockAndSaysSo) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  h.Apply(ConditionWait{"l", "", t1, 0, 0, h.now + kSecond, kForever}, 2);
  auto out = h.Advance(kSecond);
  Granted g = GrantOf(ReplyTo(out, 2));
  EXPECT_EQ(g.condition_outcome, primitives::ConditionOutcome::kTimedOut);
  EXPECT_GT(g.token, t1);
}

TEST(ConditionTest, NotifyAllWakesEveryWaiterWhoThenTakeTheLockInTurn) {
  Harness h;
  std::vector<uint64_t> ops = {1, 2, 3};
  for (uint64_t op : ops) {
    uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l", 0, 60 * kSecond), op), op));
    h.Apply(ConditionWait{"l", "c", t, 0, 0, kForever, kForever}, op);
  }
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l", 0, 60 * kSecond), 9), 9));
  EXPECT_EQ(
      std::get<Notified>(ReplyTo(h.Apply(Notify{"l", "c", t, 0, 0, true}, 10), 10)->value).woken,
      3u);
  auto out = h.Apply(ReleasePermits{Kind::kLock, "l", t, 0, 0}, 11);
  for (uint64_t op : ops) {
    Granted g = GrantOf(ReplyTo(out, op));
    EXPECT_EQ(CountReplies(out), 2);  // one grant, one release reply
    out = h.Apply(ReleasePermits{Kind::kLock, "l", g.token, 0, 0}, 20 + op);
  }
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(ConditionTest, TheRpcDeadlineEndsTheWaitWithoutReacquiring) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  h.Apply(ConditionWait{"l", "", t1, 0, 0, kForever, h.now + kSecond}, 2);
  auto out = h.Advance(kSecond);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 0u);  // the lock is free
}

TEST(ConditionTest, CancelledWaiterLeavesTheLockFree) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  h.Apply(ConditionWait{"l", "", t, 0, 0, kForever, kForever}, 2);
  auto out = h.Apply(CancelWait{}, 2);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

}  // namespace
}  // namespace baton::apply
