// Declarations last: a semaphore's capacity and a queue's declared options
// stay while the resource is idle, until DeleteSemaphore / DeleteQueue;
// undeclared resources are still reclaimed when idle. Manual time, no sleeps.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

using primitives::QueueOptions;
using primitives::QueueOrder;

absl::StatusCode CodeOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value());
  return r ? r->status.code() : absl::StatusCode::kUnknown;
}

ReleasePermits SemRelease(uint64_t token) {
  return ReleasePermits{Kind::kSemaphore, "s", token, 0, 0};
}

TEST(DeclarationTest, AnIdleSemaphoreKeepsItsCapacity) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(SemCmd("s", 3, 2), 1), 1));
  ASSERT_TRUE(ReplyTo(h.Apply(SemRelease(t), 2), 2)->ok());
  EXPECT_EQ(h.state.resource_count(), 1u);
  // Capacity 0: "whatever was declared".
  std::optional<Result> r = ReplyTo(h.Apply(SemCmd("s", 0, 1), 3), 3);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ(std::get<Granted>(r->value).available, 2);
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(SemCmd("s", 5, 1), 4), 4)),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DeclarationTest, DeleteEndsASemaphoreDeclarationOnceNothingIsHeld) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(SemCmd("s", 3, 3), 1), 1));
  h.Apply(SemCmd("s", 3, 1), 2);  // waits
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(DeleteSemaphore{"s"}, 3), 3)),
            absl::StatusCode::kFailedPrecondition);
  Effects out = h.Apply(SemRelease(t), 4);
  uint64_t waiter = TokenOf(ReplyTo(out, 2));
  h.Apply(SemRelease(waiter), 5);
  std::optional<Result> d = ReplyTo(h.Apply(DeleteSemaphore{"s"}, 6), 6);
  ASSERT_TRUE(d && d->ok());
  EXPECT_EQ(std::get<Deleted>(d->value).deleted, true);
  EXPECT_EQ(h.state.resource_count(), 0u);
  // Gone: capacity 0 is refused, and another capacity declares it anew.
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(SemCmd("s", 0, 1), 7), 7)), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(ReplyTo(h.Apply(SemCmd("s", 5, 1), 8), 8)->ok());
  // A name that is not there, or not a semaphore.
  EXPECT_EQ(std::get<Deleted>(ReplyTo(h.Apply(DeleteSemaphore{"none"}, 9), 9)->value).deleted,
            false);
  h.Apply(LockCmd("l"), 10);
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(DeleteSemaphore{"l"}, 11), 11)),
            absl::StatusCode::kFailedPrecondition);
}

TEST(DeclarationTest, ARefusedFirstAcquireDeclaresNothing) {
  Harness h;
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(SemCmd("s", 2, 3), 1), 1)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(DeclarationTest, LocksAreStillReclaimedWhenIdle) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  h.Apply(ReleasePermits{Kind::kLock, "l", t, 0, 0}, 2);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

PutItems Put(std::vector<std::string> data, std::optional<QueueOptions> options = std::nullopt) {
  PutItems c;
  c.name = std::string("q");
  c.options = options;
  for (auto& d : data) c.items.push_back(NewQueueItem{d, 0, 0});
  c.deadline = 0;
  c.nowait = true;
  return c;
}

GetItems Get(uint32_t n) {
  GetItems c;
  c.name = std::string("q");
  c.max_items = n;
  c.lease = kSecond;
  c.deadline = 0;
  return c;
}

// Takes everything ready and acks it; returns the payloads in order.
std::vector<std::string> Drain(Harness& h) {
  std::optional<Result> got = ReplyTo(h.Apply(Get(100), 50), 50);
  std::vector<std::string> out;
  if (!got || !got->ok()) return out;
  AckItems ack{"q", {}};
  for (const auto& i : std::get<GotItems>(got->value).items) {
    out.push_back(i.data);
    ack.receipts.push_back(i.receipt);
  }
  h.Apply(ack, 51);
  return out;
}

TEST(DeclarationTest, ADrainedQueueKeepsItsDeclaredOptions) {
  Harness h;
  QueueOptions lifo{QueueOrder::kLifo, 2, 1024, 3};
  ASSERT_TRUE(ReplyTo(h.Apply(Put({"a", "b"}, lifo), 1), 1)->ok());
  EXPECT_EQ(Drain(h), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(h.state.resource_count(), 1u);
  // A producer without options gets the declared order and maxsize.
  ASSERT_TRUE(ReplyTo(h.Apply(Put({"c", "d"}), 2), 2)->ok());
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(Put({"e"}), 3), 3)), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Drain(h), (std::vector<std::string>{"d", "c"}));
  // Other options are refused; the same ones are fine.
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(Put({"x"}, QueueOptions{}), 4), 4)),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReplyTo(h.Apply(Put({"x"}, lifo), 5), 5)->ok());
  // Delete ends the declaration: the name may be declared anew.
  h.Apply(DeleteQueue{"q"}, 6);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_TRUE(
      ReplyTo(h.Apply(Put({"y"}, QueueOptions{QueueOrder::kFifo, 10, 1024, 0}), 7), 7)->ok());
}

TEST(DeclarationTest, AnUndeclaredQueueIsStillReclaimedWhenIdle) {
  Harness h;
  ASSERT_TRUE(ReplyTo(h.Apply(Put({"a"}), 1), 1)->ok());
  EXPECT_EQ(Drain(h), std::vector<std::string>{"a"});
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.queue_bytes(), 0u);
}

}  // namespace
}  // namespace baton::apply
