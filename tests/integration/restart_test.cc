// Durability over real gRPC: what a client was told survives a restart of
// the server on the same data directory, a wait pending at shutdown ends
// once (UNAVAILABLE) and its retry works afterwards, and replaying the log
// gives the same state. (kill -9 and damaged logs: tests/python/test_crash.py.)
#include <stdlib.h>

#include <filesystem>
#include <thread>

#include "integration/test_server.h"

namespace baton::testing {
namespace {

v1::DescribeResponse Describe(TestServer& t, const std::string& name) {
  v1::DescribeRequest req;
  req.set_name(name);
  v1::DescribeResponse resp;
  grpc::Status s = t.admin->Describe(Context().get(), req, &resp);
  EXPECT_TRUE(s.ok()) << name << ": " << s.error_message();
  return resp;
}

bool Durable() { return TestServer::DefaultOptions().durability == rpc::Durability::kLocal; }

TEST(RestartTest, HeldLockSessionAndTokenSurvive) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t;
  uint64_t s = OpenSession(t, 60'000);
  v1::AcquireLockRequest req;
  req.set_name("r/lock");
  req.set_session_id(s);
  req.set_request_id("acq-1");
  v1::AcquireLockResponse first;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &first).ok());

  t.Restart();

  v1::DescribeResponse d = Describe(t, "r/lock");
  ASSERT_EQ(d.holders_size(), 1);
  EXPECT_EQ(d.holders(0).token(), first.token());
  EXPECT_EQ(d.holders(0).session_id(), s);
  // A retry of the same acquire (say its reply was lost in the restart)
  // finds the same grant.
  v1::AcquireLockResponse again;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &again).ok());
  EXPECT_EQ(again.token(), first.token());
  // Someone else still cannot take it.
  v1::AcquireLockRequest other;
  other.set_name("r/lock");
  other.set_session_id(OpenSession(t));
  *other.mutable_timeout() = Millis(0);
  v1::AcquireLockResponse no;
  EXPECT_EQ(t.locks->Acquire(Context().get(), other, &no).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // The session is alive, with a fresh TTL.
  v1::KeepAliveRequest ka;
  ka.set_session_id(s);
  v1::KeepAliveResponse kr;
  EXPECT_TRUE(t.sessions->KeepAlive(Context().get(), ka, &kr).ok());
  // Release, and the next grant's token is above every earlier one.
  v1::ReleaseLockRequest rel;
  rel.set_name("r/lock");
  rel.set_token(first.token());
  rel.set_session_id(s);
  v1::ReleaseLockResponse rr;
  ASSERT_TRUE(t.locks->Release(Context().get(), rel, &rr).ok());
  t.Restart();
  req.set_request_id("acq-2");
  v1::AcquireLockResponse next;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &next).ok());
  EXPECT_GT(next.token(), first.token());
}

TEST(RestartTest, QueueItemsReadyAndInFlightSurvive) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t;
  v1::PutRequest put;
  put.set_name("r/q");
  for (const char* text : {"a", "b", "c"}) put.add_items()->set_text(text);
  v1::PutResponse pr;
  ASSERT_TRUE(t.queues->Put(Context().get(), put, &pr).ok());
  v1::GetRequest get;
  get.set_name("r/q");
  *get.mutable_ttl() = Millis(300);  // visibility timeout
  v1::GetResponse got;
  ASSERT_TRUE(t.queues->Get(Context().get(), get, &got).ok());
  ASSERT_EQ(got.items(0).text(), "a");

  t.Restart();

  v1::DescribeResponse d = Describe(t, "r/q");
  EXPECT_EQ(d.queue().size(), 2u);
  EXPECT_EQ(d.queue().in_flight(), 1u);
  // "b" and "c" in order; then "a" comes back once its visibility timeout
  // has passed, counted as its second delivery.
  *get.mutable_timeout() = Millis(5'000);
  *get.mutable_ttl() = Millis(60'000);
  std::vector<std::string> order;
  for (int i = 0; i < 3; ++i) {
    v1::GetResponse r;
    grpc::Status st = t.queues->Get(Context().get(), get, &r);
    ASSERT_TRUE(st.ok()) << i << ": " << st.error_message();
    order.push_back(r.items(0).text());
    if (r.items(0).text() == "a") {
      EXPECT_EQ(r.items(0).delivery_count(), 2u);
    }
    v1::AckRequest ack;
    ack.set_name("r/q");
    ack.add_receipts(r.items(0).receipt());
    v1::AckResponse ar;
    ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());
  }
  EXPECT_EQ(order, (std::vector<std::string>{"b", "c", "a"}));
}

