// Future against a real batond: set once, awaited by anyone; exceptions and
// cancellation are data; a pending Await can be cancelled.
#include <thread>

#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(FutureTest, AwaiterInAnotherClientGetsTheResult) {
  Client a = MustConnect();
  Client b = MustConnect();
  std::string name = Name();
  std::optional<absl::StatusOr<FutureOutcome>> outcome;
  std::thread waiter([&] { outcome.emplace(b.Future(name).Await(absl::Seconds(10))); });
  ASSERT_TRUE(Eventually([&] { return Waiters(a, name) == 1; }));
  EXPECT_EQ(a.Future(name).SetResult("42 rows", absl::Seconds(60)).value(), 1u);
  waiter.join();
  ASSERT_TRUE(outcome->ok()) << outcome->status();
  EXPECT_EQ((*outcome)->state, FutureState::kResult);
  EXPECT_EQ((*outcome)->value, "42 rows");
  // Done futures answer at once, and cannot change.
  EXPECT_EQ(b.Future(name).Await(absl::ZeroDuration())->value, "42 rows");
  EXPECT_EQ(a.Future(name).SetResult("again").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FutureTest, PendingAwaitWithZeroTimeoutIsDeadlineExceeded) {
  Client client = MustConnect();
  EXPECT_EQ(client.Future(Name()).Await(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(FutureTest, ExceptionAndCancellationAreOutcomes) {
  Client client = MustConnect();
  Future failed = client.Future(Name("failed"));
  ASSERT_TRUE(failed.SetException(13, "disk full").ok());
  auto outcome = failed.Await();
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(outcome->state, FutureState::kException);
  EXPECT_EQ(outcome->error_code, 13);
  EXPECT_EQ(outcome->error_message, "disk full");

  Future cancelled = client.Future(Name("cancelled"));
  std::optional<absl::StatusOr<FutureOutcome>> awaited;
  Call call =
      cancelled.AsyncAwait({}, [&](absl::StatusOr<FutureOutcome> r) { awaited.emplace(r); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, cancelled.name()) == 1; }));
  auto cancel = cancelled.Cancel();
  ASSERT_TRUE(cancel.ok());
  EXPECT_TRUE(cancel->cancelled);
  call.Wait();
  ASSERT_TRUE(awaited->ok());
  EXPECT_EQ((*awaited)->state, FutureState::kCancelled);
  EXPECT_FALSE(cancelled.Cancel()->cancelled) << "already done";
}

TEST(FutureTest, CancellingTheAwaitCallLeavesTheFuturePending) {
  Client client = MustConnect();
  Future future = client.Future(Name());
  CancelToken token;
  std::optional<absl::Status> status;
  Call call = future.AsyncAwait({.cancel = token},
                                [&](absl::StatusOr<FutureOutcome> r) { status = r.status(); });
  ASSERT_TRUE(Eventually([&] { return Waiters(client, future.name()) == 1; }));
  token.Cancel();
  call.Wait();
  EXPECT_EQ(status->code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(future.Await(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace baton::testing
