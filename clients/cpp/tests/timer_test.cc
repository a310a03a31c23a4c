// Timer against a real batond: one-shot and periodic timers acting on other
// resources, replace, cancel.
#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(TimerTest, OneShotTimerSetsAnEvent) {
  Client client = MustConnect();
  std::string event = Name("event");
  Timer timer = client.Timer(Name("timer"));
  auto due =
      timer.Schedule({.after = absl::Milliseconds(100), .action = TimerAction::SetEvent(event)});
  ASSERT_TRUE(due.ok()) << due.status();
  EXPECT_LE(*due, absl::Milliseconds(100));
  EXPECT_EQ(client.Event(event).Wait(absl::Seconds(5)).status().code(), absl::StatusCode::kOk);
  EXPECT_FALSE(timer.Cancel()->cancelled) << "a one-shot timer that fired";
  ASSERT_TRUE(client.Event(event).Clear().ok());
}

TEST(TimerTest, PeriodicTimerPutsUntilCancelled) {
  Client client = MustConnect();
  std::string queue = Name("queue");
  Timer timer = client.Timer(Name("timer"));
  ASSERT_TRUE(timer
                  .Schedule({.after = absl::ZeroDuration(),
                             .every = absl::Milliseconds(30),
                             .action = TimerAction::Put(queue, Item{.data = "tick"})})
                  .ok());
  auto ticks = client.Queue(queue).Get({.max_items = 3, .timeout = absl::Seconds(5)});
  ASSERT_TRUE(ticks.ok()) << ticks.status();
  EXPECT_EQ((*ticks)[0].data, "tick");
  ASSERT_TRUE(Eventually([&] {
    auto info = client.Admin().Describe(timer.name());
    return info.ok() && info->proto.timer().fired() >= 3;
  }));
  auto cancelled = timer.Cancel();
  ASSERT_TRUE(cancelled.ok());
  EXPECT_TRUE(cancelled->cancelled);
  EXPECT_GE(cancelled->fired, 3u);
  EXPECT_TRUE(client.Queue(queue).Delete().ok());
}

TEST(TimerTest, ScheduleRefusesAnExistingTimerUnlessReplace) {
  Client client = MustConnect();
  Timer timer = client.Timer(Name("timer"));
  TimerSchedule later{.after = absl::Seconds(60), .action = TimerAction::SetEvent(Name("event"))};
  ASSERT_TRUE(timer.Schedule(later).ok());
  EXPECT_EQ(timer.Schedule(later).status().code(), absl::StatusCode::kFailedPrecondition);
  later.replace = true;
  EXPECT_TRUE(timer.Schedule(later).ok());
  EXPECT_EQ(timer.Schedule({.after = absl::Seconds(1)}).status().code(),
            absl::StatusCode::kInvalidArgument)
      << "no action";
  EXPECT_TRUE(timer.Cancel()->cancelled);
}

TEST(TimerTest, SubmitTaskAndSetFutureActions) {
  Client client = MustConnect();
  std::string work = Name("work");
  ASSERT_TRUE(client.Timer(Name("submit"))
                  .Schedule({.after = absl::Milliseconds(10),
                             .action = TimerAction::SubmitTask(work, "from timer")})
                  .ok());
  auto task = client.Tasks(work).Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->payload(), "from timer");
  ASSERT_TRUE(task->Complete("").ok());

  std::string future = Name("future");
  ASSERT_TRUE(client.Timer(Name("set"))
                  .Schedule({.at = absl::Now() + absl::Milliseconds(10),
                             .action = TimerAction::SetFuture(future, "v")})
                  .ok());
  auto outcome = client.Future(future).Await(absl::Seconds(5));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->value, "v");
}

}  // namespace
}  // namespace baton::testing
