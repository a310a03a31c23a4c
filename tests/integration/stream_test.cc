// The session stream (baton.v1.Stream/Connect) over real gRPC: the hello,
// operations answered in completion order, cancellation by id, batching, a
// broken stream, half-close, and the grace period of its session.
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/stream_client.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

using namespace std::chrono_literals;

v1::StreamHello NewSession(int64_t ttl_ms = 30'000) {
  v1::StreamHello hello;
  *hello.mutable_ttl() = Millis(ttl_ms);
  hello.set_label("stream-test");
  return hello;
}

v1::DescribeResponse Describe(TestServer& t, const std::string& name, grpc::Status* status) {
  v1::DescribeRequest req;
  req.set_name(name);
  v1::DescribeResponse resp;
  *status = t.admin->Describe(Context().get(), req, &resp);
  return resp;
}

TEST(StreamIntegrationTest, HelloOpensASessionThatOperationsActFor) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  auto welcome = s.Welcome();
  ASSERT_TRUE(welcome.has_value());
  EXPECT_NE(welcome->session_id(), 0u);
  EXPECT_FALSE(welcome->resumed());
  EXPECT_EQ(welcome->ttl().seconds(), 30);

  ASSERT_TRUE(s.Send(AcquireOp(1, "st/lock")));
  auto r = s.Await(1);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->code(), 0) << r->message();
  ASSERT_TRUE(r->has_acquire_lock());
  EXPECT_GT(r->acquire_lock().token(), 0u);

  // The lock is owned by the stream's session, which no operation named.
  grpc::Status st;
  auto d = Describe(t, "st/lock", &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(d.holders_size(), 1);
  EXPECT_EQ(d.holders(0).session_id(), welcome->session_id());

  // And the session is held open by the stream.
  v1::DescribeSessionRequest dreq;
  dreq.set_session_id(welcome->session_id());
  v1::DescribeSessionResponse dresp;
  ASSERT_TRUE(t.sessions->Describe(Context().get(), dreq, &dresp).ok());
  EXPECT_EQ(dresp.open_streams(), 1u);
  EXPECT_FALSE(dresp.has_expires_in());
}

TEST(StreamIntegrationTest, AnswersComeInCompletionOrder) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  // 1 takes the lock, 2 waits for it, 3 releases it, which grants 2.
  ASSERT_TRUE(s.Send({AcquireOp(1, "st/order"), AcquireOp(2, "st/order")}));
  auto first = s.Await(1);
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->code(), 0);
  EXPECT_FALSE(s.Await(2, 200ms).has_value());
  ASSERT_TRUE(s.Send(ReleaseOp(3, "st/order", first->acquire_lock().token())));
  auto released = s.Await(3);
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ(released->code(), 0);
  EXPECT_TRUE(released->release_lock().handed_off());
  auto second = s.Await(2);
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->code(), 0) << second->message();
  EXPECT_GT(second->acquire_lock().token(), first->acquire_lock().token());
  EXPECT_EQ(second->acquire_lock().outcome(), v1::GRANT_OUTCOME_AFTER_WAIT);
}

TEST(StreamIntegrationTest, ResumingASessionKeepsWhatItHolds) {
  TestServer t;
  uint64_t session = 0;
  uint64_t token = 0;
  {
    StreamClient s(t.channel, NewSession(10'000));
    auto welcome = s.Welcome();
    ASSERT_TRUE(welcome.has_value());
    session = welcome->session_id();
    ASSERT_TRUE(s.Send(AcquireOp(1, "st/resume")));
    auto r = s.Await(1);
    ASSERT_TRUE(r.has_value());
    token = r->acquire_lock().token();
    s.Break();
    s.Finish();
  }
  grpc::Status st;
  auto d = Describe(t, "st/resume", &st);
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(d.holders_size(), 1);  // held through the grace period

  v1::StreamHello resume;
  resume.set_session_id(session);
  StreamClient again(t.channel, resume);
  auto welcome = again.Welcome();
  ASSERT_TRUE(welcome.has_value());
  EXPECT_TRUE(welcome->resumed());
  EXPECT_EQ(welcome->session_id(), session);
  ASSERT_TRUE(again.Send(ReleaseOp(2, "st/resume", token)));
  auto r = again.Await(2);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), 0) << r->message();
}

