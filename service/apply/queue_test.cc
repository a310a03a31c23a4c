// Queue state machine: order, blocking put/get, acks, redelivery, dead
// letters, join, rollback of lost replies. Manual time, no sleeps.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

using primitives::QueueOptions;
using primitives::QueueOrder;

QueueOptions Opts(QueueOrder order = QueueOrder::kFifo, uint32_t maxsize = 100,
                  uint32_t max_deliveries = 0) {
  return QueueOptions{order, maxsize, 1024, max_deliveries};
}

PutItems Put(std::string name, std::vector<std::string> data, Time deadline = kForever,
             std::optional<QueueOptions> o = Opts()) {
  PutItems c;
  c.name = std::move(name);
  c.options = o;
  for (auto& d : data) c.items.push_back(NewQueueItem{d, 0, 0});
  c.deadline = deadline;
  return c;
}

GetItems Get(std::string name, uint32_t n = 1, Time deadline = kForever, Duration lease = kSecond,
             uint64_t session = 0) {
  GetItems c;
  c.name = std::move(name);
  c.max_items = n;
  c.lease = lease;
  c.session = session;
  c.deadline = deadline;
  return c;
}

std::vector<std::string> Payloads(const std::optional<Result>& r) {
  std::vector<std::string> out;
  EXPECT_TRUE(r.has_value());
  if (!r || !r->ok()) return out;
  for (const auto& i : std::get<GotItems>(r->value).items) out.push_back(i.data);
  return out;
}

uint64_t Receipt(const std::optional<Result>& r, size_t i = 0) {
  return std::get<GotItems>(r->value).items.at(i).receipt;
}

TEST(QueueTest, FifoGetsInPutOrder) {
  Harness h;
  h.Apply(Put("q", {"a", "b", "c"}), 1);
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q", 3), 2), 2)),
            (std::vector<std::string>{"a", "b", "c"}));
}

TEST(QueueTest, LifoGetsNewestFirst) {
  Harness h;
  h.Apply(Put("q", {"a", "b", "c"}, kForever, Opts(QueueOrder::kLifo)), 1);
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q", 3), 2), 2)),
            (std::vector<std::string>{"c", "b", "a"}));
}

TEST(QueueTest, PriorityGetsLowestFirstAndFifoAmongEquals) {
  Harness h;
  PutItems p = Put("q", {}, kForever, Opts(QueueOrder::kPriority));
  p.items = {{"low-1", 5, 0}, {"urgent", 1, 0}, {"low-2", 5, 0}, {"mid", 3, 0}};
  h.Apply(p, 1);
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q", 4), 2), 2)),
            (std::vector<std::string>{"urgent", "mid", "low-1", "low-2"}));
}

TEST(QueueTest, GetWaitsForAPutAndGetsItInArrivalOrder) {
  Harness h;
  h.Apply(Get("q"), 1);
  h.Apply(Get("q"), 2);
  auto out = h.Apply(Put("q", {"x"}), 3);
  EXPECT_EQ(Payloads(ReplyTo(out, 1)), std::vector<std::string>{"x"});
  EXPECT_FALSE(ReplyTo(out, 2).has_value());
  EXPECT_EQ(std::get<GotItems>(ReplyTo(out, 1)->value).how, GrantHow::kAfterWait);
}

TEST(QueueTest, GetNowaitOnEmptyIsDeadlineExceeded) {
  Harness h;
  auto r = ReplyTo(h.Apply(Get("q", 1, h.now), 1), 1);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.resource_count(), 0u);
}

