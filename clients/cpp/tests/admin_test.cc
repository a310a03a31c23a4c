// Admin against a real batond: List by prefix and kind, Describe of holders.
#include "tests/test_env.h"

namespace baton::testing {
namespace {

TEST(AdminTest, ListsLiveResourcesByPrefixAndKind) {
  Client client = MustConnect();
  std::string prefix = Name("");
  auto lock = client.Lock(prefix + "lock").Acquire();
  auto permits = client.Semaphore(prefix + "sem", 2).Acquire();
  ASSERT_TRUE(lock.ok() && permits.ok());
  ASSERT_TRUE(client.Event(prefix + "event").Set().ok());

  auto all = client.Admin().List({.prefix = prefix});
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].name, prefix + "event");
  EXPECT_EQ((*all)[0].kind, ResourceKind::kEvent);
  EXPECT_EQ((*all)[1].name, prefix + "lock");
  EXPECT_EQ((*all)[1].holders, 1u);

  auto locks = client.Admin().List({.kind = ResourceKind::kSemaphore, .prefix = prefix});
  ASSERT_TRUE(locks.ok());
  ASSERT_EQ(locks->size(), 1u);
  EXPECT_EQ((*locks)[0].name, prefix + "sem");
  ASSERT_TRUE(client.Event(prefix + "event").Clear().ok());
}

TEST(AdminTest, DescribeShowsHoldersAndRequestIds) {
  Client client = MustConnect();
  std::string name = Name();
  auto held = client.Lock(name).Acquire(
      AcquireOptions{.lease = absl::Seconds(30), .request_id = "migrate-1"});
  ASSERT_TRUE(held.ok());
  auto info = client.Admin().Describe(name);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->kind, ResourceKind::kLock);
  ASSERT_EQ(info->holders.size(), 1u);
  EXPECT_EQ(info->holders[0].request_id, "migrate-1");
  EXPECT_EQ(info->holders[0].count, 1);
  EXPECT_TRUE(info->holders[0].expires_in.has_value());
  EXPECT_EQ(info->last_token, held->fence());
  EXPECT_EQ(client.Admin().Describe(Name("never-used")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace baton::testing