TEST(StreamIntegrationTest, TheSessionEndsOneTtlAfterTheStream) {
  TestServer t;
  {
    StreamClient s(t.channel, NewSession(1'000));
    ASSERT_TRUE(s.Welcome().has_value());
    ASSERT_TRUE(s.Send(AcquireOp(1, "st/grace")));
    ASSERT_TRUE(s.Await(1).has_value());
    // Longer than the TTL: the open stream keeps the session.
    std::this_thread::sleep_for(1500ms);
    grpc::Status st;
    Describe(t, "st/grace", &st);
    ASSERT_TRUE(st.ok());
    s.Break();
    s.Finish();
  }
  std::this_thread::sleep_for(1800ms);
  grpc::Status st;
  Describe(t, "st/grace", &st);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(StreamIntegrationTest, BadHellosEndTheStreamWithTheirStatus) {
  TestServer t;
  {
    v1::StreamHello unknown;
    unknown.set_session_id(424242);
    StreamClient s(t.channel, unknown);
    EXPECT_FALSE(s.Welcome().has_value());
    EXPECT_EQ(s.Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  {
    StreamClient s(t.channel, v1::StreamHello());  // neither session nor ttl
    EXPECT_FALSE(s.Welcome().has_value());
    grpc::Status st = s.Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("ttl"), std::string::npos) << st.error_message();
  }
  {
    // A hello again later is a client bug: the stream ends, its session
    // stays for its grace period.
    StreamClient s(t.channel, NewSession());
    ASSERT_TRUE(s.Welcome().has_value());
    v1::StreamRequest again;
    *again.mutable_hello() = NewSession();
    std::vector<v1::Operation> none;
    ASSERT_TRUE(s.Send(none));  // an empty message is fine
    grpc::ClientContext ctx;
    auto raw = v1::Stream::NewStub(t.channel)->Connect(&ctx);
    v1::StreamRequest first;
    *first.mutable_hello() = NewSession();
    ASSERT_TRUE(raw->Write(first));
    ASSERT_TRUE(raw->Write(again));
    v1::StreamResponse resp;
    ASSERT_TRUE(raw->Read(&resp));
    EXPECT_TRUE(resp.has_welcome());
    while (raw->Read(&resp)) {
    }
    EXPECT_EQ(raw->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
}

TEST(StreamIntegrationTest, BadOperationsGetTheirOwnStatusAndTheStreamGoesOn) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  v1::Operation empty;
  empty.set_id(1);
  v1::Operation bad_name = AcquireOp(2, "has space");
  ASSERT_TRUE(s.Send({empty, bad_name}));
  auto r1 = s.Await(1);
  auto r2 = s.Await(2);
  ASSERT_TRUE(r1.has_value() && r2.has_value());
  EXPECT_EQ(r1->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(r2->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_FALSE(r2->message().empty());

  // An id still pending cannot be reused; the first operation is unharmed.
  ASSERT_TRUE(s.Send(WaitEventOp(7, "st/ev")));
  ASSERT_TRUE(s.Send(WaitEventOp(7, "st/ev")));
  auto dup = s.Await(7);
  ASSERT_TRUE(dup.has_value());
  EXPECT_EQ(dup->code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  v1::SetEventRequest set;
  set.set_name("st/ev");
  v1::SetEventResponse set_resp;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &set_resp).ok());
  EXPECT_EQ(set_resp.woken(), 1u);
  for (int i = 0; i < 100 && s.AnswersTo(7) < 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(s.AnswersTo(7), 2);
}

TEST(StreamIntegrationTest, CancelEndsAPendingWait) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  ASSERT_TRUE(s.Send(WaitEventOp(1, "st/cancel")));
  EXPECT_FALSE(s.Await(1, 100ms).has_value());
  ASSERT_TRUE(s.Cancel(1));
  auto r = s.Await(1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), static_cast<int>(grpc::StatusCode::CANCELLED));
  // Cancelling an unknown or finished id is ignored.
  ASSERT_TRUE(s.Cancel(1));
  ASSERT_TRUE(s.Cancel(99));
  v1::SetEventRequest set;
  set.set_name("st/cancel");
  v1::SetEventResponse set_resp;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &set_resp).ok());
  EXPECT_EQ(set_resp.woken(), 0u);
  EXPECT_EQ(s.AnswersTo(1), 1);
}

TEST(StreamIntegrationTest, ABrokenStreamEndsItsWaits) {
  TestServer t;
  uint64_t holder = OpenSession(t);
  v1::AcquireLockRequest req;
  req.set_name("st/broken");
  req.set_session_id(holder);
  v1::AcquireLockResponse held;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), req, &held).ok());
  {
    StreamClient s(t.channel, NewSession());
    ASSERT_TRUE(s.Welcome().has_value());
    std::vector<v1::Operation> ops;
    for (uint64_t id = 1; id <= 50; ++id) ops.push_back(AcquireOp(id, "st/broken"));
    ASSERT_TRUE(s.Send(ops));
    grpc::Status st;
    for (int i = 0; i < 100; ++i) {
      if (Describe(t, "st/broken", &st).waiters() == 50) break;
      std::this_thread::sleep_for(10ms);
    }
    ASSERT_EQ(Describe(t, "st/broken", &st).waiters(), 50u);
    s.Break();
    s.Finish();
  }
  grpc::Status st;
  for (int i = 0; i < 100; ++i) {
    if (Describe(t, "st/broken", &st).waiters() == 0) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(Describe(t, "st/broken", &st).waiters(), 0u);
  v1::ReleaseLockRequest rel;
  rel.set_name("st/broken");
  rel.set_token(held.token());
  rel.set_session_id(holder);
  v1::ReleaseLockResponse rel_resp;
  ASSERT_TRUE(t.locks->Release(Context().get(), rel, &rel_resp).ok());
  EXPECT_FALSE(rel_resp.handed_off());
}

TEST(StreamIntegrationTest, AfterHalfClosePendingOperationsStillFinish) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  ASSERT_TRUE(s.Send(WaitEventOp(1, "st/half")));
  ASSERT_TRUE(s.HalfClose());
  std::this_thread::sleep_for(100ms);
  v1::SetEventRequest set;
  set.set_name("st/half");
  v1::SetEventResponse set_resp;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &set_resp).ok());
  EXPECT_EQ(set_resp.woken(), 1u);
  auto r = s.Await(1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->code(), 0);
  EXPECT_TRUE(s.Finish().ok());
}