TEST(QueueTest, PutBlocksWhileFullAndProceedsWhenAGetMakesRoom) {
  Harness h;
  h.Apply(Put("q", {"a", "b"}, kForever, Opts(QueueOrder::kFifo, 2)), 1);
  PutItems put_nowait = Put("q", {"c"}, h.now, Opts(QueueOrder::kFifo, 2));
  put_nowait.nowait = true;
  auto nowait = ReplyTo(h.Apply(put_nowait, 2), 2);
  EXPECT_EQ(nowait->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(h.Apply(Put("q", {"c"}, kForever, Opts(QueueOrder::kFifo, 2)), 3).empty());
  auto out = h.Apply(Get("q"), 4);
  EXPECT_EQ(Payloads(ReplyTo(out, 4)), std::vector<std::string>{"a"});
  ASSERT_TRUE(ReplyTo(out, 3).has_value());
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q", 2), 5), 5)), (std::vector<std::string>{"b", "c"}));
}

TEST(QueueTest, ABatchLargerThanMaxsizeIsInvalid) {
  Harness h;
  auto r = ReplyTo(h.Apply(Put("q", {"a", "b", "c"}, kForever, Opts(QueueOrder::kFifo, 2)), 1), 1);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(QueueTest, OptionsThatDifferFromTheDeclaredOnesAreFailedPrecondition) {
  Harness h;
  h.Apply(Put("q", {"a"}), 1);
  auto r = ReplyTo(h.Apply(Put("q", {"b"}, kForever, Opts(QueueOrder::kLifo)), 2), 2);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(ReplyTo(h.Apply(Put("q", {"b"}, kForever, std::nullopt), 3), 3)->ok());
}

TEST(QueueTest, DelayedItemBecomesVisibleLater) {
  Harness h;
  PutItems p = Put("q", {});
  p.items = {{"later", 0, 5 * kSecond}};
  h.Apply(p, 1);
  EXPECT_FALSE(ReplyTo(h.Apply(Get("q", 1, h.now), 2), 2)->ok());
  h.Apply(Get("q"), 3);
  auto out = h.Advance(5 * kSecond);
  EXPECT_EQ(Payloads(ReplyTo(out, 3)), std::vector<std::string>{"later"});
}

TEST(QueueTest, AckFinishesAnItemAndJoinReturnsWhenNothingIsUnfinished) {
  Harness h;
  h.Apply(Put("q", {"a"}), 1);
  auto got = ReplyTo(h.Apply(Get("q"), 2), 2);
  EXPECT_TRUE(h.Apply(JoinQueue{"q", kForever}, 3).empty());
  auto out = h.Apply(AckItems{"q", {Receipt(got)}}, 4);
  ASSERT_TRUE(ReplyTo(out, 3).has_value());
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
  EXPECT_EQ(std::get<Acked>(ReplyTo(out, 4)->value).unfinished, 0u);
  EXPECT_EQ(h.state.resource_count(), 1u);  // declared (Put gave options): kept
  EXPECT_EQ(h.state.queue_bytes(), 0u);
}

TEST(QueueTest, AckOfAStaleReceiptIsFailedPrecondition) {
  Harness h;
  h.Apply(Put("q", {"a", "b"}), 1);
  auto got = ReplyTo(h.Apply(Get("q"), 2), 2);
  h.Apply(AckItems{"q", {Receipt(got)}}, 3);
  auto r = ReplyTo(h.Apply(AckItems{"q", {Receipt(got)}}, 4), 4);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(QueueTest, LeaseExpiryRedeliversAtTheHeadWithTheCountRaised) {
  Harness h;
  h.Apply(Put("q", {"a", "b"}), 1);
  h.Apply(Get("q", 1, kForever, kSecond), 2);
  h.Advance(kSecond);
  auto r = ReplyTo(h.Apply(Get("q"), 3), 3);
  ASSERT_TRUE(r->ok());
  const auto& item = std::get<GotItems>(r->value).items.at(0);
  EXPECT_EQ(item.data, "a");
  EXPECT_EQ(item.deliveries, 2u);
}

TEST(QueueTest, NackReturnsToTheHeadAndDeadLettersAfterMaxDeliveries) {
  Harness h;
  h.Apply(Put("q", {"poison", "ok"}, kForever, Opts(QueueOrder::kFifo, 100, 2)), 1);
  auto first = ReplyTo(h.Apply(Get("q"), 2), 2);
  h.Apply(NackItems{"q", {Receipt(first)}, 0}, 3);
  auto second = ReplyTo(h.Apply(Get("q"), 4), 4);
  EXPECT_EQ(Payloads(second), std::vector<std::string>{"poison"});
  auto nack = ReplyTo(h.Apply(NackItems{"q", {Receipt(second)}, 0}, 5), 5);
  EXPECT_EQ(std::get<Nacked>(nack->value).dead_lettered, 1u);  // dead-lettered
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q"), 6), 6)), std::vector<std::string>{"ok"});
  GetItems dead = Get("q");
  dead.dead_letters = true;
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(dead, 7), 7)), std::vector<std::string>{"poison"});
}

TEST(QueueTest, SessionEndRedeliversItsItems) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{10 * kSecond, ""}, 1), 1));
  h.Apply(Put("q", {"a"}), 2);
  h.Apply(Get("q", 1, kForever, 0, sid), 3);
  h.Apply(CloseSession{sid}, 4);
  auto r = ReplyTo(h.Apply(Get("q"), 5), 5);
  EXPECT_EQ(Payloads(r), std::vector<std::string>{"a"});
}

