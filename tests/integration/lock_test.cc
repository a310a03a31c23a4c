// Locks and semaphores over real gRPC: grants, FIFO hand-off, deadlines,
// client cancellation, leases, idempotent retries.
#include <thread>

#include "integration/test_server.h"

namespace baton::testing {
namespace {

v1::AcquireLockRequest LockReq(const std::string& name, uint64_t session, int64_t ttl_ms = 0) {
  v1::AcquireLockRequest r;
  r.set_name(name);
  r.set_session_id(session);
  if (ttl_ms > 0) *r.mutable_ttl() = Millis(ttl_ms);
  return r;
}

grpc::Status Acquire(TestServer& t, const v1::AcquireLockRequest& req,
                     v1::AcquireLockResponse* resp, int64_t deadline_ms = 10'000) {
  return t.locks->Acquire(Context(deadline_ms).get(), req, resp);
}

grpc::Status Release(TestServer& t, const std::string& name, uint64_t token, uint64_t session) {
  v1::ReleaseLockRequest req;
  req.set_name(name);
  req.set_token(token);
  req.set_session_id(session);
  v1::ReleaseLockResponse resp;
  return t.locks->Release(Context().get(), req, &resp);
}

bool Exists(TestServer& t, const std::string& name) {
  v1::DescribeRequest req;
  req.set_name(name);
  v1::DescribeResponse resp;
  return t.admin->Describe(Context().get(), req, &resp).ok();
}

TEST(LockIntegrationTest, AcquireAndReleaseOverGrpc) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockResponse resp;
  ASSERT_TRUE(Acquire(t, LockReq("a", s), &resp).ok());
  EXPECT_EQ(resp.outcome(), v1::GRANT_OUTCOME_IMMEDIATE);
  EXPECT_GT(resp.token(), 0u);
  EXPECT_FALSE(resp.has_expires_in());
  EXPECT_TRUE(Release(t, "a", resp.token(), s).ok());
  EXPECT_FALSE(Exists(t, "a"));
}

TEST(LockIntegrationTest, WaitersAreGrantedInArrivalOrder) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockResponse first;
  ASSERT_TRUE(Acquire(t, LockReq("fifo", s), &first).ok());
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&, i] {
      v1::AcquireLockResponse r;
      ASSERT_TRUE(Acquire(t, LockReq("fifo", s), &r).ok());
      {
        std::lock_guard<std::mutex> l(mu);
        order.push_back(i);
      }
      ASSERT_TRUE(Release(t, "fifo", r.token(), s).ok());
    });
    // Wait until this waiter is parked before starting the next.
    for (int spin = 0; spin < 500; ++spin) {
      v1::DescribeRequest d;
      d.set_name("fifo");
      v1::DescribeResponse dr;
      if (t.admin->Describe(Context().get(), d, &dr).ok() &&
          dr.waiters() == static_cast<uint32_t>(i + 1)) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  ASSERT_TRUE(Release(t, "fifo", first.token(), s).ok());
  for (auto& th : threads) th.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
}

TEST(LockIntegrationTest, TimeoutFieldEndsTheWaitWithDeadlineExceeded) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(Acquire(t, LockReq("t", s), &held).ok());
  auto req = LockReq("t", s);
  *req.mutable_timeout() = Millis(50);
  v1::AcquireLockResponse resp;
  EXPECT_EQ(Acquire(t, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  *req.mutable_timeout() = Millis(0);
  EXPECT_EQ(Acquire(t, req, &resp).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(LockIntegrationTest, GrpcDeadlineEndsTheWaitAndLeavesNoWaiter) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(Acquire(t, LockReq("d", s), &held).ok());
  v1::AcquireLockResponse resp;
  EXPECT_EQ(Acquire(t, LockReq("d", s), &resp, 100).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::DescribeRequest d;
  d.set_name("d");
  v1::DescribeResponse dr;
  ASSERT_TRUE(t.admin->Describe(Context().get(), d, &dr).ok());
  EXPECT_EQ(dr.waiters(), 0u);
}

TEST(LockIntegrationTest, ClientCancellationEndsTheWait) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(Acquire(t, LockReq("c", s), &held).ok());
  grpc::ClientContext ctx;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ctx.TryCancel();
  });
  v1::AcquireLockResponse resp;
  grpc::Status st = t.locks->Acquire(&ctx, LockReq("c", s), &resp);
  canceller.join();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(Release(t, "c", held.token(), s).ok());
  // Nobody else was granted the lock on the cancelled call's behalf.
  for (int i = 0; i < 100 && Exists(t, "c"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(Exists(t, "c"));
}

TEST(LockIntegrationTest, LeaseExpiryHandsTheLockOn) {
  TestServer t;
  v1::AcquireLockResponse first;
  ASSERT_TRUE(Acquire(t, LockReq("lease", 0, 200), &first).ok());
  EXPECT_TRUE(first.has_expires_in());
  v1::AcquireLockResponse second;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(Acquire(t, LockReq("lease", 0, 5000), &second).ok());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100));
  EXPECT_GT(second.token(), first.token());
  EXPECT_EQ(second.outcome(), v1::GRANT_OUTCOME_AFTER_WAIT);
}

TEST(LockIntegrationTest, RetryWithRequestIdReplaysTheGrant) {
  TestServer t;
  uint64_t s = OpenSession(t);
  auto req = LockReq("idem", s);
  req.set_request_id("job-17");
  v1::AcquireLockResponse a, b;
  ASSERT_TRUE(Acquire(t, req, &a).ok());
  ASSERT_TRUE(Acquire(t, req, &b).ok());
  EXPECT_EQ(b.outcome(), v1::GRANT_OUTCOME_REPLAYED);
  EXPECT_EQ(a.token(), b.token());
}

TEST(LockIntegrationTest, SemaphoreWeightedAcquireAndRelease) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireSemaphoreRequest req;
  req.set_name("pool");
  req.set_capacity(3);
  req.set_count(2);
  req.set_session_id(s);
  v1::AcquireSemaphoreResponse a;
  ASSERT_TRUE(t.semaphores->Acquire(Context().get(), req, &a).ok());
  EXPECT_EQ(a.available(), 1);
  *req.mutable_timeout() = Millis(0);
  v1::AcquireSemaphoreResponse b;
  EXPECT_EQ(t.semaphores->Acquire(Context().get(), req, &b).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::ReleaseSemaphoreRequest rel;
  rel.set_name("pool");
  rel.set_token(a.token());
  rel.set_session_id(s);
  v1::ReleaseSemaphoreResponse rr;
  ASSERT_TRUE(t.semaphores->Release(Context().get(), rel, &rr).ok());
  EXPECT_EQ(rr.available(), 3);
}

}  // namespace
}  // namespace baton::testing
