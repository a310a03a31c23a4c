// The end-of-command sweep: a resource a command creates and then refuses
// to use, and one a command leaves idle, is gone once the command is
// applied, on every error path, without the handler reclaiming it (F6). And
// the dispatcher's gates: a gated command after BeginShutdown, or naming a
// session that is not alive, never reaches its handler.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

TEST(ReclaimTest, AnOversizedFirstPutLeavesNoQueue) {
  Limits limits;
  limits.max_item_bytes = 4;
  Harness h(limits);
  PutItems put;
  put.name = std::string("q");
  put.items.push_back(NewQueueItem{std::string("too long"), 0, 0});
  auto r = ReplyTo(h.Apply(put, 1), 1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(ReclaimTest, AGetThatCannotWaitLeavesNoQueue) {
  Harness h;
  GetItems get;
  get.name = std::string("q");
  get.lease = kSecond;
  get.deadline = h.now;  // try once
  auto r = ReplyTo(h.Apply(get, 1), 1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(ReclaimTest, AWaitRefusedForTheWaiterLimitLeavesNoEventOrFutureOrWorkQueue) {
  Limits limits;
  limits.max_waiters = 0;
  Harness h(limits);
  auto event = ReplyTo(h.Apply(WaitEvent{"e", 0, kForever}, 1), 1);
  EXPECT_EQ(event->status.code(), absl::StatusCode::kResourceExhausted);
  auto future = ReplyTo(h.Apply(AwaitFuture{"f", 0, kForever}, 2), 2);
  EXPECT_EQ(future->status.code(), absl::StatusCode::kResourceExhausted);
  TakeTask take;
  take.queue = std::string("work");
  take.lease = kSecond;
  auto task = ReplyTo(h.Apply(take, 3), 3);
  EXPECT_EQ(task->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(ReclaimTest, AReleasedLockIsReclaimedAndAHeldOneIsNot) {
  Harness h;
  uint64_t token = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  EXPECT_EQ(h.state.resource_count(), 1u);
  auto r = ReplyTo(h.Apply(ReleasePermits{Kind::kLock, "l", token, 0, 0}, 2), 2);
  ASSERT_TRUE(r->ok());
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(ReclaimTest, ARefusedFirstPutDeclaresNothing) {
  Harness h;
  PutItems put;
  put.name = std::string("q");
  put.options = primitives::QueueOptions{};
  put.options->maxsize = 1;
  put.items.push_back(NewQueueItem{std::string("a"), 0, 0});
  put.items.push_back(NewQueueItem{std::string("b"), 0, 0});  // can never fit
  auto r = ReplyTo(h.Apply(put, 1), 1);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.resource_count(), 0u);
  // So the right options are accepted afterwards.
  put.options->maxsize = 5;
  EXPECT_TRUE(ReplyTo(h.Apply(put, 2), 2)->ok());
}

TEST(ReclaimTest, AGetWithOptionsThatTimesOutStillDeclaresTheQueue) {
  Harness h;
  GetItems get;
  get.name = std::string("q");
  get.options = primitives::QueueOptions{};
  get.options->maxsize = 3;
  get.lease = kSecond;
  get.deadline = h.now;
  EXPECT_EQ(ReplyTo(h.Apply(get, 1), 1)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 1u);
}

TEST(GateTest, GatedCommandsAfterShutdownAreUnavailableAndCreateNothing) {
  Harness h;
  h.Apply(BeginShutdown{});
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("l"), 1), 1)->status.code(), absl::StatusCode::kUnavailable);
  PutItems put;
  put.name = std::string("q");
  put.items.push_back(NewQueueItem{std::string("x"), 0, 0});
  EXPECT_EQ(ReplyTo(h.Apply(put, 2), 2)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReplyTo(h.Apply(OpenSession{10 * kSecond, ""}, 3), 3)->status.code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.state.resource_count(), 0u);
  // Ungated commands still run: a release of what is not held is answered.
  EXPECT_EQ(ReplyTo(h.Apply(ReleasePermits{Kind::kLock, "l", 1, 0, 0}, 4), 4)->status.code(),
            absl::StatusCode::kFailedPrecondition);
}

// What a timer fired before the shutdown still happens after it: its action
// reaches the target's shard as a derived command (no origin), which the
// shutdown gate must not refuse, or the item it puts is lost.
TEST(GateTest, ADerivedCommandIsAppliedDuringShutdown) {
  Harness h;
  h.Apply(BeginShutdown{});
  PutItems put;
  put.name = std::string("q");
  put.items.push_back(NewQueueItem{std::string("from a timer"), 0, 0});
  put.nowait = true;
  EXPECT_EQ(CountReplies(h.Apply(put, 0)), 1);  // answered to nobody
  EXPECT_EQ(h.state.resource_count(), 1u);
  h.Apply(Recover{.orphan_grace = 0});
  GetItems get;
  get.name = std::string("q");
  get.lease = kSecond;
  get.deadline = h.now;
  auto r = ReplyTo(h.Apply(get, 1), 1);
  ASSERT_TRUE(r.has_value());
  ASSERT_TRUE(r->ok()) << r->status;
  ASSERT_EQ(std::get<GotItems>(r->value).items.size(), 1u);
  EXPECT_EQ(std::get<GotItems>(r->value).items[0].data, "from a timer");
}

TEST(GateTest, AWaitForASessionThatIsNotAliveIsNotFound) {
  Harness h;
  auto r = ReplyTo(h.Apply(WaitEvent{"e", 12345, kForever}, 1), 1);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

}  // namespace
}  // namespace baton::apply
