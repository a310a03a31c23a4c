// Events: set, clear, wait, watch.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

TEST(EventTest, WaitOnASetEventReturnsAtOnce) {
  Harness h;
  h.Apply(SetEvent{"e"}, 1);
  std::optional<Result> r = ReplyTo(h.Apply(WaitEvent{"e", 0, kForever}, 2), 2);
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(std::get<EventOutcome>(r->value).how, GrantHow::kImmediate);
}

TEST(EventTest, SetWakesEveryWaiter) {
  Harness h;
  h.Apply(WaitEvent{"e", 0, kForever}, 1);
  h.Apply(WaitEvent{"e", 0, kForever}, 2);
  auto out = h.Apply(SetEvent{"e"}, 3);
  EXPECT_TRUE(ReplyTo(out, 1)->ok());
  EXPECT_TRUE(ReplyTo(out, 2)->ok());
  EXPECT_EQ(std::get<EventOutcome>(ReplyTo(out, 3)->value).woken, 2u);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(EventTest, ClearMakesLaterWaitersWait) {
  Harness h;
  h.Apply(SetEvent{"e"}, 1);
  auto r = ReplyTo(h.Apply(ClearEvent{"e"}, 2), 2);
  EXPECT_TRUE(std::get<EventOutcome>(r->value).previous_set);
  EXPECT_FALSE(ReplyTo(h.Apply(WaitEvent{"e", 0, kForever}, 3), 3).has_value());
}

TEST(EventTest, ZeroTimeoutOnAClearEventIsDeadlineExceeded) {
  Harness h;
  EXPECT_EQ(ReplyTo(h.Apply(WaitEvent{"e", 0, h.now}, 1), 1)->status.code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(EventTest, WatchersSeeTheCurrentStateThenEachChange) {
  Harness h;
  auto first = h.Apply(WatchEvent{"e"}, 7);
  EXPECT_FALSE(std::get<EventChange>(ReplyTo(first, 7)->value).set);
  EXPECT_TRUE(std::get<EventChange>(ReplyTo(h.Apply(SetEvent{"e"}, 1), 7)->value).set);
  EXPECT_FALSE(ReplyTo(h.Apply(SetEvent{"e"}, 2), 7).has_value());  // no change, no message
  EXPECT_FALSE(std::get<EventChange>(ReplyTo(h.Apply(ClearEvent{"e"}, 3), 7)->value).set);
  h.Apply(UnwatchEvent{"e"}, 7);
  EXPECT_FALSE(ReplyTo(h.Apply(SetEvent{"e"}, 4), 7).has_value());
}

TEST(EventTest, ClearEventWithoutWaitersOrWatchersIsReclaimed) {
  Harness h;
  h.Apply(SetEvent{"e"}, 1);
  EXPECT_EQ(h.state.resource_count(), 1u);
  h.Apply(ClearEvent{"e"}, 2);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(EventTest, CancelledWaiterLeavesNothingBehind) {
  Harness h;
  h.Apply(WaitEvent{"e", 0, h.now + kSecond}, 1);
  EXPECT_EQ(ReplyTo(h.Apply(CancelWait{}, 1), 1)->status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.timer_count(), 0u);
}

}  // namespace
}  // namespace baton::apply
