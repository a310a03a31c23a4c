// Sessions: lifetime by TTL, keep-alives and streams; what ending one
// releases; broadcasts to other shards.
#include <gtest/gtest.h>

#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

uint64_t Open(Harness& h, Duration ttl) {
  std::optional<Result> r = ReplyTo(h.Apply(OpenSession{ttl, "t"}, 99), 99);
  EXPECT_TRUE(r->ok());
  return (*std::get<Boxed<SessionInfo>>(r->value)).session;
}

TEST(SessionTest, OpenBroadcastsSessionStartedBeforeReplying) {
  Harness h;
  auto out = h.Apply(OpenSession{10 * kSecond, "w"}, 1);
  ASSERT_EQ(out.size(), 2u);
  ASSERT_TRUE(std::holds_alternative<Broadcast>(out[0]));
  EXPECT_TRUE(std::holds_alternative<SessionStarted>(std::get<Broadcast>(out[0]).command));
  EXPECT_TRUE(std::holds_alternative<Reply>(out[1]));
}

TEST(SessionTest, SessionIdsNameTheirHomeShard) {
  Harness h({}, /*shard=*/2, /*shards=*/3);
  uint64_t id = Open(h, 10 * kSecond);
  EXPECT_EQ(ShardState::ShardOfSession(id, 3), 2u);
}

TEST(SessionTest, IdsFromANonceNameTheirHomeShardAndNeverCollide) {
  Harness h({}, /*shard=*/2, /*shards=*/3);
  auto open = [&](uint64_t nonce, uint64_t op) {
    std::optional<Result> r = ReplyTo(h.Apply(OpenSession{10 * kSecond, "n", "", nonce}, op), op);
    EXPECT_TRUE(r->ok());
    return (*std::get<Boxed<SessionInfo>>(r->value)).session;
  };
  uint64_t a = open(0x9e3779b97f4a7c15, 1);
  EXPECT_EQ(ShardState::ShardOfSession(a, 3), 2u);
  EXPECT_EQ(a / 3, 0x9e3779b97f4a7c15 / 3);  // the nonce's bits, not a counter
  uint64_t b = open(0x9e3779b97f4a7c15, 2);  // the same nonce: the next free id
  EXPECT_NE(a, b);
  EXPECT_EQ(ShardState::ShardOfSession(b, 3), 2u);
  uint64_t c = open(1, 3);  // would be id 2 - 1 + ... never 0
  EXPECT_NE(c, 0u);
  EXPECT_EQ(ShardState::ShardOfSession(c, 3), 2u);
  // Replaying the same commands makes the same ids.
  Harness replay({}, 2, 3);
  std::optional<Result> r =
      ReplyTo(replay.Apply(OpenSession{10 * kSecond, "n", "", 0x9e3779b97f4a7c15}, 1), 1);
  EXPECT_EQ((*std::get<Boxed<SessionInfo>>(r->value)).session, a);
}

TEST(SessionTest, AnOwnersSessionsLimitIsCheckedByItsHomeShard) {
  Harness h;
  auto open = [&](const std::string& owner, uint64_t op) {
    return ReplyTo(h.Apply(OpenSession{10 * kSecond, "", owner, 0, 2}, op), op);
  };
  uint64_t first = SessionOf(open("alice", 1));
  SessionOf(open("alice", 2));
  auto third = open("alice", 3);
  EXPECT_EQ(third->status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(third->status.message().find("principal 'alice' has 2 open sessions"),
            std::string::npos)
      << third->status;
  EXPECT_EQ(h.state.home_session_count(), 2u);
  EXPECT_TRUE(open("bob", 4)->ok());
  // Closing or expiring one makes room at once.
  h.Apply(CloseSession{first}, 5);
  EXPECT_TRUE(open("alice", 6)->ok());
  h.Advance(11 * kSecond);
  EXPECT_TRUE(open("alice", 7)->ok());
  EXPECT_TRUE(open("alice", 8)->ok());
  EXPECT_EQ(open("alice", 9)->status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(SessionTest, UnknownSessionIsNotFound) {
  Harness h;
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("a", 12345), 1), 1)->status.code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(ReplyTo(h.Apply(KeepAlive{12345}, 2), 2)->status.code(), absl::StatusCode::kNotFound);
}

TEST(SessionTest, ExpiryReleasesHoldingsAndAbortsWaits) {
  Harness h;
  uint64_t s1 = Open(h, 2 * kSecond);
  uint64_t s2 = Open(h, 60 * kSecond);
  h.Apply(LockCmd("a", s1), 1);
  h.Apply(LockCmd("b", s2), 2);
  h.Apply(LockCmd("b", s1), 3);  // s1 waits for b
  h.Apply(LockCmd("a", s2), 4);  // s2 waits for a
  auto out = h.Advance(2 * kSecond);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(ReplyTo(out, 4)->ok());  // a passed to s2
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("c", s1), 5), 5)->status.code(), absl::StatusCode::kNotFound);
}