TEST(QueueTest, LostGetReplyPutsItemsBackAtTheHeadUncounted) {
  Harness h;
  h.Apply(Put("q", {"a", "b", "c"}), 1);
  auto got = ReplyTo(h.Apply(Get("q", 2), 2), 2);
  h.Apply(UndeliverItems{"q", {Receipt(got, 0), Receipt(got, 1)}});
  auto r = ReplyTo(h.Apply(Get("q", 3), 3), 3);
  EXPECT_EQ(Payloads(r), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(std::get<GotItems>(r->value).items[0].deliveries, 1u);
}

TEST(QueueTest, LostPutReplyTakesBackItsQueuedItems) {
  Harness h;
  auto put = ReplyTo(h.Apply(Put("q", {"a"}), 1), 1);
  h.Apply(UndeliverPut{"q", std::get<PutDone>(put->value).item_ids});
  EXPECT_EQ(h.state.queue_bytes(), 0u);
  auto d = ReplyTo(h.Apply(DescribeResource{"q"}, 2), 2);
  ASSERT_TRUE(d && d->ok());
  EXPECT_EQ((*std::get<Boxed<ResourceInfo>>(d->value)).queue.ready, 0u);
}

// Regression: a putter that gave up let the next one in without counting its
// bytes, so the shard's byte total wrapped below zero and refused every Put.
TEST(QueueTest, ByteAccountingSurvivesAPutterGivingUp) {
  Harness h;
  h.Apply(Put("q", {"a"}, kForever, Opts(QueueOrder::kFifo, 2)), 1);
  h.Apply(Put("q", {"bb", "cc"}, h.now + kSecond, Opts(QueueOrder::kFifo, 2)), 2);
  h.Apply(Put("q", {"ddd"}, kForever, Opts(QueueOrder::kFifo, 2)), 3);
  h.Advance(kSecond);  // the 2-item put gives up; the 1-item put goes in
  EXPECT_EQ(h.state.queue_bytes(), 4u);
  auto got = ReplyTo(h.Apply(Get("q", 2), 4), 4);
  h.Apply(AckItems{"q", {Receipt(got, 0), Receipt(got, 1)}}, 5);
  EXPECT_EQ(h.state.queue_bytes(), 0u);
  EXPECT_TRUE(ReplyTo(h.Apply(Put("q", {"e"}, kForever, Opts(QueueOrder::kFifo, 2)), 6), 6)->ok());
}

TEST(QueueTest, AFullQueueTimesOutAPutThatMayNotWaitLong) {
  Harness h;
  h.Apply(Put("q", {"a"}, kForever, Opts(QueueOrder::kFifo, 1)), 1);
  auto r = ReplyTo(h.Apply(Put("q", {"b"}, h.now, Opts(QueueOrder::kFifo, 1)), 2), 2);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(QueueTest, CancelledPutterNoLongerHoldsBackTheLine) {
  Harness h;
  h.Apply(Put("q", {"a"}, kForever, Opts(QueueOrder::kFifo, 2)), 1);
  h.Apply(Put("q", {"b", "c"}, kForever, Opts(QueueOrder::kFifo, 2)), 2);  // waits: needs 2
  h.Apply(Put("q", {"d"}, kForever, Opts(QueueOrder::kFifo, 2)), 3);       // waits behind it
  auto out = h.Apply(CancelWait{}, 2);
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kCancelled);
  ASSERT_TRUE(ReplyTo(out, 3).has_value());
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
}

TEST(QueueTest, DeleteEndsEveryWaitWithAborted) {
  Harness h;
  h.Apply(Get("q"), 1);
  auto out = h.Apply(DeleteQueue{"q"}, 2);
  EXPECT_EQ(ReplyTo(out, 1)->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(h.state.resource_count(), 0u);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

TEST(QueueTest, PurgeRemovesQueuedItemsAndReleasesJoiners) {
  Harness h;
  h.Apply(Put("q", {"a", "b"}), 1);
  h.Apply(JoinQueue{"q", kForever}, 2);
  auto out = h.Apply(PurgeQueue{"q", false}, 3);
  EXPECT_EQ(std::get<Purged>(ReplyTo(out, 3)->value).purged, 2u);
  EXPECT_TRUE(ReplyTo(out, 2)->ok());
}

int Pushes(const Effects& out, uint64_t op) {
  int n = 0;
  for (const Effect& e : out) {
    if (auto* r = std::get_if<Reply>(&e); r && r->op.id == op && r->result.ok() &&
                                          std::holds_alternative<GotItems>(r->result.value)) {
      ++n;
    }
  }
  return n;
}

std::vector<uint64_t> PushedReceipts(const Effects& out, uint64_t op) {
  std::vector<uint64_t> receipts;
  for (const Effect& e : out) {
    auto* r = std::get_if<Reply>(&e);
    if (r == nullptr || r->op.id != op || !r->result.ok()) continue;
    if (auto* g = std::get_if<GotItems>(&r->result.value)) {
      for (const auto& item : g->items) receipts.push_back(item.receipt);
    }
  }
  return receipts;
}

TEST(QueueTest, ConsumerGetsPushesWhileItHasCreditAndAcksBringMore) {
  Harness h;
  ConsumeQueue c;
  c.name = "q";
  c.lease = 10 * kSecond;
  c.prefetch = 2;
  h.Apply(c, 10);
  auto out = h.Apply(Put("q", {"a", "b", "c"}), 1);
  std::vector<uint64_t> receipts = PushedReceipts(out, 10);
  ASSERT_EQ(receipts.size(), 2u);  // the window is full
  out = h.Apply(AckItems{"q", {receipts[0]}}, 2);
  EXPECT_EQ(Pushes(out, 10), 1);  // a credit came back: "c" is pushed
  // Stopping answers Done; the items sent stay in flight until acked.
  auto stop = ReplyTo(h.Apply(StopConsuming{"q"}, 10), 10);
  ASSERT_TRUE(stop.has_value());
  EXPECT_TRUE(std::holds_alternative<Done>(stop->value));
}

TEST(QueueTest, ConsumersShareItemsInTurn) {
  Harness h;
  for (uint64_t op : {10, 11}) {
    ConsumeQueue c;
    c.name = "q";
    c.lease = 10 * kSecond;
    c.prefetch = 100;
    h.Apply(c, op);
  }
  auto out = h.Apply(Put("q", {"a", "b", "c", "d"}), 1);
  EXPECT_EQ(Pushes(out, 10), 2);
  EXPECT_EQ(Pushes(out, 11), 2);
}

TEST(QueueTest, UndeliveredPushesGoBackUncountedAndFreeTheirCredit) {
  Harness h;
  ConsumeQueue c;
  c.name = "q";
  c.lease = 10 * kSecond;
  c.prefetch = 1;
  h.Apply(c, 10);
  auto out = h.Apply(Put("q", {"a", "b"}), 1);
  std::vector<uint64_t> receipts = PushedReceipts(out, 10);
  ASSERT_EQ(receipts.size(), 1u);
  out = h.Apply(UndeliverItems{"q", receipts});
  std::vector<uint64_t> again = PushedReceipts(out, 10);
  ASSERT_EQ(again.size(), 1u);  // "a" again, at the head
}

TEST(QueueTest, SessionEndEndsItsConsumersAndReturnsTheirItems) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{10 * kSecond, ""}, 1), 1));
  ConsumeQueue c;
  c.name = "q";
  c.session = sid;
  h.Apply(c, 10);
  h.Apply(Put("q", {"a"}), 2);
  auto out = h.Apply(CloseSession{sid}, 3);
  EXPECT_EQ(ReplyTo(out, 10)->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("q"), 4), 4)), std::vector<std::string>{"a"});
}

}  // namespace
}  // namespace baton::apply

