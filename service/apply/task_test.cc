// Tasks: submit, take, complete, retry when a worker is lost, cooperative
// cancellation, groups, wait. Manual time, no sleeps.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

using primitives::TaskState;

uint64_t Submit(Harness& h, std::string group = "", uint32_t max_attempts = 1, Duration delay = 0,
                bool shielded = false) {
  SubmitTask c;
  c.queue = "work";
  c.payload = "job";
  c.max_attempts = max_attempts;
  c.group = std::move(group);
  c.delay = delay;
  c.shielded = shielded;
  auto r = ReplyTo(h.Apply(c, 900), 900);
  EXPECT_TRUE(r && r->ok());
  const std::string& id = (*std::get<Boxed<TaskReport>>(r->value)).id;
  return std::stoull(id.substr(id.rfind('#') + 1));
}

TakeTask Take(Time deadline = kForever, Duration lease = kSecond, uint64_t session = 0) {
  return TakeTask{"work", session, lease, deadline, ""};
}

TakenTask Taken(const std::optional<Result>& r) {
  EXPECT_TRUE(r && r->ok());
  return (*std::get<Boxed<TakenTask>>(r->value));
}

TaskReport Outcome(const std::optional<Result>& r) {
  EXPECT_TRUE(r && r->ok());
  return std::get<TaskReports>(r->value).done.at(0);
}

TEST(TaskTest, AWorkerTakesATaskAndItsResultReachesAwaiters) {
  Harness h;
  uint64_t seq = Submit(h);
  h.Apply(AwaitTask{"work", seq, kForever}, 1);
  TakenTask t = Taken(ReplyTo(h.Apply(Take(), 2), 2));
  EXPECT_EQ(t.attempt, 1u);
  auto out = h.Apply(CompleteTask{"work", seq, 1, false, "done", 0, "", false}, 3);
  TaskReport o = Outcome(ReplyTo(out, 1));
  EXPECT_EQ(o.state, TaskState::kSucceeded);
  EXPECT_EQ(o.result, "done");
}

