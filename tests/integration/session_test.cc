// Sessions over real gRPC: what ending a session releases, and how
// KeepAliveStream keeps one alive.
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

TEST(SessionIntegrationTest, CloseAbortsWaitsAndReleasesHoldings) {
  TestServer t;
  uint64_t owner = OpenSession(t);
  uint64_t waiter = OpenSession(t);
  v1::AcquireLockRequest req;
  req.set_name("s/lock");
  req.set_session_id(owner);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &held).ok());

  grpc::Status waited;
  std::thread th([&] {
    v1::AcquireLockRequest w = req;
    w.set_session_id(waiter);
    v1::AcquireLockResponse r;
    waited = t.locks->Acquire(Context().get(), w, &r);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::CloseSessionRequest close;
  close.set_session_id(waiter);
  v1::CloseSessionResponse cr;
  ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  th.join();
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::ABORTED);

  close.set_session_id(owner);
  ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  v1::DescribeRequest d;
  d.set_name("s/lock");
  v1::DescribeResponse dr;
  EXPECT_EQ(t.admin->Describe(Context().get(), d, &dr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(t.sessions->Close(Context().get(), close, &cr).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(SessionIntegrationTest, KeepAliveStreamHoldsTheSessionOpen) {
  TestServer t;
  uint64_t s = OpenSession(t, 1000);
  grpc::ClientContext ctx;
  auto stream = t.sessions->KeepAliveStream(&ctx);
  v1::KeepAliveRequest ka;
  ka.set_session_id(s);
  ASSERT_TRUE(stream->Write(ka));
  v1::KeepAliveResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.state(), v1::SESSION_STATE_ALIVE);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // past the TTL
  v1::DescribeSessionRequest d;
  d.set_session_id(s);
  v1::DescribeSessionResponse dr;
  ASSERT_TRUE(t.sessions->Describe(Context().get(), d, &dr).ok());
  EXPECT_EQ(dr.open_streams(), 1u);
  EXPECT_FALSE(dr.has_expires_in());

  ka.set_session_id(424242);
  ASSERT_TRUE(stream->Write(ka));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.state(), v1::SESSION_STATE_NOT_FOUND);

  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
  // The TTL counts again from the stream's end.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_TRUE(t.sessions->Describe(Context().get(), d, &dr).ok());
  EXPECT_TRUE(dr.has_expires_in());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_EQ(t.sessions->Describe(Context().get(), d, &dr).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST(SessionIntegrationTest, UnaryKeepAliveExtendsTheTtl) {
  TestServer t;
  uint64_t s = OpenSession(t, 1000);
  v1::KeepAliveRequest ka;
  ka.set_session_id(s);
  v1::KeepAliveResponse resp;
  for (int i = 0; i < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    ASSERT_TRUE(t.sessions->KeepAlive(Context().get(), ka, &resp).ok());
    EXPECT_EQ(resp.state(), v1::SESSION_STATE_ALIVE);
  }
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

// A session opened on one shard must be known to every shard by the time
// Open has returned: the "session started" notice is posted to the other
// shards before the reply, and each loop runs posted work before the next
// completion-queue event (runtime/loop.cc), so a request that the reply
// caused cannot overtake it. (A rare NOT_FOUND seen once in the task race
// test led here; this test did not reproduce it, so it guards the ordering
// rather than proving the old window.)
TEST(SessionOrderTest, ASessionIsUsableOnEveryShardAsSoonAsOpenReturns) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.shards = 4;
  TestServer t(o);
  for (int round = 0; round < 150; ++round) {
    uint64_t session = OpenSession(t);
    for (int i = 0; i < 8; ++i) {
      v1::AcquireLockRequest req;
      req.set_name(absl::StrCat("fresh/", i));
      req.set_session_id(session);
      v1::AcquireLockResponse resp;
      grpc::Status s = t.locks->Acquire(Context().get(), req, &resp);
      ASSERT_TRUE(s.ok()) << "round " << round << ": " << s.error_message();
    }
    v1::CloseSessionRequest close;
    close.set_session_id(session);
    v1::CloseSessionResponse cr;
    ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  }
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

// --max_sessions is a total, whatever the shard count, and new sessions are
// spread over the shards (id % shards is the home shard).
TEST(SessionLimitTest, MaxSessionsIsATotalAndSessionsSpreadOverShards) {
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.shards = 2;
  o.max_sessions = 5;
  TestServer t(o);
  std::set<uint64_t> homes;
  for (int i = 0; i < 5; ++i) homes.insert(OpenSession(t) % 2);
  EXPECT_EQ(homes.size(), 2u);
  v1::OpenSessionRequest req;
  *req.mutable_ttl() = Millis(30'000);
  v1::OpenSessionResponse resp;
  grpc::Status s = t.sessions->Open(Context().get(), req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("limit 5 in total"), std::string::npos) << s.error_message();
}

}  // namespace
}  // namespace baton::testing
