// Inspection: List in name order with kind, prefix and paging; Describe.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

std::vector<std::string> Names(const std::optional<Result>& r) {
  std::vector<std::string> out;
  for (const auto& s : std::get<ResourceList>(r->value).resources) out.push_back(s.name);
  return out;
}

TEST(AdminTest, ListFiltersByKindAndPrefixInNameOrder) {
  Harness h;
  h.Apply(LockCmd("app/b"), 1);
  h.Apply(LockCmd("app/a"), 2);
  h.Apply(SetEvent{"app/e"}, 3);
  h.Apply(LockCmd("other"), 4);
  ListResources all{std::nullopt, "app/", "", 100};
  EXPECT_EQ(Names(ReplyTo(h.Apply(all, 5), 5)),
            (std::vector<std::string>{"app/a", "app/b", "app/e"}));
  ListResources locks{Kind::kLock, "", "", 100};
  EXPECT_EQ(Names(ReplyTo(h.Apply(locks, 6), 6)),
            (std::vector<std::string>{"app/a", "app/b", "other"}));
}

TEST(AdminTest, ListPagesAfterAName) {
  Harness h;
  for (const char* n : {"a", "b", "c", "d"}) h.Apply(LockCmd(n), 1);
  std::optional<Result> p1 = ReplyTo(h.Apply(ListResources{std::nullopt, "", "", 2}, 2), 2);
  EXPECT_EQ(Names(p1), (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(std::get<ResourceList>(p1->value).more);
  std::optional<Result> p2 = ReplyTo(h.Apply(ListResources{std::nullopt, "", "b", 2}, 3), 3);
  EXPECT_EQ(Names(p2), (std::vector<std::string>{"c", "d"}));
  EXPECT_FALSE(std::get<ResourceList>(p2->value).more);
}

TEST(AdminTest, DescribeShowsHoldersAndWaiters) {
  Harness h;
  h.Apply(SessionStarted{7});
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a", 7), 1), 1));
  h.Advance(kSecond);
  h.Apply(LockCmd("a"), 2);
  h.Advance(kSecond);
  std::optional<Result> r = ReplyTo(h.Apply(DescribeResource{"a"}, 3), 3);
  ASSERT_TRUE(r->ok());
  const auto& info = *std::get<Boxed<ResourceInfo>>(r->value);
  ASSERT_EQ(info.holders.size(), 1u);
  EXPECT_EQ(info.holders[0].token, t);
  EXPECT_EQ(info.holders[0].session, 7u);
  EXPECT_EQ(info.holders[0].held_for, 2 * kSecond);
  EXPECT_EQ(info.holders[0].expires_in, kForever);
  EXPECT_EQ(info.waiters, 1u);
  EXPECT_EQ(info.oldest_wait, kSecond);
}

TEST(AdminTest, DescribeOfAnUnknownNameIsNotFound) {
  Harness h;
  EXPECT_EQ(ReplyTo(h.Apply(DescribeResource{"x"}, 1), 1)->status.code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace baton::apply