TEST(SessionTest, KeepAliveExtendsTheSession) {
  Harness h;
  uint64_t s = Open(h, 2 * kSecond);
  h.Advance(kSecond + 900 * kMillisecond);
  EXPECT_TRUE(ReplyTo(h.Apply(KeepAlive{s}, 1), 1)->ok());
  h.Advance(kSecond + 900 * kMillisecond);
  EXPECT_TRUE(ReplyTo(h.Apply(KeepAlive{s}, 2), 2)->ok());
  h.Advance(2 * kSecond);
  EXPECT_EQ(ReplyTo(h.Apply(KeepAlive{s}, 3), 3)->status.code(), absl::StatusCode::kNotFound);
}

TEST(SessionTest, AnOpenStreamKeepsTheSessionAliveAndItsEndRestartsTheTtl) {
  Harness h;
  uint64_t s = Open(h, 2 * kSecond);
  h.Apply(AttachStream{s}, 1);
  h.Advance(60 * kSecond);
  EXPECT_TRUE(ReplyTo(h.Apply(DescribeSession{s}, 2), 2)->ok());
  h.Apply(DetachStream{s});
  h.Advance(kSecond);
  EXPECT_TRUE(ReplyTo(h.Apply(DescribeSession{s}, 3), 3)->ok());
  h.Advance(kSecond);
  EXPECT_EQ(ReplyTo(h.Apply(DescribeSession{s}, 4), 4)->status.code(), absl::StatusCode::kNotFound);
}

TEST(SessionTest, CloseReleasesEverythingAndBroadcastsTheEnd) {
  Harness h;
  uint64_t s = Open(h, 60 * kSecond);
  AcquirePermits sem = SemCmd("s", 2, 2, kForever, s);
  h.Apply(sem, 1);
  h.Apply(SemCmd("s", 2, 1), 2);
  auto out = h.Apply(CloseSession{s}, 3);
  EXPECT_TRUE(ReplyTo(out, 3)->ok());
  EXPECT_TRUE(ReplyTo(out, 2)->ok());
  bool broadcast = false;
  for (const Effect& e : out) {
    if (auto* b = std::get_if<Broadcast>(&e)) {
      broadcast = std::holds_alternative<SessionEnded>(b->command);
    }
  }
  EXPECT_TRUE(broadcast);
  EXPECT_EQ(h.state.session_ref_count(), 0u);
}

TEST(SessionTest, ASessionEndedOnAnotherShardReleasesItsHoldingsHere) {
  Harness h({}, 1, 2);
  h.Apply(SessionStarted{42});
  h.Apply(LockCmd("a", 42), 1);
  h.Apply(LockCmd("a", 0), 2);
  auto out = h.Apply(SessionEnded{42});
  EXPECT_TRUE(ReplyTo(out, 2)->ok());
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("b", 42), 3), 3)->status.code(), absl::StatusCode::kNotFound);
}

TEST(SessionTest, SessionLimitIsResourceExhausted) {
  Limits l;
  l.max_sessions = 1;
  Harness h(l);
  Open(h, kSecond * 10);
  EXPECT_EQ(ReplyTo(h.Apply(OpenSession{10 * kSecond, ""}, 1), 1)->status.code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace baton::apply
