// Events over real gRPC: Wait across clients and the Watch stream.
#include <thread>

#include "integration/test_server.h"

namespace baton::testing {
namespace {

TEST(EventIntegrationTest, SetReleasesAWaitingClient) {
  TestServer t;
  grpc::Status waited;
  v1::WaitEventResponse wr;
  std::thread th([&] {
    v1::WaitEventRequest w;
    w.set_name("warm");
    waited = t.events->Wait(Context().get(), w, &wr);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::SetEventRequest set;
  set.set_name("warm");
  v1::SetEventResponse sr;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &sr).ok());
  th.join();
  ASSERT_TRUE(waited.ok()) << waited.error_message();
  EXPECT_EQ(wr.outcome(), v1::GRANT_OUTCOME_AFTER_WAIT);
  EXPECT_EQ(sr.woken(), 1u);
}

TEST(EventIntegrationTest, WatchStreamsTheStateThenEveryChange) {
  TestServer t;
  grpc::ClientContext ctx;
  v1::WatchEventRequest req;
  req.set_name("flag");
  auto reader = t.events->Watch(&ctx, req);
  v1::EventChange change;
  ASSERT_TRUE(reader->Read(&change));
  EXPECT_EQ(change.state(), v1::EVENT_STATE_CLEAR);
  EXPECT_EQ(change.sequence(), 1u);
  v1::SetEventRequest set;
  set.set_name("flag");
  v1::SetEventResponse sr;
  ASSERT_TRUE(t.events->Set(Context().get(), set, &sr).ok());
  ASSERT_TRUE(reader->Read(&change));
  EXPECT_EQ(change.state(), v1::EVENT_STATE_SET);
  v1::ClearEventRequest clear;
  clear.set_name("flag");
  v1::ClearEventResponse cr;
  ASSERT_TRUE(t.events->Clear(Context().get(), clear, &cr).ok());
  ASSERT_TRUE(reader->Read(&change));
  EXPECT_EQ(change.state(), v1::EVENT_STATE_CLEAR);
  EXPECT_EQ(change.sequence(), 3u);
  ctx.TryCancel();
  reader->Finish();
  // The watcher is gone, so the clear event is reclaimed.
  v1::DescribeRequest d;
  d.set_name("flag");
  v1::DescribeResponse dr;
  grpc::Status st;
  for (int i = 0; i < 100; ++i) {
    st = t.admin->Describe(Context().get(), d, &dr);
    if (!st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace baton::testing
