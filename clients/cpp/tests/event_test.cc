// Event against a real batond: Set / Clear / IsSet / Wait across clients,
// timeouts, cancellation, and the Watch stream.
#include <mutex>
#include <thread>
#include <vector>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(EventTest, SetWakesAWaiterInAnotherClient) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::optional<absl::StatusOr<GrantOutcome>> waited;
  std::thread waiter([&] { waited.emplace(b.Event(name).Wait(absl::Seconds(10))); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  absl::StatusOr<EventSetResult> set = a.Event(name).Set();
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_FALSE(set->was_set);
  EXPECT_EQ(set->woken, 1u);
  waiter.join();
  ASSERT_TRUE(waited->ok()) << waited->status();
  EXPECT_EQ(**waited, GrantOutcome::kAfterWait);
  ASSERT_TRUE(a.Event(name).Clear().ok());
}

TEST(EventTest, IsSetClearAndWaitThatDoesNotWait) {
  Client client = MustConnect();
  Event event = client.Event(Name());
  EXPECT_EQ(event.IsSet().value(), false);
  EXPECT_EQ(event.Wait(absl::ZeroDuration()).status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(event.Set().ok());
  EXPECT_EQ(event.IsSet().value(), true);
  EXPECT_EQ(event.Wait(absl::ZeroDuration()).value(), GrantOutcome::kImmediate);
  EXPECT_EQ(event.Set()->was_set, true) << "Set is idempotent";
  EXPECT_EQ(event.Clear().value(), true);
  EXPECT_EQ(event.Clear().value(), false);
  EXPECT_EQ(event.IsSet().value(), false);
}

TEST(EventTest, WaitTimesOut) {
  Client client = MustConnect();
  absl::Time start = absl::Now();
  EXPECT_EQ(client.Event(Name()).Wait(absl::Milliseconds(200)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
}

TEST(EventTest, AsyncWaitCancelledFromAnotherThread) {
  Client client = MustConnect();
  std::string name = Name();
  std::optional<absl::Status> status;
  Call call = client.Event(name).AsyncWait(
      {}, [&](absl::StatusOr<GrantOutcome> r) { status = r.status(); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, name) == 1; }));
  std::thread([call] { call.Cancel(); }).join();
  call.Wait();
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(Eventually([&] { return Waiters(client, name) == 0; }));
}

TEST(EventTest, WatchStreamsTheStateThenEveryChange) {
  Client client = MustConnect();
  Event event = client.Event(Name());
  std::mutex mu;
  std::vector<bool> states;
  std::optional<absl::Status> end;
  Stream watch = event.Watch(
      [&](bool is_set, uint64_t) {
        std::lock_guard<std::mutex> lock(mu);
        states.push_back(is_set);
      },
      [&](absl::Status s) { end = s; });
  auto count = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return states.size();
  };
  ASSERT_TRUE(Eventually([&] { return count() == 1; }));
  ASSERT_TRUE(event.Set().ok());
  ASSERT_TRUE(Eventually([&] { return count() == 2; }));
  ASSERT_TRUE(event.Clear().ok());
  ASSERT_TRUE(Eventually([&] { return count() == 3; }));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(states, (std::vector<bool>{false, true, false}));
  }
  EXPECT_FALSE(watch.done());
  watch.Cancel();
  EXPECT_EQ(watch.Wait().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(end->code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace baton::testing
