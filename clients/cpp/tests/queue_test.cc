// Queue against a real batond: orders, in-flight items and acknowledgements,
// redelivery, dead letters, Join, Purge, Delete, the Consume stream and the
// blocking Consumer, and items of a lost consumer coming back.
#include <mutex>
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

std::vector<Item> Items(std::initializer_list<std::pair<const char*, int64_t>> items) {
  std::vector<Item> out;
  for (const auto& [data, priority] : items)
    out.push_back(Item{.data = data, .priority = priority});
  return out;
}

TEST(QueueTest, PutGetAckInFifoOrder) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name());
  auto put = queue.Put(Items({{"a", 0}, {"b", 0}}));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->item_ids.size(), 2u);
  EXPECT_EQ(put->size, 2u);
  auto first = queue.GetOne();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->data, "a");
  EXPECT_EQ(first->delivery_count, 1u);
  auto info = client.Admin().Describe(queue.name());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->proto.queue().in_flight(), 1u);
  auto acked = queue.Ack(*first);
  ASSERT_TRUE(acked.ok());
  EXPECT_EQ(acked->acked, 1u);
  EXPECT_EQ(acked->unfinished, 1u);
  auto rest = queue.Get({.max_items = 10});
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].data, "b");
  EXPECT_EQ(queue.Ack((*rest)[0])->unfinished, 0u);
  EXPECT_EQ(queue.Ack((*rest)[0]).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(QueueTest, PriorityAndLifoOrders) {
  Client client = MustConnect();
  Queue pq = client.Queue(Name("pq"), QueueConfig{.order = QueueOrder::kPriority});
  ASSERT_TRUE(pq.Put(Items({{"low", 5}, {"urgent", 1}, {"mid", 3}})).ok());
  auto got = pq.Get({.max_items = 3});
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].data, "urgent");
  EXPECT_EQ((*got)[1].data, "mid");
  EXPECT_EQ((*got)[2].data, "low");
  ASSERT_TRUE(pq.Ack({(*got)[0].receipt, (*got)[1].receipt, (*got)[2].receipt}).ok());

  Queue lifo = client.Queue(Name("lifo"), QueueConfig{.order = QueueOrder::kLifo});
  ASSERT_TRUE(lifo.Put(Items({{"1", 0}, {"2", 0}})).ok());
  auto last = lifo.GetOne();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->data, "2");
  EXPECT_TRUE(lifo.Delete().value());
}

TEST(QueueTest, NowaitFormsFailWithAsyncioMeanings) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name(), QueueConfig{.maxsize = 1});
  EXPECT_EQ(queue.GetOne(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);  // QueueEmpty
  ASSERT_TRUE(queue.Put("x").ok());
  EXPECT_EQ(queue.Put(Items({{"y", 0}}), {.timeout = absl::ZeroDuration()}).status().code(),
            absl::StatusCode::kResourceExhausted);  // QueueFull
  EXPECT_EQ(client.Queue(queue.name(), QueueConfig{.maxsize = 2}).Put("z").status().code(),
            absl::StatusCode::kFailedPrecondition);  // different declaration
  EXPECT_EQ(queue.Purge().value(), 1u);
}

TEST(QueueTest, NackRedeliversAndMaxDeliveriesDeadLetters) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name(), QueueConfig{.max_deliveries = 2});
  ASSERT_TRUE(queue.Put("flaky").ok());
  auto first = queue.GetOne();
  ASSERT_TRUE(first.ok());
  auto nacked = queue.Nack(*first);
  ASSERT_TRUE(nacked.ok());
  EXPECT_EQ(nacked->returned, 1u);
  EXPECT_EQ(nacked->dead_lettered, 0u);
  auto second = queue.GetOne();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->delivery_count, 2u);
  EXPECT_EQ(second->item_id, first->item_id);
  EXPECT_EQ(queue.Nack(*second)->dead_lettered, 1u);
  EXPECT_EQ(queue.GetOne(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  auto dead = queue.Get({.dead_letters = true});
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ((*dead)[0].data, "flaky");
  EXPECT_TRUE(queue.Join({.timeout = absl::Seconds(1)}).ok()) << "a dead letter counts as finished";
  EXPECT_TRUE(queue.Delete().value());
}

TEST(QueueTest, JoinWaitsUntilEveryItemIsAcknowledged) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name());
  ASSERT_TRUE(queue.Put("job").ok());
  std::optional<absl::StatusOr<GrantOutcome>> joined;
  Call join = queue.AsyncJoin({}, [&](absl::StatusOr<GrantOutcome> r) { joined.emplace(r); });
  auto got = queue.GetOne();
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(join.WaitFor(absl::Milliseconds(100)));
  ASSERT_TRUE(queue.Ack(*got).ok());
  join.Wait();
  ASSERT_TRUE(joined->ok()) << joined->status();
  EXPECT_EQ(**joined, GrantOutcome::kAfterWait);
}

