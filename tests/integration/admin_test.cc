// Admin over real gRPC: List merges every shard in name order and pages.
#include "integration/test_server.h"

namespace baton::testing {
namespace {

TEST(AdminIntegrationTest, ListPagesThroughEveryShardInNameOrder) {
  TestServer t;
  std::vector<std::string> want;
  for (int i = 0; i < 25; ++i) {
    char name[32];
    snprintf(name, sizeof name, "jobs/%02d", i);
    want.push_back(name);
    v1::SetEventRequest set;
    set.set_name(name);
    v1::SetEventResponse sr;
    ASSERT_TRUE(t.events->Set(Context().get(), set, &sr).ok());
  }
  v1::AcquireLockRequest lock;
  lock.set_name("other/lock");
  *lock.mutable_ttl() = Millis(60'000);
  v1::AcquireLockResponse lr;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), lock, &lr).ok());

  std::vector<std::string> got;
  std::string token;
  int pages = 0;
  do {
    v1::ListRequest req;
    req.set_prefix("jobs/");
    req.set_page_size(10);
    req.set_page_token(token);
    v1::ListResponse resp;
    ASSERT_TRUE(t.admin->List(Context().get(), req, &resp).ok());
    for (const auto& r : resp.resources()) {
      got.push_back(r.name());
      EXPECT_EQ(r.kind(), v1::RESOURCE_KIND_EVENT);
    }
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(got, want);
  EXPECT_EQ(pages, 3);

  v1::ListRequest locks_only;
  locks_only.set_kind(v1::RESOURCE_KIND_LOCK);
  v1::ListResponse resp;
  ASSERT_TRUE(t.admin->List(Context().get(), locks_only, &resp).ok());
  ASSERT_EQ(resp.resources_size(), 1);
  EXPECT_EQ(resp.resources(0).name(), "other/lock");
  EXPECT_EQ(resp.resources(0).holders(), 1u);
}

TEST(AdminIntegrationTest, DescribeShowsTheHolderWithSessionAndToken) {
  TestServer t;
  uint64_t s = OpenSession(t);
  v1::AcquireLockRequest lock;
  lock.set_name("d/lock");
  lock.set_session_id(s);
  lock.set_request_id("r1");
  v1::AcquireLockResponse lr;
  ASSERT_TRUE(t.locks->Acquire(Context().get(), lock, &lr).ok());
  v1::DescribeRequest d;
  d.set_name("d/lock");
  v1::DescribeResponse dr;
  ASSERT_TRUE(t.admin->Describe(Context().get(), d, &dr).ok());
  EXPECT_EQ(dr.kind(), v1::RESOURCE_KIND_LOCK);
  ASSERT_EQ(dr.holders_size(), 1);
  EXPECT_EQ(dr.holders(0).session_id(), s);
  EXPECT_EQ(dr.holders(0).token(), lr.token());
  EXPECT_EQ(dr.holders(0).request_id(), "r1");
  EXPECT_TRUE(dr.holders(0).has_held_for());
  EXPECT_EQ(dr.last_token(), lr.token());
}

}  // namespace
}  // namespace baton::testing
