// Shutdown: pending waits and watches end with UNAVAILABLE, promptly.
#include <thread>

#include "integration/test_server.h"

namespace baton::testing {
namespace {

TEST(ShutdownTest, PendingWaitsEndWithUnavailable) {
  TestServer t;
  v1::AcquireLockRequest lock;
  lock.set_name("sd");
  *lock.mutable_ttl() = Millis(60'000);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), lock, &held).ok());
  grpc::Status waited, watched;
  std::thread waiter([&] {
    v1::AcquireLockResponse r;
    waited = t.locks->Acquire(Context(30'000).get(), lock, &r);
  });
  grpc::ClientContext wctx;
  v1::WatchEventRequest w;
  w.set_name("sd-event");
  auto reader = t.events->Watch(&wctx, w);
  v1::EventChange change;
  ASSERT_TRUE(reader->Read(&change));
  grpc::ClientContext kctx;
  auto keepalive = t.sessions->KeepAliveStream(&kctx);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  auto start = std::chrono::steady_clock::now();
  t.Shutdown();
  waiter.join();
  while (reader->Read(&change)) {
  }
  watched = reader->Finish();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::UNAVAILABLE) << waited.error_message();
  EXPECT_EQ(watched.error_code(), grpc::StatusCode::UNAVAILABLE) << watched.error_message();
  keepalive->Finish();
}

}  // namespace
}  // namespace baton::testing