TEST(QueueTest, DeleteAbortsAWaitingGet) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::optional<absl::StatusOr<std::vector<Delivery>>> got;
  std::thread getter([&] { got.emplace(a.Queue(name).Get()); });
  ASSERT_TRUE(Eventually([&] { return Waiters(b, name) == 1; }));
  EXPECT_TRUE(b.Queue(name).Delete().value());
  getter.join();
  EXPECT_EQ(got->status().code(), absl::StatusCode::kAborted);
}

TEST(QueueTest, ItemsOfALostConsumerComeBack) {
  Client producer = MustConnect();
  std::string name = Name();
  ASSERT_TRUE(producer.Queue(name).Put("precious").ok());
  {
    Client consumer = MustConnect();
    auto got = consumer.Queue(name).GetOne();
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->data, "precious");
  }  // the consumer's session closes without an Ack
  auto again = producer.Queue(name).GetOne(absl::Seconds(5));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->data, "precious");
  EXPECT_EQ(again->delivery_count, 2u);
  ASSERT_TRUE(producer.Queue(name).Ack(*again).ok());
}

TEST(QueueTest, ConsumeStreamsItemsWithinThePrefetchWindow) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name());
  std::mutex mu;
  std::vector<Delivery> got;
  std::optional<absl::Status> end;
  Stream stream = queue.Consume(
      {.prefetch = 2},
      [&](Delivery d) {
        std::lock_guard<std::mutex> lock(mu);
        got.push_back(std::move(d));
      },
      [&](absl::Status s) { end = s; });
  ASSERT_TRUE(queue.Put(Items({{"1", 0}, {"2", 0}, {"3", 0}})).ok());
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return got.size();
  };
  ASSERT_TRUE(Eventually([&] { return count() == 2; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(count(), 2u) << "the third item waits for a credit";
  uint64_t receipt;
  {
    std::lock_guard<std::mutex> lock(mu);
    receipt = got[0].receipt;
  }
  ASSERT_TRUE(queue.Ack({receipt}).ok());
  ASSERT_TRUE(Eventually([&] { return count() == 3; }));
  stream.Cancel();
  EXPECT_EQ(stream.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(end->code(), absl::StatusCode::kCancelled);
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(got[0].data, "1");
  EXPECT_EQ(got[2].data, "3");
  ASSERT_TRUE(queue.Ack({got[1].receipt, got[2].receipt}).ok());
}

TEST(QueueTest, ConsumerGivesBackWhatItDidNotHandOut) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name());
  ASSERT_TRUE(queue.Put(Items({{"1", 0}, {"2", 0}, {"3", 0}})).ok());
  {
    Consumer consumer = queue.OpenConsumer({.prefetch = 3});
    auto first = consumer.Next(absl::Seconds(5));
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(first->data, "1");
    ASSERT_TRUE(queue.Ack(*first).ok());
    // Let the other two arrive in the buffer.
    ASSERT_TRUE(Eventually([&] {
      auto info = client.Admin().Describe(queue.name());
      return info.ok() && info->proto.queue().in_flight() == 2;
    }));
  }  // Close: the two buffered items are given back
  auto info = client.Admin().Describe(queue.name());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->proto.queue().in_flight(), 0u);
  EXPECT_EQ(info->proto.queue().size(), 2u);
  auto rest = queue.Get({.max_items = 2});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->size(), 2u);
  EXPECT_TRUE(queue.Delete().value());
}

}  // namespace
}  // namespace baton::testing
