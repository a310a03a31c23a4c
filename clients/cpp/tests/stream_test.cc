// The session stream transport and the client contract (clients/README.md)
// against a real batond: waits re-sent after the stream is cut (through a
// TcpProxy), other operations of a broken stream failing UNAVAILABLE,
// request_id recovery, cancels racing grants on both transports, and the
// queue consumer whose acknowledgements ride on its Gets.
#include <atomic>
#include <cstdio>
#include <optional>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/session_stream.h"
#include "tests/tcp_proxy.h"
#include "tests/test_env.h"

namespace baton::testing {
namespace {

void SleepMicros(int us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

TEST(StreamTest, AWaitIsResentOnTheNextStreamAfterTheConnectionIsCut) {
  TcpProxy proxy(SharedServer().port());
  Client holder = MustConnect();
  Client client = MustConnect(proxy.address(), SuiteOptions({.transport = Transport::kStream,
                                                             .session_ttl = absl::Seconds(10)}));
  std::string name = Name();
  auto held = holder.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<LockGuard>> got;
  Call acquire = client.Lock(name).AsyncAcquire(
      {.timeout = absl::Seconds(20)},
      [&](absl::StatusOr<LockGuard> r) { got.emplace(std::move(r)); });
  // An operation without a request_id, sent on the same stream.
  std::optional<absl::StatusOr<GrantOutcome>> waited;
  Call wait = client.Event(Name("e")).AsyncWait(
      {}, [&](absl::StatusOr<GrantOutcome> r) { waited.emplace(std::move(r)); });
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, name) == 1; }));
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, Name("e")) == 1; }));
  int streams = client.keepalive_streams_opened();

  proxy.DropConnections();
  ASSERT_TRUE(wait.WaitFor(absl::Seconds(10)));
  EXPECT_EQ(waited->status().code(), absl::StatusCode::kUnavailable)
      << "its outcome is unknown: the caller decides";
  ASSERT_TRUE(Eventually([&] { return client.keepalive_streams_opened() > streams; }));
  // The acquire waits again, on the new stream, with the same request_id.
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, name) == 1; }, absl::Seconds(10)));
  EXPECT_FALSE(acquire.done());
  EXPECT_TRUE(held->Release().ok());
  ASSERT_TRUE(acquire.WaitFor(absl::Seconds(10)));
  ASSERT_TRUE(got->ok()) << got->status();
  EXPECT_EQ((*got)->session_id(), client.session_id()) << "the same session, resumed";
  auto info = holder.Admin().Describe(name);
  ASSERT_TRUE(info.ok());
  ASSERT_EQ(info->holders.size(), 1u);
  EXPECT_EQ(info->holders[0].session_id, client.session_id());
  EXPECT_TRUE((*got)->Release().ok());
}

// A grant whose answer was lost with a broken stream (the server counts it
// given: its write succeeded), and whose wait is cancelled while it waits to
// be sent again, has an unknown outcome: it is recovered by its request_id
// and given back, never left with the session.
TEST(StreamTest, AGrantLostWithTheStreamIsGivenBackWhenCancelledBeforeItIsResent) {
  TcpProxy proxy(SharedServer().port());
  Client holder = MustConnect();
  Client client = MustConnect(proxy.address(), SuiteOptions({.transport = Transport::kStream,
                                                             .session_ttl = absl::Seconds(10)}));
  std::string name = Name();
  auto held = holder.Lock(name).Acquire();
  ASSERT_TRUE(held.ok());
  std::optional<absl::StatusOr<LockGuard>> got;
  Call acquire = client.Lock(name).AsyncAcquire(
      {.timeout = absl::Seconds(30)},
      [&](absl::StatusOr<LockGuard> r) { got.emplace(std::move(r)); });
  // Without a request_id: ends UNAVAILABLE when the client sees the break.
  std::optional<absl::StatusOr<GrantOutcome>> waited;
  Call wait = client.Event(Name("e")).AsyncWait(
      {}, [&](absl::StatusOr<GrantOutcome> r) { waited.emplace(std::move(r)); });
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, name) == 1; }));
  ASSERT_TRUE(Eventually([&] { return Waiters(holder, Name("e")) == 1; }));

  proxy.SetFrozen(true);
  ASSERT_TRUE(held->Release().ok());
  uint64_t session = client.session_id();
  ASSERT_TRUE(Eventually([&] {
    auto info = holder.Admin().Describe(name);
    return info.ok() && info->holders.size() == 1 && info->holders[0].session_id == session;
  })) << "the grant went out (into the frozen proxy)";
  proxy.SetBlocked(true);  // lost with the connection, which stays down
  ASSERT_TRUE(wait.WaitFor(absl::Seconds(10)));
  EXPECT_EQ(waited->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(acquire.done()) << "queued to be sent again";
  acquire.Cancel();
  proxy.SetFrozen(false);
  proxy.SetBlocked(false);
  ASSERT_TRUE(acquire.WaitFor(absl::Seconds(20)));
  ASSERT_FALSE(got->ok());
  EXPECT_EQ(got->status().code(), absl::StatusCode::kCancelled) << got->status();
  // Its outcome was unknown, so it was recovered: the message says "given
  // back" when the recovery found the grant (REPLAYED); if the server had
  // counted the answer lost (its write not yet done when the connection
  // was cut, seen under load) and rolled the grant back, the recovery found
  // nothing. Either way never "before the call was sent", and the lock free.
  EXPECT_FALSE(absl::StrContains(got->status().message(), "before the call was sent"))
      << got->status();
  EXPECT_TRUE(Eventually([&] { return Free(holder, name); })) << "the lost grant stayed held";
}

