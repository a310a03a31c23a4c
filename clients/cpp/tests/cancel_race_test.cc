// Cancellation from another thread racing with grants, against a real
// batond: whichever wins, nothing is leaked. A cancelled acquire never leaves
// the lock (or permits) held; a cancelled Get never loses an item nor leaves
// it in flight.
#include <cstdio>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "tests/test_env.h"

namespace baton::testing {
namespace {

void SleepMicros(int us) { std::this_thread::sleep_for(std::chrono::microseconds(us)); }

TEST(CancelRaceTest, LockCancelRacingAGrantNeverLeaksTheLock) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::mt19937 rng(7);
  const int kRounds = 120;
  int granted = 0, cancelled = 0, given_back = 0;
  for (int round = 0; round < kRounds; ++round) {
    auto held = a.Lock(name).Acquire(absl::Seconds(10));
    ASSERT_TRUE(held.ok()) << held.status();
    std::optional<absl::StatusOr<LockGuard>> got;
    Call call = b.Lock(name).AsyncAcquire(
        {}, [&](absl::StatusOr<LockGuard> r) { got.emplace(std::move(r)); });
    if (round % 2 == 0) {
      ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
    }
    int release_after = static_cast<int>(rng() % 800), cancel_after = static_cast<int>(rng() % 800);
    std::thread releaser([&] {
      SleepMicros(release_after);
      EXPECT_TRUE(held->Release().ok());
    });
    std::thread canceller([&] {
      SleepMicros(cancel_after);
      call.Cancel();
    });
    releaser.join();
    canceller.join();
    call.Wait();
    ASSERT_TRUE(got.has_value());
    if (got->ok()) {
      ++granted;
      auto info = a.Admin().Describe(name);
      ASSERT_TRUE(info.ok());
      ASSERT_EQ(info->holders.size(), 1u);
      EXPECT_EQ(info->holders[0].token, (*got)->fence());
      EXPECT_EQ(info->holders[0].session_id, b.session_id());
      EXPECT_TRUE((*got)->Release().ok());
    } else {
      ASSERT_EQ(got->status().code(), absl::StatusCode::kCancelled) << got->status();
      ++cancelled;
      if (absl::StrContains(got->status().message(), "given back"))
        ++given_back;  // raced or recovered
    }
    got.reset();
    ASSERT_TRUE(Eventually([&] { return Free(a, name); })) << "leaked in round " << round;
  }
  EXPECT_EQ(granted + cancelled, kRounds);
  EXPECT_GT(cancelled, 0);
  std::printf("lock race: %d granted, %d cancelled (%d grants given back by the client)\n", granted,
              cancelled, given_back);
  EXPECT_EQ(a.Admin().Describe(name).status().code(), absl::StatusCode::kNotFound);
}

TEST(CancelRaceTest, SemaphoreCancelRacingAGrantNeverLeaksPermits) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::mt19937 rng(11);
  const int kRounds = 80;
  for (int round = 0; round < kRounds; ++round) {
    auto held = a.Semaphore(name, 2).Acquire(2, {.timeout = absl::Seconds(10)});
    ASSERT_TRUE(held.ok()) << held.status();
    std::optional<absl::StatusOr<SemaphoreGuard>> got;
    Call call = b.Semaphore(name, 2).AsyncAcquire(
        2, {}, [&](absl::StatusOr<SemaphoreGuard> r) { got.emplace(std::move(r)); });
    int release_after = static_cast<int>(rng() % 800), cancel_after = static_cast<int>(rng() % 800);
    std::thread releaser([&] {
      SleepMicros(release_after);
      EXPECT_TRUE(held->Release().ok());
    });
    SleepMicros(cancel_after);
    call.Cancel();
    releaser.join();
    call.Wait();
    ASSERT_TRUE(got->ok() || got->status().code() == absl::StatusCode::kCancelled) << got->status();
    got.reset();  // releases a grant, if any
    ASSERT_TRUE(Eventually([&] { return Free(a, name); })) << "leaked in round " << round;
  }
}

TEST(CancelRaceTest, QueueGetCancelRacingAPutNeverLosesAnItem) {
  Client a = MustConnect();
  Queue producer = a.Queue(Name());
  std::mt19937 rng(5);
  const int kRounds = 100;
  int received = 0;
  {
    Client b = MustConnect();
    Queue consumer = b.Queue(producer.name());
    for (int round = 0; round < kRounds; ++round) {
      std::optional<absl::StatusOr<std::vector<Delivery>>> got;
      Call call = consumer.AsyncGet(
          {}, [&](absl::StatusOr<std::vector<Delivery>> r) { got.emplace(std::move(r)); });
      int put_after = static_cast<int>(rng() % 800), cancel_after = static_cast<int>(rng() % 800);
      std::thread putter([&] {
        SleepMicros(put_after);
        EXPECT_TRUE(producer.Put("item").ok());
      });
      SleepMicros(cancel_after);
      call.Cancel();
      putter.join();
      call.Wait();
      if (got->ok()) {
        received += static_cast<int>((*got)->size());
        for (const Delivery& d : **got) EXPECT_TRUE(consumer.Ack(d).ok());
      } else {
        ASSERT_EQ(got->status().code(), absl::StatusCode::kCancelled) << got->status();
      }
    }
    // A Get whose reply crossed the cancel, or was lost, is asked again with
    // its request_id and what comes back is given back: nothing stays in
    // flight while the consumer's session lives.
    EXPECT_TRUE(Eventually([&] {
      auto info = a.Admin().Describe(producer.name());
      return info.ok() && info->proto.queue().in_flight() == 0;
    })) << "items left in flight by cancelled Gets";
    std::printf("queue race: %d received\n", received);
  }
  ASSERT_TRUE(Eventually([&] {
    auto info = a.Admin().Describe(producer.name());
    return info.ok() && info->proto.queue().in_flight() == 0;
  }));
  auto info = a.Admin().Describe(producer.name());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(received + static_cast<int>(info->proto.queue().size()), kRounds)
      << "every item is received or back in the queue";
  EXPECT_TRUE(producer.Delete().ok());
}

}  // namespace
}  // namespace baton::testing
