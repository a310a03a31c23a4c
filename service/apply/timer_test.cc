// Timers: firing once (late rather than never), periodic re-arming, cancel,
// replace, and retention of a fired one-shot timer. Manual time, no sleeps.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

ScheduleTimer SetLater(std::string name, Time due, Duration every = 0, std::string event = "e") {
  ScheduleTimer c;
  c.name = std::move(name);
  c.due = due;
  c.every = every;
  c.target = event;
  c.action = std::make_shared<const Command>(SetEvent{event});
  return c;
}

int Forwards(const Effects& out, const std::string& target) {
  int n = 0;
  for (const Effect& e : out) {
    if (auto* f = std::get_if<Forward>(&e); f && f->name == target) {
      EXPECT_TRUE(std::holds_alternative<SetEvent>(f->command));
      ++n;
    }
  }
  return n;
}

TEST(TimerTest, FiresItsActionOnceWhenDue) {
  Harness h;
  ASSERT_TRUE(ReplyTo(h.Apply(SetLater("t", h.now + 5 * kSecond), 1), 1)->ok());
  EXPECT_EQ(Forwards(h.Advance(4 * kSecond), "e"), 0);
  EXPECT_EQ(Forwards(h.Advance(kSecond), "e"), 1);
  EXPECT_EQ(Forwards(h.Advance(10 * kSecond), "e"), 0);
  // Still described after firing, then reclaimed after the retention.
  auto d = ReplyTo(h.Apply(DescribeResource{"t"}, 2), 2);
  EXPECT_EQ(std::get<Boxed<ResourceInfo>>(d->value)->fired, 1u);
  h.Advance(2 * 3600 * kSecond);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(TimerTest, PeriodicTimerThatMissedPeriodsFiresOnceAndKeepsItsPeriod) {
  Harness h;
  Time start = h.now;
  h.Apply(SetLater("t", start + kSecond, kSecond), 1);
  EXPECT_EQ(Forwards(h.Advance(kSecond), "e"), 1);
  // The server was busy for 3.5 periods: one late firing, not three.
  EXPECT_EQ(Forwards(h.Advance(3 * kSecond + kSecond / 2), "e"), 1);
  // Back on the original grid: next at start + 5 s.
  EXPECT_EQ(Forwards(h.Advance(kSecond / 2 - 1), "e"), 0);
  EXPECT_EQ(Forwards(h.Advance(1), "e"), 1);
}

TEST(TimerTest, CancelStopsItAndSchedulingTwiceNeedsReplace) {
  Harness h;
  h.Apply(SetLater("t", h.now + kSecond), 1);
  EXPECT_EQ(ReplyTo(h.Apply(SetLater("t", h.now + kSecond), 2), 2)->status.code(),
            absl::StatusCode::kFailedPrecondition);
  ScheduleTimer again = SetLater("t", h.now + 2 * kSecond, 0, "other");
  again.replace = true;
  ASSERT_TRUE(ReplyTo(h.Apply(again, 3), 3)->ok());
  EXPECT_EQ(Forwards(h.Advance(kSecond), "e"), 0);
  auto c = ReplyTo(h.Apply(CancelTimer{"t"}, 4), 4);
  EXPECT_EQ(std::get<TimerCancelled>(c->value).cancelled, true);
  EXPECT_EQ(Forwards(h.Advance(5 * kSecond), "other"), 0);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.timer_count(), 0u);
}

TEST(TimerTest, ADueTimeInThePastFiresAtOnce) {
  Harness h;
  h.Apply(SetLater("t", h.now - kSecond), 1);
  EXPECT_EQ(Forwards(h.Advance(0), "e"), 1);
}

}  // namespace
}  // namespace baton::apply