TEST(StreamTest, ARequestIdGetsTheSameGrantBackReplayed) {
  Client client = MustConnect();
  std::string id = absl::StrCat("cpp-test-", Name());
  auto first = client.Lock(Name()).Acquire({.request_id = id});
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = client.Lock(Name()).Acquire({.timeout = absl::ZeroDuration(), .request_id = id});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->outcome(), GrantOutcome::kReplayed);
  EXPECT_EQ(again->fence(), first->fence());
  EXPECT_TRUE(again->Release().ok());
  (void)first->Release();  // released already: refused, and its lost signal fires
  EXPECT_TRUE(first->lost());

  Queue queue = client.Queue(Name("q"));
  ASSERT_TRUE(queue.PutMany({Item{.data = "a"}, Item{.data = "b"}}).ok());
  std::string get_id = absl::StrCat("cpp-test-get-", Name());
  auto got = queue.Get({.max_items = 2, .request_id = get_id});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  auto replayed =
      queue.Get({.max_items = 2, .timeout = absl::ZeroDuration(), .request_id = get_id});
  ASSERT_TRUE(replayed.ok()) << replayed.status();
  ASSERT_EQ(replayed->size(), 2u);
  EXPECT_EQ((*replayed)[0].receipt, (*got)[0].receipt);
  EXPECT_EQ((*replayed)[1].receipt, (*got)[1].receipt);
  EXPECT_TRUE(queue.Ack({(*got)[0].receipt, (*got)[1].receipt}).ok());
  EXPECT_TRUE(queue.Delete().ok());
}

// Cancels racing grants (and, on the stream, connections cut mid-wait): the
// lock is never left held, whichever wins.
void CancelRacingAGrantNeverLeaks(Transport transport) {
  TcpProxy proxy(SharedServer().port());
  Client a = MustConnect();
  Client b = MustConnect(proxy.address(), SuiteOptions({.transport = transport}));
  std::string name = Name();
  std::mt19937 rng(transport == Transport::kStream ? 3 : 4);
  const int kRounds = 200;
  int granted = 0, cancelled = 0, given_back = 0, cuts = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto held = a.Lock(name).Acquire(absl::Seconds(10));
    ASSERT_TRUE(held.ok()) << held.status();
    std::optional<absl::StatusOr<LockGuard>> got;
    Call call = b.Lock(name).AsyncAcquire(
        {}, [&](absl::StatusOr<LockGuard> r) { got.emplace(std::move(r)); });
    bool cut = round % 20 == 10;
    if (round % 2 == 0 || cut) {
      ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
    }
    int release_after = static_cast<int>(rng() % 800), cancel_after = static_cast<int>(rng() % 800);
    std::thread releaser([&] {
      SleepMicros(release_after);
      EXPECT_TRUE(held->Release().ok());
    });
    if (cut) {
      ++cuts;
      proxy.DropConnections();
    }
    SleepMicros(cancel_after);
    call.Cancel();
    releaser.join();
    ASSERT_TRUE(call.WaitFor(absl::Seconds(20))) << "round " << round;
    if (got->ok()) {
      ++granted;
      EXPECT_TRUE((*got)->Release().ok());
    } else {
      ASSERT_EQ(got->status().code(), absl::StatusCode::kCancelled) << got->status();
      ++cancelled;
      if (absl::StrContains(got->status().message(), "given back")) ++given_back;
    }
    got.reset();
    ASSERT_TRUE(Eventually([&] { return Free(a, name); })) << "leaked in round " << round;
  }
  EXPECT_EQ(granted + cancelled, kRounds);
  EXPECT_GT(cancelled, 0);
  std::printf("%s lock race: %d granted, %d cancelled (%d given back), %d connections cut\n",
              transport == Transport::kStream ? "stream" : "unary", granted, cancelled, given_back,
              cuts);
}

