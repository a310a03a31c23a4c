// Barrier against a real batond: parties released together with distinct
// arrival indices; a timeout breaks it for everyone until Reset; Abort.
#include <mutex>
#include <set>
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(BarrierTest, ReleasesAllPartiesTogether) {
  std::string name = Name();
  std::mutex mu;
  std::set<uint32_t> indices;
  std::set<uint64_t> cycles;
  std::vector<std::thread> parties;
  std::vector<Client> clients;
  for (int i = 0; i < 3; ++i) clients.push_back(MustConnect());
  for (int i = 0; i < 3; ++i) {
    parties.emplace_back([&, i] {
      auto arrival = clients[i].Barrier(name, 3).Wait({.timeout = absl::Seconds(10)});
      ASSERT_TRUE(arrival.ok()) << arrival.status();
      std::lock_guard<std::mutex> lock(mu);
      indices.insert(arrival->index);
      cycles.insert(arrival->cycle);
    });
  }
  for (auto& t : parties) t.join();
  EXPECT_EQ(indices, (std::set<uint32_t>{0, 1, 2}));
  EXPECT_EQ(cycles, (std::set<uint64_t>{1}));
}

TEST(BarrierTest, TimeoutBreaksTheBarrierUntilReset) {
  Client client = MustConnect();
  Barrier barrier = client.Barrier(Name(), 2);
  EXPECT_EQ(barrier.Wait({.timeout = absl::Milliseconds(100)}).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(barrier.Wait({.timeout = absl::Seconds(5)}).status().code(),
            absl::StatusCode::kAborted);
  auto info = client.Admin().Describe(barrier.name());
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->proto.barrier().broken());
  EXPECT_TRUE(barrier.Reset().ok());
  // Whole again: two parties pass.
  Client other = MustConnect();
  std::thread t([&] { EXPECT_TRUE(other.Barrier(barrier.name(), 2).Wait().ok()); });
  EXPECT_TRUE(barrier.Wait({.timeout = absl::Seconds(10)}).ok());
  t.join();
}

TEST(BarrierTest, AbortEndsTheWaiters) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::optional<absl::StatusOr<BarrierArrival>> arrival;
  std::thread waiter([&] { arrival.emplace(a.Barrier(name, 2).Wait()); });
  ASSERT_TRUE(Eventually([&] { return Waiters(b, name) == 1; }));
  EXPECT_EQ(b.Barrier(name).Abort().value(), 1u);
  waiter.join();
  EXPECT_EQ(arrival->status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(b.Barrier(name).Reset().ok());
}

}  // namespace
}  // namespace baton::testing
