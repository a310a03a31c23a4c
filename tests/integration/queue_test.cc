// Queues, futures, barriers and conditions over real gRPC on loopback.
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/test_server.h"

namespace baton::testing {
namespace {

v1::PutRequest PutText(const std::string& name, std::vector<std::string> texts) {
  v1::PutRequest req;
  req.set_name(name);
  for (auto& t : texts) req.add_items()->set_text(t);
  return req;
}

TEST(QueueIntegrationTest, GetBlocksUntilAPutThenAckFinishesAndJoinReturns) {
  TestServer t;
  uint64_t session = OpenSession(t);
  grpc::Status got_status;
  v1::GetResponse got;
  std::thread consumer([&] {
    v1::GetRequest g;
    g.set_name("jobs");
    g.set_session_id(session);
    got_status = t.queues->Get(Context().get(), g, &got);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::PutResponse put;
  ASSERT_TRUE(t.queues->Put(Context().get(), PutText("jobs", {"resize 42.png"}), &put).ok());
  consumer.join();
  ASSERT_TRUE(got_status.ok()) << got_status.error_message();
  ASSERT_EQ(got.items_size(), 1);
  EXPECT_EQ(got.items(0).text(), "resize 42.png");
  EXPECT_EQ(got.outcome(), v1::GRANT_OUTCOME_AFTER_WAIT);

  grpc::Status joined;
  std::thread joiner([&] {
    v1::JoinRequest j;
    j.set_name("jobs");
    v1::JoinResponse jr;
    joined = t.queues->Join(Context().get(), j, &jr);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::AckRequest ack;
  ack.set_name("jobs");
  ack.add_receipts(got.items(0).receipt());
  v1::AckResponse ar;
  ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());
  EXPECT_EQ(ar.unfinished(), 0u);
  joiner.join();
  EXPECT_TRUE(joined.ok()) << joined.error_message();
}

TEST(QueueIntegrationTest, ACancelledGetLosesNoItem) {
  TestServer t;
  // Park a Get, cancel it, then put: the item must go to the next getter.
  {
    grpc::ClientContext ctx;
    v1::GetRequest g;
    g.set_name("q");
    *g.mutable_ttl() = Millis(30'000);
    v1::GetResponse r;
    std::thread cancel([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ctx.TryCancel();
    });
    grpc::Status s = t.queues->Get(&ctx, g, &r);
    cancel.join();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED);
  }
  v1::PutResponse put;
  ASSERT_TRUE(t.queues->Put(Context().get(), PutText("q", {"x"}), &put).ok());
  v1::GetRequest g;
  g.set_name("q");
  *g.mutable_ttl() = Millis(30'000);
  *g.mutable_timeout() = Millis(0);
  v1::GetResponse r;
  grpc::Status s = t.queues->Get(Context().get(), g, &r);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(r.items(0).text(), "x");
}

TEST(QueueIntegrationTest, AGetRetriedWithItsRequestIdLearnsWhatItHolds) {
  TestServer t;
  uint64_t session = OpenSession(t);
  v1::PutResponse put;
  ASSERT_TRUE(t.queues->Put(Context().get(), PutText("iq/replay", {"a", "b"}), &put).ok());
  v1::GetRequest get;
  get.set_name("iq/replay");
  get.set_session_id(session);
  get.set_request_id("get-7");
  v1::GetResponse first;
  ASSERT_TRUE(t.queues->Get(Context().get(), get, &first).ok());
  ASSERT_EQ(first.items_size(), 1);
  // As if the first reply was lost: the retry (try once) gets the same item.
  get.mutable_timeout()->set_seconds(0);
  v1::GetResponse again;
  ASSERT_TRUE(t.queues->Get(Context().get(), get, &again).ok());
  ASSERT_EQ(again.items_size(), 1);
  EXPECT_EQ(again.items(0).receipt(), first.items(0).receipt());
  EXPECT_EQ(again.items(0).text(), "a");
  EXPECT_EQ(again.outcome(), v1::GRANT_OUTCOME_REPLAYED);
  // A request_id over the limit is bad input.
  get.set_request_id(std::string(200, 'x'));
  v1::GetResponse bad;
  EXPECT_EQ(t.queues->Get(Context().get(), get, &bad).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(QueueIntegrationTest, BadInputIsInvalidArgument) {
  TestServer t;
  v1::PutResponse put;
  EXPECT_EQ(t.queues->Put(Context().get(), PutText("q", {}), &put).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetRequest g;
  g.set_name("q");
  v1::GetResponse r;
  EXPECT_EQ(t.queues->Get(Context().get(), g, &r).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // no owner
  g.set_max_items(5000);
  *g.mutable_ttl() = Millis(1000);
  EXPECT_EQ(t.queues->Get(Context().get(), g, &r).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::PutRequest big = PutText("small", {std::string(100, 'x')});
  big.mutable_options()->set_max_item_bytes(10);
  EXPECT_EQ(t.queues->Put(Context().get(), big, &put).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::AckRequest ack;
  ack.set_name("q");
  v1::AckResponse ar;
  EXPECT_EQ(t.queues->Ack(Context().get(), ack, &ar).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::GetRequest many_acks;
  many_acks.set_name("q");
  *many_acks.mutable_ttl() = Millis(1000);
  for (uint64_t i = 1; i <= 1001; ++i) many_acks.add_ack(i);
  EXPECT_EQ(t.queues->Get(Context().get(), many_acks, &r).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(QueueIntegrationTest, AcksRideOnTheNextGet) {
  TestServer t;
  uint64_t session = OpenSession(t);
  v1::PutResponse put;
  ASSERT_TRUE(t.queues->Put(Context().get(), PutText("ride", {"a", "b", "c", "d"}), &put).ok());
  v1::GetRequest g;
  g.set_name("ride");
  g.set_session_id(session);
  g.set_max_items(2);
  v1::GetResponse first;
  ASSERT_TRUE(t.queues->Get(Context().get(), g, &first).ok());
  ASSERT_EQ(first.items_size(), 2);
  for (const auto& d : first.items()) g.add_ack(d.receipt());
  g.add_ack(first.items(0).receipt());  // twice: the second is not in flight any more
  v1::GetResponse second;
  ASSERT_TRUE(t.queues->Get(Context().get(), g, &second).ok());
  ASSERT_EQ(second.items_size(), 2);
  EXPECT_EQ(second.items(0).text(), "c");
  EXPECT_EQ(second.acked(), 2u);
  ASSERT_EQ(second.ack_failed_size(), 1);
  EXPECT_EQ(second.ack_failed(0), first.items(0).receipt());
  // The last acks ride on a Get that finds the queue empty: it fails, they stand.
  g.clear_ack();
  for (const auto& d : second.items()) g.add_ack(d.receipt());
  *g.mutable_timeout() = Millis(0);
  v1::GetResponse empty;
  EXPECT_EQ(t.queues->Get(Context().get(), g, &empty).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::AckRequest again;
  again.set_name("ride");
  again.add_receipts(second.items(0).receipt());
  v1::AckResponse ar;
  EXPECT_EQ(t.queues->Ack(Context().get(), again, &ar).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // acknowledged already
  v1::JoinRequest j;
  j.set_name("ride");
  *j.mutable_timeout() = Millis(0);
  v1::JoinResponse jr;
  EXPECT_TRUE(t.queues->Join(Context().get(), j, &jr).ok());  // nothing unfinished
}

TEST(FutureIntegrationTest, ManyAwaitersGetOneResult) {
  TestServer t;
  std::vector<std::thread> awaiters;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    awaiters.emplace_back([&] {
      v1::AwaitFutureRequest a;
      a.set_name("report");
      v1::AwaitFutureResponse r;
      if (t.futures->Await(Context().get(), a, &r).ok() && r.text() == "done") ++ok;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  v1::SetResultRequest set;
  set.set_name("report");
  set.set_text("done");
  v1::SetResultResponse sr;
  ASSERT_TRUE(t.futures->SetResult(Context().get(), set, &sr).ok());
  for (auto& th : awaiters) th.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(t.futures->SetResult(Context().get(), set, &sr).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST(BarrierIntegrationTest, PartiesLeaveTogetherWithDistinctIndices) {
  TestServer t;
  std::vector<std::thread> parties;
  std::mutex mu;
  std::set<uint32_t> indices;
  for (int i = 0; i < 3; ++i) {
    parties.emplace_back([&] {
      v1::BarrierWaitRequest w;
      w.set_name("checkpoint");
      w.set_parties(3);
      v1::BarrierWaitResponse r;
      grpc::Status s = t.barriers->Wait(Context().get(), w, &r);
      EXPECT_TRUE(s.ok()) << s.error_message();
      std::lock_guard<std::mutex> l(mu);
      indices.insert(r.index());
    });
  }
  for (auto& th : parties) th.join();
  EXPECT_EQ(indices, (std::set<uint32_t>{0, 1, 2}));
}

TEST(ConditionIntegrationTest, NotifyWakesAWaiterWhoHoldsTheLockAgain) {
  TestServer t;
  uint64_t a = OpenSession(t), b = OpenSession(t);
  auto acquire = [&](uint64_t session) {
    v1::AcquireLockRequest req;
    req.set_name("orders");
    req.set_session_id(session);
    v1::AcquireLockResponse resp;
    EXPECT_TRUE(t.locks->Acquire(Context().get(), req, &resp).ok());
    return resp.token();
  };
  uint64_t ta = acquire(a);
  v1::ConditionWaitResponse waited;
  grpc::Status ws;
  std::thread waiter([&] {
    v1::ConditionWaitRequest w;
    w.set_lock("orders");
    w.set_condition("non-empty");
    w.set_token(ta);
    w.set_session_id(a);
    ws = t.conditions->Wait(Context().get(), w, &waited);
  });
  uint64_t tb = acquire(b);  // possible only because Wait released the lock
  v1::NotifyRequest n;
  n.set_lock("orders");
  n.set_condition("non-empty");
  n.set_token(tb);
  n.set_session_id(b);
  v1::NotifyResponse nr;
  ASSERT_TRUE(t.conditions->Notify(Context().get(), n, &nr).ok());
  EXPECT_EQ(nr.woken(), 1u);
  v1::ReleaseLockRequest rel;
  rel.set_name("orders");
  rel.set_token(tb);
  rel.set_session_id(b);
  v1::ReleaseLockResponse rr;
  ASSERT_TRUE(t.locks->Release(Context().get(), rel, &rr).ok());
  waiter.join();
  ASSERT_TRUE(ws.ok()) << ws.error_message();
  EXPECT_EQ(waited.outcome(), v1::CONDITION_OUTCOME_NOTIFIED);
  EXPECT_GT(waited.token(), tb);
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST(TimerIntegrationTest, ATimerSetsAnEventThatAClientWaitsFor) {
  TestServer t;
  v1::ScheduleTimerRequest s;
  s.set_name("warmup-done");
  *s.mutable_after() = Millis(150);
  s.mutable_action()->mutable_set_event()->set_name("cache-warm");
  v1::ScheduleTimerResponse sr;
  ASSERT_TRUE(t.timers->Schedule(Context().get(), s, &sr).ok());
  v1::WaitEventRequest w;
  w.set_name("cache-warm");
  v1::WaitEventResponse wr;
  grpc::Status ws = t.events->Wait(Context(5'000).get(), w, &wr);
  ASSERT_TRUE(ws.ok()) << ws.error_message();
  EXPECT_EQ(wr.outcome(), v1::GRANT_OUTCOME_AFTER_WAIT);
  v1::DescribeRequest d;
  d.set_name("warmup-done");
  v1::DescribeResponse dr;
  ASSERT_TRUE(t.admin->Describe(Context().get(), d, &dr).ok());
  EXPECT_EQ(dr.timer().fired(), 1u);
  EXPECT_EQ(dr.timer().action(), "set_event cache-warm");
}

TEST(TimerIntegrationTest, APeriodicTimerPutsItemsUntilCancelled) {
  TestServer t;
  v1::ScheduleTimerRequest s;
  s.set_name("tick");
  *s.mutable_after() = Millis(0);
  *s.mutable_every() = Millis(50);
  s.mutable_action()->mutable_put()->set_queue("ticks");
  s.mutable_action()->mutable_put()->mutable_item()->set_text("tick");
  v1::ScheduleTimerResponse sr;
  ASSERT_TRUE(t.timers->Schedule(Context().get(), s, &sr).ok());
  for (int i = 0; i < 3; ++i) {
    v1::GetRequest g;
    g.set_name("ticks");
    *g.mutable_ttl() = Millis(10'000);
    v1::GetResponse gr;
    grpc::Status st = t.queues->Get(Context(5'000).get(), g, &gr);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(gr.items(0).text(), "tick");
  }
  v1::CancelTimerRequest c;
  c.set_name("tick");
  v1::CancelTimerResponse cr;
  ASSERT_TRUE(t.timers->Cancel(Context().get(), c, &cr).ok());
  EXPECT_TRUE(cr.cancelled());
  EXPECT_GE(cr.fired(), 3u);
}

TEST(TimerIntegrationTest, BadSchedulesAreInvalidArgument) {
  TestServer t;
  v1::ScheduleTimerRequest s;
  s.set_name("bad");
  v1::ScheduleTimerResponse sr;
  *s.mutable_after() = Millis(10);
  EXPECT_EQ(t.timers->Schedule(Context().get(), s, &sr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // no action
  s.mutable_action()->mutable_set_event()->set_name("not a name");
  EXPECT_EQ(t.timers->Schedule(Context().get(), s, &sr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  s.mutable_action()->mutable_set_event()->set_name("ok");
  s.mutable_at()->set_seconds(1);
  EXPECT_EQ(t.timers->Schedule(Context().get(), s, &sr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // both after and at
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST(TaskIntegrationTest, AWorkerRunsATaskAndAnAwaiterGetsItsResult) {
  TestServer t;
  v1::SubmitTaskRequest s;
  s.set_queue("thumbnails");
  s.set_text("42.png");
  v1::SubmitTaskResponse sr;
  ASSERT_TRUE(t.tasks->Submit(Context().get(), s, &sr).ok());
  EXPECT_EQ(sr.task_id().rfind("thumbnails#", 0), 0u);

  v1::TaskOutcome outcome;
  grpc::Status as;
  std::thread awaiter([&] {
    v1::AwaitTaskRequest a;
    a.set_task_id(sr.task_id());
    as = t.tasks->Await(Context().get(), a, &outcome);
  });
  uint64_t worker = OpenSession(t);
  v1::TakeTaskRequest take;
  take.set_queue("thumbnails");
  take.set_session_id(worker);
  v1::TakeTaskResponse taken;
  ASSERT_TRUE(t.tasks->Take(Context().get(), take, &taken).ok());
  EXPECT_EQ(taken.text(), "42.png");
  v1::TaskHeartbeatRequest hb;
  hb.set_task_id(taken.task_id());
  hb.set_attempt(taken.attempt());
  v1::TaskHeartbeatResponse hr;
  ASSERT_TRUE(t.tasks->Heartbeat(Context().get(), hb, &hr).ok());
  EXPECT_FALSE(hr.cancelled());
  v1::CompleteTaskRequest done;
  done.set_task_id(taken.task_id());
  done.set_attempt(taken.attempt());
  done.set_text("thumb-42.png");
  v1::CompleteTaskResponse dr;
  ASSERT_TRUE(t.tasks->Complete(Context().get(), done, &dr).ok());
  EXPECT_EQ(dr.state(), v1::TASK_STATE_SUCCEEDED);
  awaiter.join();
  ASSERT_TRUE(as.ok()) << as.error_message();
  EXPECT_EQ(outcome.text(), "thumb-42.png");
}

TEST(TaskIntegrationTest, AGivenBackTaskRunsAgainWithoutSpendingItsOnlyAttempt) {
  TestServer t;
  v1::SubmitTaskRequest s;
  s.set_queue("giveback");
  s.set_text("job");
  s.set_max_attempts(1);
  v1::SubmitTaskResponse sr;
  ASSERT_TRUE(t.tasks->Submit(Context().get(), s, &sr).ok());
  uint64_t worker = OpenSession(t);
  v1::TakeTaskRequest take;
  take.set_queue("giveback");
  take.set_session_id(worker);
  v1::TakeTaskResponse first;
  ASSERT_TRUE(t.tasks->Take(Context().get(), take, &first).ok());
  v1::CompleteTaskRequest back;
  back.set_task_id(first.task_id());
  back.set_attempt(first.attempt());
  back.set_give_back(true);
  back.set_text("a result");
  v1::CompleteTaskResponse br;
  EXPECT_EQ(t.tasks->Complete(Context().get(), back, &br).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // give_back takes no result
  back.clear_text();
  ASSERT_TRUE(t.tasks->Complete(Context().get(), back, &br).ok());
  EXPECT_EQ(br.state(), v1::TASK_STATE_PENDING);
  v1::TakeTaskResponse second;
  ASSERT_TRUE(t.tasks->Take(Context().get(), take, &second).ok());
  EXPECT_EQ(second.task_id(), first.task_id());
  EXPECT_EQ(second.attempt(), first.attempt() + 1);
  EXPECT_EQ(t.tasks->Complete(Context().get(), back, &br).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // the old attempt is over
}

TEST(TaskIntegrationTest, AWorkerWhoseSessionEndsLosesTheTaskToTheNextAttempt) {
  TestServer t;
  v1::SubmitTaskRequest s;
  s.set_queue("jobs");
  s.set_max_attempts(2);
  v1::SubmitTaskResponse sr;
  ASSERT_TRUE(t.tasks->Submit(Context().get(), s, &sr).ok());
  uint64_t first = OpenSession(t);
  v1::TakeTaskRequest take;
  take.set_queue("jobs");
  take.set_session_id(first);
  v1::TakeTaskResponse taken;
  ASSERT_TRUE(t.tasks->Take(Context().get(), take, &taken).ok());
  v1::CloseSessionRequest close;
  close.set_session_id(first);
  v1::CloseSessionResponse cr;
  ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  take.set_session_id(OpenSession(t));
  ASSERT_TRUE(t.tasks->Take(Context().get(), take, &taken).ok());
  EXPECT_EQ(taken.attempt(), 2u);
}

TEST(TaskIntegrationTest, BadTaskIdsAreInvalidArgument) {
  TestServer t;
  v1::AwaitTaskRequest a;
  a.set_task_id("no-hash");
  v1::TaskOutcome o;
  EXPECT_EQ(t.tasks->Await(Context().get(), a, &o).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  a.set_task_id("q#999");
  EXPECT_EQ(t.tasks->Await(Context().get(), a, &o).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::WaitTasksRequest w;
  w.add_task_ids("a#1");
  w.add_task_ids("b#2");
  v1::WaitTasksResponse wr;
  EXPECT_EQ(t.tasks->Wait(Context().get(), w, &wr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace baton::testing

namespace baton::testing {
namespace {

TEST(ConsumeIntegrationTest, AStreamGetsItemsWithinItsWindowAndLosesNoneWhenCancelled) {
  TestServer t;
  v1::PutRequest put;
  put.set_name("stream");
  for (int i = 0; i < 10; ++i) put.add_items()->set_text(absl::StrCat("item-", i));
  v1::PutResponse pr;
  ASSERT_TRUE(t.queues->Put(Context().get(), put, &pr).ok());

  uint64_t session = OpenSession(t);
  std::set<std::string> got;
  {
    grpc::ClientContext ctx;
    v1::ConsumeRequest req;
    req.set_name("stream");
    req.set_session_id(session);
    req.set_prefetch(3);
    auto reader = t.queues->Consume(&ctx, req);
    int received = 0;
    v1::ConsumeResponse msg;
    // Read a window's worth, ack it, read the next.
    std::vector<uint64_t> receipts;
    while (received < 3 && reader->Read(&msg)) {
      for (const auto& d : msg.items()) {
        got.insert(d.text());
        receipts.push_back(d.receipt());
        ++received;
      }
    }
    EXPECT_EQ(received, 3);
    v1::AckRequest ack;
    ack.set_name("stream");
    for (uint64_t r : receipts) ack.add_receipts(r);
    v1::AckResponse ar;
    ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());
    receipts.clear();
    while (received < 6 && reader->Read(&msg)) {
      for (const auto& d : msg.items()) {
        got.insert(d.text());
        receipts.push_back(d.receipt());
        ++received;
      }
    }
    EXPECT_EQ(received, 6);
    ack.clear_receipts();
    for (uint64_t r : receipts) ack.add_receipts(r);
    ASSERT_TRUE(t.queues->Ack(Context().get(), ack, &ar).ok());
    ctx.TryCancel();
    reader->Finish();
  }
  // Items written to the stream but never read stay in flight, owned by the
  // session (the server cannot know the client did not read them); ending
  // the session brings them back. The 4 items not received are then all in
  // the queue, and none of those received is.
  v1::CloseSessionRequest close;
  close.set_session_id(session);
  v1::CloseSessionResponse cr;
  ASSERT_TRUE(t.sessions->Close(Context().get(), close, &cr).ok());
  std::set<std::string> rest;
  for (int i = 0; i < 50 && rest.size() < 4; ++i) {
    v1::GetRequest g;
    g.set_name("stream");
    *g.mutable_ttl() = Millis(30'000);
    g.set_max_items(10);
    *g.mutable_timeout() = Millis(100);
    v1::GetResponse gr;
    if (!t.queues->Get(Context().get(), g, &gr).ok()) continue;
    for (const auto& d : gr.items()) rest.insert(d.text());
  }
  EXPECT_EQ(rest.size(), 4u);
  for (const auto& r : rest) EXPECT_FALSE(got.contains(r)) << r << " delivered twice";
}

}  // namespace
}  // namespace baton::testing
