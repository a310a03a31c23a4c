// Durability over real gRPC: what a client was told survives a restart of
// the server on the same data directory, a wait pending at shutdown ends
// once (UNAVAILABLE) and its retry takes its place in line back, and
// replaying the log gives the same state. (kill -9 and damaged logs: tests/python/test_crash.py.)
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "integration/test_server.h"
#include "service/rpc/reshard.h"

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

// An acquire of "r/line" in the background: by `session`, with `request_id`
// (may be empty), giving up after `deadline_ms`.
class Acquirer {
 public:
  Acquirer(TestServer& t, uint64_t session, std::string request_id, int64_t deadline_ms = 20'000)
      : session_(session), request_id_(std::move(request_id)) {
    th_ = std::thread([this, &t, deadline_ms] {
      v1::AcquireLockRequest w;
      w.set_name("r/line");
      w.set_session_id(session_);
      w.set_request_id(request_id_);
      status_ = t.locks->Acquire(Context(deadline_ms).get(), w, &granted_);
      done_ = true;
    });
  }
  ~Acquirer() { Join(); }
  void Join() {
    if (th_.joinable()) th_.join();
  }
  bool done() const { return done_; }
  grpc::Status status() {
    Join();
    return status_;
  }
  uint64_t token() {
    Join();
    return granted_.token();
  }
  // Releases what it was granted.
  void Release(TestServer& t) {
    v1::ReleaseLockRequest rel;
    rel.set_name("r/line");
    rel.set_token(token());
    rel.set_session_id(session_);
    v1::ReleaseLockResponse rr;
    grpc::Status st = t.locks->Release(Context().get(), rel, &rr);
    EXPECT_TRUE(st.ok()) << st.error_message();
  }

 private:
  uint64_t session_;
  std::string request_id_;
  std::thread th_;
  std::atomic<bool> done_{false};
  grpc::Status status_;
  v1::AcquireLockResponse granted_;
};

// Waits (bounded) until "r/line" has `n` waiters.
void AwaitWaiters(TestServer& t, uint32_t n) {
  for (int i = 0; i < 400 && Describe(t, "r/line").waiters() != n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(Describe(t, "r/line").waiters(), n);
}

// The promise: a wait pending at a restart ends once (UNAVAILABLE),
// and its retry with the same session and request_id takes its place in
// line back, ahead of anyone who came after it, whatever order the retries
// arrive in. A wait without a request_id cannot be claimed and is gone.
TEST(RestartTest, ARetryAfterARestartKeepsItsPlaceInLine) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  TestServer t;
  uint64_t holder = OpenSession(t, 60'000);
  uint64_t s1 = OpenSession(t, 60'000), s2 = OpenSession(t, 60'000), s3 = OpenSession(t, 60'000);
  Acquirer first(t, holder, "h");
  ASSERT_TRUE(first.status().ok());
  Acquirer w1(t, s1, "w-1");
  AwaitWaiters(t, 1);
  Acquirer w2(t, s2, "w-2");
  AwaitWaiters(t, 2);
  Acquirer anonymous(t, s3, "");
  AwaitWaiters(t, 3);

  t.Restart();

  for (Acquirer* a : {&w1, &w2, &anonymous}) {
    EXPECT_EQ(a->status().error_code(), grpc::StatusCode::UNAVAILABLE)
        << a->status().error_message();
  }
  // The two that can be claimed still stand in line.
  EXPECT_EQ(Describe(t, "r/line").waiters(), 2u);
  uint64_t s4 = OpenSession(t, 60'000);
  Acquirer newcomer(t, s4, "n-1");
  AwaitWaiters(t, 3);
  // The retries come back in the wrong order; each takes over its place.
  Acquirer w2again(t, s2, "w-2");
  Acquirer w1again(t, s1, "w-1");
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(Describe(t, "r/line").waiters(), 3u);

  first.Release(t);
  ASSERT_TRUE(w1again.status().ok()) << w1again.status().error_message();
  EXPECT_GT(w1again.token(), first.token());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(w2again.done());
  EXPECT_FALSE(newcomer.done());
  w1again.Release(t);
  ASSERT_TRUE(w2again.status().ok()) << w2again.status().error_message();
  EXPECT_FALSE(newcomer.done());
  w2again.Release(t);
  ASSERT_TRUE(newcomer.status().ok()) << newcomer.status().error_message();
  EXPECT_GT(newcomer.token(), w2again.token());
}

// An orphan that nobody claims: granted while its client is away, the
// grant is rolled back when the grace ends, and the next in line gets the
// lock then.
TEST(RestartTest, AGrantNobodyClaimsIsRolledBackAfterTheGrace) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.orphan_grace = 2 * kSecond;  // the steps below take well under that
  TestServer t(o);
  uint64_t holder = OpenSession(t, 60'000), gone = OpenSession(t, 60'000);
  Acquirer first(t, holder, "h");
  ASSERT_TRUE(first.status().ok());
  Acquirer orphan(t, gone, "o-1");
  AwaitWaiters(t, 1);
  t.Restart();
  EXPECT_EQ(orphan.status().error_code(), grpc::StatusCode::UNAVAILABLE);
  uint64_t s = OpenSession(t, 60'000);
  Acquirer next(t, s, "n-1");
  AwaitWaiters(t, 2);
  first.Release(t);  // granted to the orphan, whose client never comes back
  v1::DescribeResponse held = Describe(t, "r/line");
  ASSERT_EQ(held.holders_size(), 1);
  EXPECT_EQ(held.holders(0).session_id(), gone);
  ASSERT_TRUE(next.status().ok()) << next.status().error_message();
  v1::DescribeResponse d = Describe(t, "r/line");
  ASSERT_EQ(d.holders_size(), 1);
  EXPECT_EQ(d.holders(0).session_id(), s);
}

// Declarations last: an idle semaphore keeps its capacity and a drained
// queue its options, across a restart too, until deleted.
TEST(RestartTest, IdleDeclarationsSurviveARestartUntilDeleted) {
  TestServer t;
  v1::AcquireSemaphoreRequest acq;
  acq.set_name("r/sem");
  acq.set_capacity(3);
  *acq.mutable_ttl() = Millis(60'000);
  v1::AcquireSemaphoreResponse held;
  ASSERT_TRUE(t.semaphores->Acquire(Context().get(), acq, &held).ok());
  v1::DeleteSemaphoreRequest del;
  del.set_name("r/sem");
  v1::DeleteSemaphoreResponse deleted;
  EXPECT_EQ(t.semaphores->Delete(Context().get(), del, &deleted).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::ReleaseSemaphoreRequest rel;
  rel.set_name("r/sem");
  rel.set_token(held.token());
  v1::ReleaseSemaphoreResponse released;
  ASSERT_TRUE(t.semaphores->Release(Context().get(), rel, &released).ok());
  v1::PutRequest put;
  put.set_name("r/lifo");
  put.mutable_options()->set_order(v1::QUEUE_ORDER_LIFO);
  put.mutable_options()->set_maxsize(2);
  put.add_items()->set_text("a");
  v1::PutResponse pr;
  ASSERT_TRUE(t.queues->Put(Context().get(), put, &pr).ok());
  v1::GetRequest get;
  get.set_name("r/lifo");
  *get.mutable_ttl() = Millis(60'000);
  v1::GetResponse got;
  grpc::Status gs = t.queues->Get(Context().get(), get, &got);
  ASSERT_TRUE(gs.ok()) << gs.error_message();
  v1::AckRequest ack;
  ack.set_name("r/lifo");
  ack.add_receipts(got.items(0).receipt());
  v1::AckResponse ar;
  ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());

  if (Durable()) t.Restart();

  v1::DescribeResponse d = Describe(t, "r/sem");
  EXPECT_EQ(d.capacity(), 3);
  EXPECT_EQ(d.available(), 3);
  d = Describe(t, "r/lifo");
  EXPECT_EQ(d.queue().order(), v1::QUEUE_ORDER_LIFO);
  EXPECT_EQ(d.queue().maxsize(), 2u);
  // Capacity 0 uses the declaration.
  acq.set_capacity(0);
  acq.set_count(2);
  ASSERT_TRUE(t.semaphores->Acquire(Context().get(), acq, &held).ok());
  EXPECT_EQ(held.available(), 1);
  rel.set_token(held.token());
  ASSERT_TRUE(t.semaphores->Release(Context().get(), rel, &released).ok());
  ASSERT_TRUE(t.semaphores->Delete(Context().get(), del, &deleted).ok());
  EXPECT_TRUE(deleted.deleted());
  v1::DescribeRequest dr;
  dr.set_name("r/sem");
  EXPECT_EQ(t.admin->Describe(Context().get(), dr, &d).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(t.semaphores->Delete(Context().get(), del, &deleted).ok());
  EXPECT_FALSE(deleted.deleted());
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

// `server` keeps session `session` alive.
void ExpectSessionAlive(rpc::Server& server, uint64_t session) {
  auto stub = v1::Sessions::NewStub(grpc::CreateChannel(absl::StrCat("127.0.0.1:", server.port()),
                                                        grpc::InsecureChannelCredentials()));
  v1::KeepAliveRequest ka;
  ka.set_session_id(session);
  v1::KeepAliveResponse kr;
  grpc::Status ks = stub->KeepAlive(Context().get(), ka, &kr);
  EXPECT_TRUE(ks.ok()) << ks.error_message();
}

// A directory made by a server with 2 shards, holding one session.
std::string DirectoryWithASession(uint64_t* session) {
  std::string dir = (std::filesystem::temp_directory_path() / "baton-shards-XXXXXX").string();
  EXPECT_NE(mkdtemp(dir.data()), nullptr);
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.data_dir = dir;
  o.shards = 2;
  TestServer t(o);
  *session = OpenSession(t, 600'000);
  return dir;
}

// A data directory restarted with another shard count is re-sharded (the
// state itself is covered by SnapshotTest): the session is still there. A
// second server on it is refused while the first runs, whatever its count.
TEST(RestartTest, ADataDirectoryRestartedWithAnotherShardCountKeepsItsState) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  uint64_t session = 0;
  std::string dir = DirectoryWithASession(&session);
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.data_dir = dir;
  o.shards = 2;
  rpc::ServerOptions other = o;
  other.shards = 3;
  auto s = rpc::Server::Start(other);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->shard_count(), 3u);
  auto refused = rpc::Server::Start(o);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("in use"), std::string::npos) << refused.status();
  ExpectSessionAlive(**s, session);
  s->reset();
  // And back to the first count.
  auto again = rpc::Server::Start(o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->shard_count(), 2u);
  again->reset();
  std::filesystem::remove_all(dir);
}

// A re-sharding that stopped after writing its split snapshot but before
// recording the new count (simulated: the marker file, and the old count
// written back): the next start, whatever its count, takes the snapshot's.
// One that stopped before the split (the marker alone) changed nothing.
TEST(RestartTest, AnInterruptedReshardingIsFinishedByTheNextStart) {
  if (!Durable()) GTEST_SKIP() << "in memory";
  uint64_t session = 0;
  std::string dir = DirectoryWithASession(&session);
  rpc::ServerOptions o = TestServer::DefaultOptions();
  o.data_dir = dir;
  o.shards = 2;
  auto interrupted = [&dir](int old_count) {
    ASSERT_TRUE(rpc::RecordShardCount(dir, old_count).ok());
    std::ofstream(dir + "/resharding") << "3\n";
  };
  rpc::ServerOptions three = o;
  three.shards = 3;
  // Before the split: nothing happened; the same count starts as usual.
  interrupted(2);
  {
    auto s = rpc::Server::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->restored_index(), 0u) << "no re-sharding ran";
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/resharding"));
  {
    auto s = rpc::Server::Start(three);
    ASSERT_TRUE(s.ok()) << s.status();
  }
  // After the split: a start with the old count takes the snapshot's (3),
  // and re-shards it to 2.
  interrupted(2);
  auto s = rpc::Server::Start(o);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->shard_count(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir + "/resharding"));
  ExpectSessionAlive(**s, session);
  std::ifstream recorded(dir + "/shards");
  int count = 0;
  recorded >> count;
  EXPECT_EQ(count, 2);
  s->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace baton::testing
