// Semaphores: declared capacity, weighted FIFO grants without barging.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

int64_t Available(const std::optional<Result>& r) { return std::get<Granted>(r->value).available; }

TEST(SemaphoreTest, CapacityIsRequiredOnFirstUse) {
  Harness h;
  EXPECT_EQ(ReplyTo(h.Apply(SemCmd("s", 0, 1), 1), 1)->status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(SemaphoreTest, ADifferentCapacityLaterIsFailedPrecondition) {
  Harness h;
  h.Apply(SemCmd("s", 3, 1), 1);
  EXPECT_EQ(ReplyTo(h.Apply(SemCmd("s", 4, 1), 2), 2)->status.code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReplyTo(h.Apply(SemCmd("s", 0, 1), 3), 3)->ok());  // 0: as declared
}

TEST(SemaphoreTest, WeightedAcquiresShareTheCapacity) {
  Harness h;
  EXPECT_EQ(Available(ReplyTo(h.Apply(SemCmd("s", 5, 2), 1), 1)), 3);
  EXPECT_EQ(Available(ReplyTo(h.Apply(SemCmd("s", 5, 3), 2), 2)), 0);
  EXPECT_FALSE(ReplyTo(h.Apply(SemCmd("s", 5, 1), 3), 3).has_value());
}

TEST(SemaphoreTest, CountOverCapacityIsInvalidArgument) {
  Harness h;
  EXPECT_EQ(ReplyTo(h.Apply(SemCmd("s", 3, 4), 1), 1)->status.code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(SemaphoreTest, LargeRequestAtTheHeadIsNotStarvedBySmallOnes) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(SemCmd("s", 3, 2), 1), 1));
  h.Apply(SemCmd("s", 3, 3), 2);  // waits for all 3
  // One permit is free, but a small request must not barge past the head.
  EXPECT_FALSE(ReplyTo(h.Apply(SemCmd("s", 3, 1), 3), 3).has_value());
  auto out = h.Apply(ReleasePermits{Kind::kSemaphore, "s", t1, 0, 0}, 10);
  EXPECT_TRUE(ReplyTo(out, 2).has_value());
  EXPECT_FALSE(ReplyTo(out, 3).has_value());
}

TEST(SemaphoreTest, CancellingTheHeadLetsSmallerRequestsThrough) {
  Harness h;
  h.Apply(SemCmd("s", 3, 2), 1);
  h.Apply(SemCmd("s", 3, 3), 2);
  h.Apply(SemCmd("s", 3, 1), 3);
  auto out = h.Apply(CancelWait{}, 2);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(ReplyTo(out, 3).has_value());
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
}

TEST(SemaphoreTest, TimeoutOfTheHeadLetsSmallerRequestsThrough) {
  Harness h;
  h.Apply(SemCmd("s", 3, 2), 1);
  h.Apply(SemCmd("s", 3, 3, h.now + kSecond), 2);
  h.Apply(SemCmd("s", 3, 1), 3);
  auto out = h.Advance(kSecond);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
}

TEST(SemaphoreTest, PartialReleaseReturnsSomePermits) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(SemCmd("s", 4, 3), 1), 1));
  auto r = ReplyTo(h.Apply(ReleasePermits{Kind::kSemaphore, "s", t, 0, 2}, 2), 2);
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(std::get<Released>(r->value).remaining, 1);
  EXPECT_EQ(std::get<Released>(r->value).available, 3);
  EXPECT_EQ(ReplyTo(h.Apply(ReleasePermits{Kind::kSemaphore, "s", t, 0, 5}, 3), 3)->status.code(),
            absl::StatusCode::kFailedPrecondition);
  r = ReplyTo(h.Apply(ReleasePermits{Kind::kSemaphore, "s", t, 0, 0}, 4), 4);
  EXPECT_EQ(std::get<Released>(r->value).remaining, 0);
  EXPECT_EQ(h.state.resource_count(), 1u);  // its declaration lasts
}

TEST(SemaphoreTest, UndeliveredGrantReturnsItsPermits) {
  Harness h;
  auto g = ReplyTo(h.Apply(SemCmd("s", 2, 2), 1), 1);
  h.Apply(SemCmd("s", 2, 1), 2);
  h.Apply(SemCmd("s", 2, 1), 3);
  auto out =
      h.Apply(Undeliver{Kind::kSemaphore, "s", TokenOf(g), std::get<Granted>(g->value).delivery});
  EXPECT_TRUE(ReplyTo(out, 2)->ok());
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
}

}  // namespace
}  // namespace baton::apply