TEST(RestartTest, PendingWaitEndsOnceAndItsRetryWorksAfterTheRestart) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t;
  uint64_t holder = OpenSession(t, 60'000);
  v1::AcquireLockRequest req;
  req.set_name("r/wait");
  req.set_session_id(holder);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &held).ok());
  uint64_t waiter = OpenSession(t, 60'000);
  grpc::Status waited;
  std::thread th([&] {
    v1::AcquireLockRequest w;
    w.set_name("r/wait");
    w.set_session_id(waiter);
    w.set_request_id("w-1");
    v1::AcquireLockResponse r;
    waited = t.locks->Acquire(Context(10'000).get(), w, &r);
  });
  // Wait until the waiter stands in line.
  for (int i = 0; i < 200 && Describe(t, "r/wait").waiters() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(Describe(t, "r/wait").waiters(), 1u);
  t.Restart();
  th.join();
  EXPECT_EQ(waited.error_code(), grpc::StatusCode::UNAVAILABLE) << waited.error_message();
  // The orphaned wait is gone; the holder still holds; the retry waits again
  // and is granted when the holder releases.
  v1::DescribeResponse d = Describe(t, "r/wait");
  EXPECT_EQ(d.waiters(), 0u);
  ASSERT_EQ(d.holders_size(), 1);
  EXPECT_EQ(d.holders(0).session_id(), holder);
  v1::ReleaseLockRequest rel;
  rel.set_name("r/wait");
  rel.set_token(held.token());
  rel.set_session_id(holder);
  v1::ReleaseLockResponse rr;
  ASSERT_TRUE(t.locks->Release(Context().get(), rel, &rr).ok());
  v1::AcquireLockRequest w;
  w.set_name("r/wait");
  w.set_session_id(waiter);
  w.set_request_id("w-1");
  v1::AcquireLockResponse r;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), w, &r).ok());
  EXPECT_GT(r.token(), held.token());
}

TEST(RestartTest, ATimerScheduledBeforeTheRestartFiresOnceAfterIt) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t;
  v1::ScheduleTimerRequest sched;
  sched.set_name("r/timer");
  *sched.mutable_after() = Millis(300);
  auto* put = sched.mutable_action()->mutable_put();
  put->set_queue("r/fired");
  put->mutable_item()->set_text("tick");
  v1::ScheduleTimerResponse sr;
  ASSERT_TRUE(t.timers->Schedule(Context().get(), sched, &sr).ok());
  t.Restart();
  v1::GetRequest get;
  get.set_name("r/fired");
  *get.mutable_ttl() = Millis(60'000);
  *get.mutable_timeout() = Millis(5'000);
  v1::GetResponse got;
  grpc::Status st = t.queues->Get(Context().get(), get, &got);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(got.items(0).text(), "tick");
  // Exactly once, also across another restart.
  t.Restart();
  *get.mutable_timeout() = Millis(500);
  v1::GetResponse none;
  EXPECT_EQ(t.queues->Get(Context().get(), get, &none).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(RestartTest, ASecondServerCannotShareADataDirectory) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = TestServer::DefaultOptions();
  TestServer t(o);
  OpenSession(t);
  rpc::ServerOptions other = o;
  other.data_dir = t.data_dir();
  EXPECT_EQ(rpc::Server::Start(other).status().code(), absl::StatusCode::kFailedPrecondition)
      << "a second server on the same data directory";
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

// Also: a Start that fails after the gRPC server was built returns its error
// (it used to hang in shutdown, or crash, instead).
TEST(RestartTest, ADataDirectoryKeepsItsShardCount) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  std::string dir = (std::filesystem::temp_directory_path() / "baton-shards-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.data_dir = dir;
  {
    TestServer t(o);
    OpenSession(t);
  }
  rpc::ServerOptions other = o;
  other.shards = o.shards + 1;
  auto s = rpc::Server::Start(other);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("--shards 2"), std::string::npos) << s.status();
  // The same count still works, and finds the state.
  auto again = rpc::Server::Start(o);
  EXPECT_TRUE(again.ok()) << again.status();
  again->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace baton::testing
