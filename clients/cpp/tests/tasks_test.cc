// Tasks against a real batond: submit / take / complete / await, retries
// after failures and after a dropped TakenTask, cooperative cancellation,
// asyncio.wait over ids and over a group.
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(TasksTest, WorkerCompletesAndTheSubmitterAwaitsTheResult) {
  Client submitter = MustConnect();
  Client worker = MustConnect();
  Tasks queue = submitter.Tasks(Name());
  auto id = queue.Submit("42.png");
  ASSERT_TRUE(id.ok()) << id.status();
  std::thread work([&] {
    auto task = worker.Tasks(queue.queue())
                    .Take({.timeout = absl::Seconds(10), .lease = absl::Seconds(30)});
    ASSERT_TRUE(task.ok()) << task.status();
    EXPECT_EQ(task->payload(), "42.png");
    EXPECT_EQ(task->attempt(), 1u);
    EXPECT_EQ(task->Heartbeat().value(), false);
    auto done = task->Complete("thumb-42.png");
    ASSERT_TRUE(done.ok()) << done.status();
    EXPECT_EQ(done->state, TaskState::kSucceeded);
    EXPECT_FALSE(task->running());
  });
  auto outcome = queue.Await(*id, {.timeout = absl::Seconds(10)});
  work.join();
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcome->task_id, *id);
  EXPECT_EQ(outcome->state, TaskState::kSucceeded);
  EXPECT_EQ(outcome->result, "thumb-42.png");
  EXPECT_EQ(outcome->attempts, 1u);
}

TEST(TasksTest, FailureIsRetriedWhileAttemptsRemain) {
  Client client = MustConnect();
  Tasks queue = client.Tasks(Name());
  auto id = queue.Submit("flaky", {.max_attempts = 2});
  ASSERT_TRUE(id.ok());
  {
    auto first = queue.Take({.timeout = absl::Seconds(5)});
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE(first->Fail(14, "backend unavailable").ok());
  }
  auto second = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->attempt(), 2u);
  ASSERT_TRUE(second->Fail(14, "still unavailable").ok());
  auto outcome = queue.Await(*id, {.timeout = absl::Seconds(5)});
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->state, TaskState::kFailed);
  ASSERT_TRUE(outcome->error.has_value());
  EXPECT_EQ(outcome->error->code, 14);
  EXPECT_EQ(outcome->error->message, "still unavailable");
  EXPECT_EQ(outcome->attempts, 2u);
}

TEST(TasksTest, DroppedTakenTaskIsRetriedAtOnce) {
  Client client = MustConnect();
  Tasks queue = client.Tasks(Name());
  auto id = queue.Submit("work", {.max_attempts = 3});
  ASSERT_TRUE(id.ok());
  {
    auto task = queue.Take({.timeout = absl::Seconds(5)});
    ASSERT_TRUE(task.ok());
  }  // dropped without Complete: the attempt fails, not the task
  auto again = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->attempt(), 2u);
  ASSERT_TRUE(again->Complete("ok").ok());
}

TEST(TasksTest, CancelIsCooperativeForARunningTask) {
  Client client = MustConnect();
  Tasks queue = client.Tasks(Name());
  auto pending = queue.Submit("never taken", {.delay = absl::Seconds(60)});
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(queue.Cancel(*pending).value());
  EXPECT_EQ(queue.Await(*pending)->state, TaskState::kCancelled);

  auto running = queue.Submit("long job");
  ASSERT_TRUE(running.ok());
  auto task = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(task.ok());
  EXPECT_TRUE(queue.Cancel(*running).value());
  EXPECT_EQ(task->Heartbeat().value(), true) << "the worker learns it was cancelled";
  auto done = task->Complete("partial");
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->cancelled);
  EXPECT_EQ(queue.Await(*running)->state, TaskState::kCancelled);
}

TEST(TasksTest, WaitFirstCompletedAndGroups) {
  Client client = MustConnect();
  Tasks queue = client.Tasks(Name());
  auto a = queue.Submit("a", {.group = "g"});
  auto b = queue.Submit("b", {.group = "g"});
  ASSERT_TRUE(a.ok() && b.ok());
  auto none = queue.Wait({*a, *b}, WaitMode::kFirstCompleted, {.timeout = absl::Milliseconds(50)});
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->done.empty());
  EXPECT_EQ(none->pending.size(), 2u);

  auto first = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(first->Complete("done").ok());
  auto one = queue.Wait({*a, *b}, WaitMode::kFirstCompleted, {.timeout = absl::Seconds(5)});
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->done.size(), 1u);
  EXPECT_EQ(one->done[0].task_id, first->id());

  // A failure cancels the rest of the group (asyncio.TaskGroup).
  auto second = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(second->Fail(2, "boom", /*final=*/true).ok());
  auto all = queue.WaitGroup("g", WaitMode::kAllCompleted, {.timeout = absl::Seconds(5)});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->done.size(), 2u);
  EXPECT_TRUE(all->pending.empty());
}

TEST(TasksTest, AsyncTakeCancelledWhileWaiting) {
  Client client = MustConnect();
  Tasks queue = client.Tasks(Name());
  std::optional<absl::Status> status;
  Call call = queue.AsyncTake({}, [&](absl::StatusOr<TakenTask> t) { status = t.status(); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, queue.queue()) == 1; }));
  call.Cancel();
  call.Wait();
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled);
  // The next task goes to the next Take, not to the cancelled one.
  auto id = queue.Submit("after");
  ASSERT_TRUE(id.ok());
  auto task = queue.Take({.timeout = absl::Seconds(5)});
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->id(), *id);
  ASSERT_TRUE(task->Complete("").ok());
}

}  // namespace
}  // namespace baton::testing