TEST(TaskTest, AWaitingWorkerGetsTheNextSubmittedTask) {
  Harness h;
  h.Apply(Take(), 1);
  Submit(h);
  // The submit's effects went to op 900; the worker's reply came with them.
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(TaskTest, ALostWorkerMeansAnotherAttemptThenFailure) {
  Harness h;
  uint64_t seq = Submit(h, "", /*max_attempts=*/2);
  h.Apply(AwaitTask{"work", seq, kForever}, 1);
  Taken(ReplyTo(h.Apply(Take(kForever, kSecond), 2), 2));
  h.Advance(kSecond);  // no heartbeat: lost, retried
  TakenTask again = Taken(ReplyTo(h.Apply(Take(kForever, kSecond), 3), 3));
  EXPECT_EQ(again.attempt, 2u);
  auto out = h.Advance(kSecond);  // lost again: attempts run out
  TaskReport o = Outcome(ReplyTo(out, 1));
  EXPECT_EQ(o.state, TaskState::kFailed);
  EXPECT_NE(o.error_message.find("worker lost"), std::string::npos);
}

TEST(TaskTest, HeartbeatKeepsATaskAndAStaleAttemptIsRefused) {
  Harness h;
  uint64_t seq = Submit(h, "", 2);
  Taken(ReplyTo(h.Apply(Take(kForever, kSecond), 1), 1));
  h.Advance(kSecond / 2);
  EXPECT_TRUE(ReplyTo(h.Apply(HeartbeatTask{"work", seq, 1}, 2), 2)->ok());
  h.Advance(kSecond / 2 + kSecond / 4);  // would have expired without the heartbeat
  EXPECT_TRUE(ReplyTo(h.Apply(HeartbeatTask{"work", seq, 1}, 3), 3)->ok());
  EXPECT_EQ(ReplyTo(h.Apply(HeartbeatTask{"work", seq, 2}, 4), 4)->status.code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TaskTest, CancelIsImmediateWhenPendingAndCooperativeWhenRunning) {
  Harness h;
  uint64_t pending = Submit(h);
  uint64_t running = Submit(h);
  h.Apply(CancelTask{"work", pending}, 1);
  TakenTask t = Taken(ReplyTo(h.Apply(Take(), 2), 2));
  EXPECT_EQ(t.id, absl::StrCat("work#", running));  // the cancelled one was skipped
  h.Apply(CancelTask{"work", running}, 3);
  auto hb = ReplyTo(h.Apply(HeartbeatTask{"work", running, 1}, 4), 4);
  EXPECT_EQ(std::get<TaskHeartbeat>(hb->value).cancel_requested, true);  // the worker learns it
  auto done = ReplyTo(h.Apply(CompleteTask{"work", running, 1, false, "x", 0, "", false}, 5), 5);
  EXPECT_EQ(std::get<TaskCompleted>(done->value).state, TaskState::kCancelled);
}

TEST(TaskTest, AFailureCancelsItsGroupButNotShieldedTasks) {
  Harness h;
  uint64_t a = Submit(h, "g");
  uint64_t b = Submit(h, "g");
  uint64_t shielded = Submit(h, "g", 1, 0, /*shielded=*/true);
  Taken(ReplyTo(h.Apply(Take(), 1), 1));  // a
  h.Apply(CompleteTask{"work", a, 1, true, "", 2, "boom", false}, 2);
  EXPECT_EQ(Outcome(ReplyTo(h.Apply(AwaitTask{"work", b, h.now}, 3), 3)).state,
            TaskState::kCancelled);
  EXPECT_EQ(ReplyTo(h.Apply(AwaitTask{"work", shielded, h.now}, 4), 4)->status.code(),
            absl::StatusCode::kDeadlineExceeded);  // still pending
}

TEST(TaskTest, WaitFirstCompletedReturnsDoneAndPending) {
  Harness h;
  uint64_t a = Submit(h), b = Submit(h);
  h.Apply(WaitTasks{"work", {a, b}, "", 1, kForever}, 1);
  Taken(ReplyTo(h.Apply(Take(), 2), 2));
  auto out = h.Apply(CompleteTask{"work", a, 1, false, "r", 0, "", false}, 3);
  auto r = ReplyTo(out, 1);
  ASSERT_TRUE(r && r->ok());
  const auto& reports = std::get<TaskReports>(r->value);
  ASSERT_EQ(reports.done.size(), 1u);
  EXPECT_EQ(reports.pending, std::vector<std::string>{absl::StrCat("work#", b)});
}

TEST(TaskTest, AGroupIsAwaitedAsAWholeAndFirstExceptionEndsTheWait) {
  Harness h;
  uint64_t a = Submit(h, "g");
  Submit(h, "g");
  WaitTasks w;
  w.queue = "work";
  w.group = "g";
  w.mode = 2;  // FIRST_EXCEPTION
  h.Apply(w, 1);
  Taken(ReplyTo(h.Apply(Take(), 2), 2));
  auto out = h.Apply(CompleteTask{"work", a, 1, true, "", 13, "boom", true}, 3);
  auto r = ReplyTo(out, 1);
  ASSERT_TRUE(r && r->ok());
  // The failure cancelled the other task of the group: both are done.
  EXPECT_EQ(std::get<TaskReports>(r->value).done.size(), 2u);
}

TEST(TaskTest, WaitTimeoutReturnsWhatIsDoneSoFar) {
  Harness h;
  uint64_t a = Submit(h);
  h.Apply(WaitTasks{"work", {a}, "", 3, h.now + kSecond}, 1);
  auto out = h.Advance(kSecond);
  auto r = ReplyTo(out, 1);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(std::get<TaskReports>(r->value).pending.size(), 1u);
}

TEST(TaskTest, DelayedTaskIsTakenOnlyAfterItsDelayAndDoneTasksAreReclaimed) {
  Harness h;
  uint64_t seq = Submit(h, "", 1, 5 * kSecond);
  EXPECT_FALSE(ReplyTo(h.Apply(Take(h.now), 1), 1)->ok());
  h.Apply(Take(), 2);
  auto out = h.Advance(5 * kSecond);
  EXPECT_TRUE(ReplyTo(out, 2).has_value());
  h.Apply(CompleteTask{"work", seq, 1, false, "", 0, "", false}, 3);
  h.Advance(2 * 3600 * kSecond);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(TaskTest, AnAttemptThatOverrunsItsRunTimeoutIsLostDespiteHeartbeats) {
  Harness h;
  SubmitTask c;
  c.queue = "work";
  c.max_attempts = 1;
  c.run_timeout = 2 * kSecond;
  std::string id = (*std::get<Boxed<TaskReport>>(ReplyTo(h.Apply(c, 1), 1)->value)).id;
  uint64_t seq = std::stoull(id.substr(id.rfind('#') + 1));
  h.Apply(AwaitTask{"work", seq, kForever}, 2);
  Taken(ReplyTo(h.Apply(Take(kForever, kSecond), 3), 3));
  h.Advance(kSecond / 2);
  EXPECT_TRUE(ReplyTo(h.Apply(HeartbeatTask{"work", seq, 1}, 4), 4)->ok());
  h.Advance(700 * kMillisecond);
  EXPECT_TRUE(ReplyTo(h.Apply(HeartbeatTask{"work", seq, 1}, 5), 5)->ok());
  auto out = h.Advance(800 * kMillisecond);  // 2 s since Take; the lease would last to 2.2 s
  TaskReport o = Outcome(ReplyTo(out, 2));
  EXPECT_EQ(o.state, TaskState::kFailed);
  EXPECT_NE(o.error_message.find("run_timeout"), std::string::npos);
}

TEST(TaskTest, UndeliveredTakeGoesBackWithoutCountingAnAttempt) {
  Harness h;
  uint64_t seq = Submit(h);
  Taken(ReplyTo(h.Apply(Take(), 1), 1));
  h.Apply(UndeliverTask{"work", seq, 1});
  EXPECT_EQ(Taken(ReplyTo(h.Apply(Take(), 2), 2)).attempt, 1u);
}

TEST(TaskTest, AGivenBackTaskIsTakenAgainWithoutCountingAnAttempt) {
  Harness h;
  uint64_t seq = Submit(h, "", /*max_attempts=*/1);
  Submit(h);  // a second task: the given-back one goes first again
  Taken(ReplyTo(h.Apply(Take(), 1), 1));
  CompleteTask back;
  back.queue = "work";
  back.seq = seq;
  back.attempt = 1;
  back.give_back = true;
  auto r = ReplyTo(h.Apply(back, 2), 2);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(std::get<TaskCompleted>(r->value).state, TaskState::kPending);
  // With max_attempts 1 a failed attempt would have ended the task; a
  // given-back one is run again, first in line, as attempt 2 (numbers are
  // never reused) which is not over the limit.
  TakenTask again = Taken(ReplyTo(h.Apply(Take(), 3), 3));
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_EQ(again.id, absl::StrCat("work#", seq));
  // A late or repeated give-back of attempt 1 cannot touch attempt 2.
  EXPECT_FALSE(ReplyTo(h.Apply(back, 4), 4)->ok());
  // And attempt 2 failing is the end of it: the budget grew by one only.
  CompleteTask fail;
  fail.queue = "work";
  fail.seq = seq;
  fail.attempt = 2;
  fail.failed = true;
  auto failed = ReplyTo(h.Apply(fail, 5), 5);
  ASSERT_TRUE(failed && failed->ok());
  EXPECT_EQ(std::get<TaskCompleted>(failed->value).state, TaskState::kFailed);
}

TEST(TaskTest, GivingBackACancelledTaskEndsItCancelled) {
  Harness h;
  uint64_t seq = Submit(h);
  Taken(ReplyTo(h.Apply(Take(), 1), 1));
  h.Apply(CancelTask{"work", seq}, 2);
  CompleteTask back;
  back.queue = "work";
  back.seq = seq;
  back.attempt = 1;
  back.give_back = true;
  auto r = ReplyTo(h.Apply(back, 3), 3);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(std::get<TaskCompleted>(r->value).state, TaskState::kCancelled);
}

}  // namespace
}  // namespace baton::apply

namespace baton::apply {
namespace {

TEST(TaskTest, ATakeWithARequestIdIsReplayedWhileItsAttemptRuns) {
  Harness h;
  uint64_t session = SessionOf(ReplyTo(h.Apply(OpenSession{30 * kSecond, "worker"}, 7), 7));
  ASSERT_NE(session, 0u);
  uint64_t first = Submit(h);
  uint64_t second = Submit(h);
  TakeTask take = Take(kForever, 0, session);
  take.request_id = "take-1";
  TakenTask t = Taken(ReplyTo(h.Apply(take, 1), 1));
  EXPECT_EQ(t.id, absl::StrCat("work#", first));

  // The retry (try once) returns the running task, not the next one.
  TakeTask retry = take;
  retry.deadline = 0;
  TakenTask again = Taken(ReplyTo(h.Apply(retry, 2), 2));
  EXPECT_EQ(again.id, t.id);
  EXPECT_EQ(again.attempt, 1u);

  // Once the attempt ends, the key replays nothing: it takes the next task.
  h.Apply(CompleteTask{"work", first, 1, false, "done", 0, "", false}, 3);
  TakenTask next = Taken(ReplyTo(h.Apply(retry, 4), 4));
  EXPECT_EQ(next.id, absl::StrCat("work#", second));
}

}  // namespace
}  // namespace baton::apply