// Answers that become ready together leave together: one Set wakes 200
// waits of the stream at once, and their answers share a few messages. (Not
// answers of operations sent together: those are ready as the log commits
// them, in batches that depend on the machine's load.)
TEST(StreamIntegrationTest, ReadyAnswersTravelTogether) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  constexpr int kOps = 200;
  std::vector<v1::Operation> ops;
  for (int i = 1; i <= kOps; ++i) ops.push_back(WaitEventOp(i, "st/batch"));
  ASSERT_TRUE(s.Send(ops));
  v1::DescribeRequest d;
  d.set_name("st/batch");
  v1::DescribeResponse info;
  // NOT_FOUND until the first wait is applied.
  for (int i = 0; i < 500 && info.waiters() < kOps; ++i) {
    if (!t.admin->Describe(Context().get(), d, &info).ok()) info.Clear();
    if (info.waiters() < kOps) std::this_thread::sleep_for(10ms);
  }
  ASSERT_EQ(info.waiters(), static_cast<uint32_t>(kOps));
  int before = s.messages();
  v1::SetEventRequest set;
  set.set_name("st/batch");
  v1::SetEventResponse set_resp;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &set_resp).ok());
  EXPECT_EQ(set_resp.woken(), static_cast<uint32_t>(kOps));
  for (int i = 1; i <= kOps; ++i) ASSERT_TRUE(s.Await(i).has_value()) << i;
  EXPECT_LT(s.messages() - before, 5) << s.messages() - before;
}