namespace baton::apply {
namespace {

TEST(QueueTest, AGetWithARequestIdIsReplayedWhileItsItemsAreInFlight) {
  Harness h;
  h.Apply(Put("q", {"a", "b", "c"}), 1);
  GetItems first = Get("q", 2);
  first.request_id = "get-1";
  auto got = ReplyTo(h.Apply(first, 2), 2);
  ASSERT_EQ(Payloads(got), (std::vector<std::string>{"a", "b"}));

  // The retry (try once) returns the same deliveries, not new items.
  GetItems retry = first;
  retry.deadline = 0;
  auto again = ReplyTo(h.Apply(retry, 3), 3);
  ASSERT_EQ(Payloads(again), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(std::get<GotItems>(again->value).how, GrantHow::kReplayed);
  EXPECT_EQ(Receipt(again, 0), Receipt(got, 0));
  EXPECT_EQ(std::get<GotItems>(again->value).items[0].deliveries, 1u);

  // Another request id, or no request id, takes what is left.
  GetItems other = Get("q", 2);
  other.request_id = "get-2";
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(other, 4), 4)), (std::vector<std::string>{"c"}));

  // Once acked, the key replays nothing: a Get with it waits for new items.
  h.Apply(AckItems{"q", {Receipt(got, 0), Receipt(got, 1)}}, 5);
  auto after = ReplyTo(h.Apply(retry, 6), 6);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(QueueTest, AParkedGetKeepsItsRequestIdForReplay) {
  Harness h;
  GetItems waiting = Get("q", 1);
  waiting.request_id = "parked";
  EXPECT_FALSE(ReplyTo(h.Apply(waiting, 2), 2).has_value());
  h.Apply(Put("q", {"x"}), 3);
  GetItems retry = waiting;
  retry.deadline = 0;
  auto again = ReplyTo(h.Apply(retry, 4), 4);
  ASSERT_EQ(Payloads(again), (std::vector<std::string>{"x"}));
  EXPECT_EQ(std::get<GotItems>(again->value).how, GrantHow::kReplayed);
}

const GotItems& Got(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value() && r->ok());
  return std::get<GotItems>(r->value);
}