TEST(StreamTest, CancelRacingAGrantNeverLeaks) { CancelRacingAGrantNeverLeaks(Transport::kStream); }

TEST(StreamTest, CancelRacingAGrantNeverLeaksUnary) {
  CancelRacingAGrantNeverLeaks(Transport::kUnary);
}

TEST(StreamTest, ConsumerAcksRideOnItsGetsAndLeaveNothingInFlight) {
  Client producer = MustConnect();
  Client client = MustConnect();
  // Declared, so that it is not reclaimed once drained.
  Queue queue = client.Queue(Name(), QueueConfig{});
  const int kItems = 200;
  std::vector<Item> items;
  for (int i = 0; i < kItems; ++i) items.push_back(Item{.data = absl::StrCat("item ", i)});
  ASSERT_TRUE(producer.Queue(queue.name(), QueueConfig{}).PutMany(std::move(items)).ok());
  ConsumerStats stats;
  {
    Consumer consumer = queue.OpenConsumer({.prefetch = 16});
    for (int i = 0; i < kItems; ++i) {
      auto d = consumer.Next(absl::Seconds(10));
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_EQ(d->data, absl::StrCat("item ", i));
      EXPECT_TRUE(consumer.Ack(*d).ok());
    }
    EXPECT_EQ(consumer.Next(absl::Milliseconds(50)).status().code(),
              absl::StatusCode::kDeadlineExceeded);
    consumer.Close();
    stats = consumer.stats();
  }
  auto info = producer.Admin().Describe(queue.name());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->proto.queue().in_flight(), 0u);
  EXPECT_EQ(info->proto.queue().size(), 0u);
  EXPECT_TRUE(stats.ack_failed.empty());
  if (SuiteTransport() == Transport::kStream) {
    EXPECT_EQ(stats.acks_on_get + stats.acks_flushed, static_cast<uint64_t>(kItems));
    EXPECT_GT(stats.acks_on_get, 0u) << "acks ride on the next Get";
    EXPECT_LE(stats.gets, static_cast<uint64_t>(kItems / 16 + 3)) << "prefetch items per Get";
  }
  std::printf("consumer: %d items in %d Gets, %d acks on Gets, %d in Acks\n", kItems,
              static_cast<int>(stats.gets), static_cast<int>(stats.acks_on_get),
              static_cast<int>(stats.acks_flushed));
  EXPECT_TRUE(queue.Delete().ok());
}

TEST(StreamTest, AnAckWithNoGetToRideOnGoesOutAlone) {
  if (SuiteTransport() != Transport::kStream) GTEST_SKIP() << "acks ride on Gets on the stream";
  Client client = MustConnect();
  Queue queue = client.Queue(Name(), QueueConfig{});
  ASSERT_TRUE(queue.PutMany({Item{.data = "a"}, Item{.data = "b"}}).ok());
  Consumer consumer = queue.OpenConsumer({.prefetch = 2});
  auto d = consumer.Next(absl::Seconds(10));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(consumer.Ack(*d).ok());
  // No Next follows (one item is still buffered): the ack is flushed alone.
  ASSERT_TRUE(Eventually([&] { return consumer.stats().acks_flushed == 1; }, absl::Seconds(2)));
  EXPECT_EQ(consumer.stats().acks_on_get, 0u);
  auto info = client.Admin().Describe(queue.name());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->proto.queue().in_flight(), 1u) << "only the buffered item";
  consumer.Close();
  EXPECT_TRUE(queue.Delete().ok());
}