TEST(StreamIntegrationTest, EveryKindWorksOnTheStream) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  std::vector<v1::Operation> ops(12);
  ops[0].mutable_acquire_semaphore()->set_name("st/all/sem");
  ops[0].mutable_acquire_semaphore()->set_capacity(2);
  ops[1].mutable_put()->set_name("st/all/q");
  ops[1].mutable_put()->add_items()->set_text("job");
  ops[2].mutable_get()->set_name("st/all/q");
  ops[3].mutable_set_result()->set_name("st/all/f");
  ops[3].mutable_set_result()->set_text("42");
  ops[4].mutable_await_future()->set_name("st/all/f");
  ops[5].mutable_submit_task()->set_queue("st/all/work");
  ops[6].mutable_wait_barrier()->set_name("st/all/b");
  ops[6].mutable_wait_barrier()->set_parties(1);
  ops[7].mutable_schedule_timer()->set_name("st/all/t");
  *ops[7].mutable_schedule_timer()->mutable_after() = Millis(60'000);
  ops[7].mutable_schedule_timer()->mutable_action()->mutable_set_event()->set_name("st/all/e");
  ops[8].mutable_list()->set_prefix("st/all/");
  ops[9].mutable_describe()->set_name("st/all/q");
  ops[10].mutable_describe_session();
  ops[11].mutable_clear_event()->set_name("st/all/e");
  for (size_t i = 0; i < ops.size(); ++i) ops[i].set_id(100 + i);
  ASSERT_TRUE(s.Send(ops));
  for (size_t i = 0; i < ops.size(); ++i) {
    auto r = s.Await(100 + i);
    ASSERT_TRUE(r.has_value()) << i;
    EXPECT_EQ(r->code(), 0) << i << ": " << r->message();
    EXPECT_EQ(static_cast<int>(r->result_case()), static_cast<int>(ops[i].op_case())) << i;
  }
  EXPECT_EQ(s.Await(104)->await_future().text(), "42");
  EXPECT_EQ(s.Await(102)->get().items(0).text(), "job");
  EXPECT_EQ(s.Await(110)->describe_session().session_id(), s.Welcome()->session_id());
}

// A consumer on the stream acknowledges on its next Get: one operation per
// batch of items, nothing left in flight.
TEST(StreamIntegrationTest, AcksRideOnTheNextGet) {
  TestServer t;
  StreamClient s(t.channel, NewSession());
  ASSERT_TRUE(s.Welcome().has_value());
  v1::Operation put;
  put.set_id(1);
  put.mutable_put()->set_name("st/ride");
  // Declared, so that it outlives being empty and Describe can show it.
  put.mutable_put()->mutable_options()->set_order(v1::QUEUE_ORDER_FIFO);
  for (int i = 0; i < 6; ++i) put.mutable_put()->add_items()->set_text(absl::StrCat("job ", i));
  ASSERT_TRUE(s.Send(put));
  ASSERT_EQ(s.Await(1)->code(), 0);
  std::vector<uint64_t> done;
  int got = 0;
  for (uint64_t id = 2; got < 6; ++id) {
    v1::Operation get;
    get.set_id(id);
    get.mutable_get()->set_name("st/ride");
    get.mutable_get()->set_max_items(4);
    for (uint64_t r : done) get.mutable_get()->add_ack(r);
    ASSERT_TRUE(s.Send(get));
    auto r = s.Await(id);
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->code(), 0) << r->message();
    EXPECT_EQ(r->get().acked(), done.size());
    EXPECT_EQ(r->get().ack_failed_size(), 0);
    done.clear();
    for (const auto& d : r->get().items()) done.push_back(d.receipt());
    got += r->get().items_size();
  }
  v1::Operation ack;
  ack.set_id(100);
  ack.mutable_ack()->set_name("st/ride");
  for (uint64_t r : done) ack.mutable_ack()->add_receipts(r);
  ASSERT_TRUE(s.Send(ack));
  ASSERT_EQ(s.Await(100)->code(), 0);
  grpc::Status st;
  auto d = Describe(t, "st/ride", &st);
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_TRUE(d.has_queue());
  EXPECT_EQ(d.queue().in_flight(), 0u);
  EXPECT_EQ(d.queue().size(), 0u);
}

}  // namespace
}  // namespace baton::testing