TEST(QueueTest, AcksRideOnTheNextGetAndAreReported) {
  Harness h;
  h.Apply(Put("q", {"a", "b", "c"}), 1);
  auto first = ReplyTo(h.Apply(Get("q", 2), 2), 2);
  GetItems next = Get("q", 2);
  next.ack = {Receipt(first, 0), Receipt(first, 1)};
  auto second = ReplyTo(h.Apply(next, 3), 3);
  EXPECT_EQ(Payloads(second), std::vector<std::string>{"c"});
  EXPECT_EQ(Got(second).acked, 2u);
  EXPECT_TRUE(Got(second).ack_failed.empty());
  // Join waits only for "c" now; acking it on a Get that finds the queue
  // empty still applies (the Get fails, the ack stands) and releases Join.
  EXPECT_TRUE(h.Apply(JoinQueue{"q", kForever}, 4).empty());
  GetItems last = Get("q", 1, /*deadline=*/0);
  last.ack = {Receipt(second, 0), Receipt(second, 0) + 1000};
  auto out = h.Apply(last, 5);
  EXPECT_EQ(ReplyTo(out, 5)->status.code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(ReplyTo(out, 4).has_value());
  EXPECT_TRUE(ReplyTo(out, 4)->ok());
  EXPECT_EQ(h.state.queue_bytes(), 0u);
}

TEST(QueueTest, AParkedGetReportsItsAcksWhenGranted) {
  Harness h;
  h.Apply(Put("q", {"a"}), 1);
  auto got = ReplyTo(h.Apply(Get("q"), 2), 2);
  GetItems wait = Get("q");
  wait.ack = {Receipt(got), 999999};
  auto parked = h.Apply(wait, 3);
  EXPECT_FALSE(ReplyTo(parked, 3).has_value());
  // The ack was applied on arrival, not on grant: Join passes at once.
  EXPECT_TRUE(ReplyTo(h.Apply(JoinQueue{"q", kForever}, 4), 4)->ok());
  auto granted = ReplyTo(h.Apply(Put("q", {"b"}), 5), 3);
  EXPECT_EQ(Payloads(granted), std::vector<std::string>{"b"});
  EXPECT_EQ(Got(granted).acked, 1u);
  EXPECT_EQ(Got(granted).ack_failed, std::vector<uint64_t>{999999});
}

TEST(QueueTest, AcksOfACancelledParkedGetStandAndLeaveNothingBehind) {
  Harness h;
  h.Apply(Put("q", {"a"}, kForever, std::nullopt), 1);  // undeclared: reclaimable
  auto got = ReplyTo(h.Apply(Get("q"), 2), 2);
  GetItems wait = Get("q", 1, /*deadline=*/h.now + 10 * kSecond);
  wait.ack = {Receipt(got)};
  EXPECT_TRUE(h.Apply(wait, 3).empty());
  auto out = h.Advance(11 * kSecond);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kDeadlineExceeded);
  // Nothing queued, in flight or waiting: the undeclared queue is reclaimed.
  EXPECT_EQ(h.state.resource_count(), 0u);
  // A later grant of another waiter finds no stale ack outcome.
  h.Apply(Get("q"), 4);
  auto granted = ReplyTo(h.Apply(Put("q", {"b"}, kForever, std::nullopt), 5), 4);
  EXPECT_EQ(Got(granted).acked, 0u);
}

}  // namespace
}  // namespace baton::apply