TEST(StreamTest, ClosingAConsumerGivesBackWhatItDidNotHandOut) {
  Client client = MustConnect();
  Queue queue = client.Queue(Name(), QueueConfig{});
  std::vector<Item> items;
  for (int i = 0; i < 10; ++i) items.push_back(Item{.data = absl::StrCat(i)});
  ASSERT_TRUE(queue.PutMany(std::move(items)).ok());
  {
    Consumer consumer = queue.OpenConsumer({.prefetch = 8});
    for (int i = 0; i < 2; ++i) {
      auto d = consumer.Next(absl::Seconds(10));
      ASSERT_TRUE(d.ok()) << d.status();
      EXPECT_TRUE(consumer.Ack(*d).ok());
    }
  }  // closed: the two acks go out, the buffered items go back
  ASSERT_TRUE(Eventually([&] {
    auto info = client.Admin().Describe(queue.name());
    return info.ok() && info->proto.queue().in_flight() == 0 && info->proto.queue().size() == 8;
  })) << "nothing in flight, 8 back in the queue";
  EXPECT_TRUE(queue.Delete().ok());
}

TEST(StreamTest, HandlesThatOutliveTheClientStillWork) {
  Client observer = MustConnect();
  std::string name = Name();
  std::optional<Queue> queue;
  {
    Client client = MustConnect();
    queue.emplace(client.Queue(name, QueueConfig{}));
    ASSERT_TRUE(queue->Put("before").ok());
  }  // closed: its stream is stopped
  auto put = queue->Put("after");
  EXPECT_TRUE(put.ok()) << put.status() << ": calls that need no session go unary";
  auto info = observer.Admin().Describe(name);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->proto.queue().size(), 2u);
  EXPECT_TRUE(observer.Queue(name).Delete().ok());
}

TEST(StreamTest, ALeaseOnlyHoldingIsLostWhenItsLeaseRunsOut) {
  Client client = MustConnect();
  auto held = client.Lock(Name()).Acquire({.lease = absl::Milliseconds(300), .use_session = false});
  ASSERT_TRUE(held.ok()) << held.status();
  std::atomic<int> fired{0};
  held->OnLost([&](absl::Status why) {
    EXPECT_EQ(why.code(), absl::StatusCode::kAborted);
    ++fired;
  });
  auto kept = client.Semaphore(Name("s"), 1)
                  .Acquire(1, {.lease = absl::Milliseconds(300), .use_session = false});
  ASSERT_TRUE(kept.ok()) << kept.status();
  std::atomic<int> kept_fired{0};
  kept->OnLost([&](absl::Status) { ++kept_fired; });
  EXPECT_TRUE(kept->Release().ok());  // released in time: never lost
  ASSERT_TRUE(Eventually([&] { return fired.load() == 1; }, absl::Seconds(3)));
  EXPECT_TRUE(held->lost());
  EXPECT_FALSE(held->holds());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(kept_fired.load(), 0);
  EXPECT_EQ(fired.load(), 1);
}

// The transport itself: operations queued while no write can go out (here:
// while the stream is re-opened) leave together in one message.
TEST(StreamTest, OperationsQueuedTogetherGoOutInOneMessage) {
  if (SecureSuite()) GTEST_SKIP() << "a bare SessionStream sends no token";
  internal::SessionStream stream(
      SuiteChannel(SharedServer().address()),
      {.ttl = absl::Seconds(5), .label = "", .rpc_timeout = absl::Seconds(10), .on_lost = nullptr});
  ASSERT_TRUE(stream.Start(absl::Seconds(10)).ok());
  stream.BreakStream();  // re-opened after at least 80 ms
  int before = stream.messages_sent();
  const int kOps = 100;
  std::atomic<int> ok{0}, answered{0};
  std::string name = Name();
  for (int i = 0; i < kOps; ++i) {
    v1::Operation op;
    op.mutable_put()->set_name(name);
    op.mutable_put()->add_items()->set_data(absl::StrCat(i));
    stream.Submit(std::move(op), absl::InfiniteFuture(), nullptr,
                  [&](internal::StreamOutcome outcome) {
                    if (outcome.kind == internal::StreamOutcome::Kind::kAnswered &&
                        outcome.result.code() == 0) {
                      ++ok;
                    }
                    ++answered;
                  });
  }
  ASSERT_TRUE(Eventually([&] { return answered.load() == kOps; }, absl::Seconds(10)));
  EXPECT_EQ(ok.load(), kOps);
  EXPECT_GE(stream.streams_opened(), 2);
  // One message for the hundred (a probe may add one).
  EXPECT_LE(stream.messages_sent() - before, 2) << stream.messages_sent() - before;
  stream.Stop();
  Client client = MustConnect();
  EXPECT_TRUE(client.Queue(name).Delete().ok());
}

}  // namespace
}  // namespace baton::testing
