// Principals in the state machine (Command::principal):
// - handles bound to the principal that got them: a holding, an item in
//   flight and a running task attempt can be used only by the same
//   principal, an admin, or the server itself (principal 0). Fencing tokens,
//   receipts and attempt numbers are predictable; this is what makes knowing
//   one useless to another principal;
// - each principal's limit on live names (Command::names_limit), a share per
//   shard.
// Manual time, no sleeps.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

constexpr uint64_t kAlice = 0xa11ce;
constexpr uint64_t kBob = 0xb0b;
constexpr uint64_t kAdmin = 0xad;

Command As(uint64_t principal, Command c, bool admin = false, uint64_t names_limit = 0) {
  c.principal = principal;
  c.admin = admin;
  c.names_limit = names_limit;
  return c;
}

absl::StatusCode CodeOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value());
  return r ? r->status.code() : absl::StatusCode::kUnknown;
}

TEST(OwnerTest, ALeasedLockIsReleasedAndRefreshedOnlyByItsPrincipal) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(As(kAlice, LockCmd("l")), 1), 1));
  auto bob_release = ReplyTo(h.Apply(As(kBob, ReleasePermits{Kind::kLock, "l", t, 0, 0}), 2), 2);
  EXPECT_EQ(CodeOf(bob_release), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(bob_release->status.message().find("belongs to another principal"), std::string::npos)
      << bob_release->status;
  EXPECT_EQ(
      CodeOf(ReplyTo(h.Apply(As(kBob, RefreshPermits{Kind::kLock, "l", t, 0, 9 * kSecond}), 3), 3)),
      absl::StatusCode::kPermissionDenied);
  // Still Alice's: nobody else got it.
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, LockCmd("l", 0, kSecond, h.now)), 4), 4)),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(
      ReplyTo(h.Apply(As(kAlice, RefreshPermits{Kind::kLock, "l", t, 0, 9 * kSecond}), 5), 5)
          ->ok());
  EXPECT_TRUE(ReplyTo(h.Apply(As(kAlice, ReleasePermits{Kind::kLock, "l", t, 0, 0}), 6), 6)->ok());
}

TEST(OwnerTest, AnAdminAndTheServerMayReleaseAnyHolding) {
  Harness h;
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(As(kAlice, SemCmd("s", 2, 1)), 1), 1));
  uint64_t t2 = TokenOf(ReplyTo(h.Apply(As(kAlice, SemCmd("s", 2, 1)), 2), 2));
  EXPECT_TRUE(
      ReplyTo(h.Apply(As(kAdmin, ReleasePermits{Kind::kSemaphore, "s", t1, 0, 0}, true), 3), 3)
          ->ok());
  // Principal 0: a server without principals, or the server's own command.
  EXPECT_TRUE(ReplyTo(h.Apply(ReleasePermits{Kind::kSemaphore, "s", t2, 0, 0}, 4), 4)->ok());
}

TEST(OwnerTest, AHoldingWithoutAnOwnerIsAnyPrincipals) {
  // Granted before principals were checked (or read from a format 3
  // snapshot): whoever may write the name may release it, as before.
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("l"), 1), 1));
  EXPECT_TRUE(ReplyTo(h.Apply(As(kBob, ReleasePermits{Kind::kLock, "l", t, 0, 0}), 2), 2)->ok());
}

TEST(OwnerTest, AWaiterGrantedLaterHoldsForItsOwnPrincipal) {
  Harness h;
  uint64_t ta = TokenOf(ReplyTo(h.Apply(As(kAlice, LockCmd("l")), 1), 1));
  h.Apply(As(kBob, LockCmd("l")), 2);
  auto out = h.Apply(As(kAlice, ReleasePermits{Kind::kLock, "l", ta, 0, 0}), 3);
  uint64_t tb = TokenOf(ReplyTo(out, 2));
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kAlice, ReleasePermits{Kind::kLock, "l", tb, 0, 0}), 4), 4)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kBob, ReleasePermits{Kind::kLock, "l", tb, 0, 0}), 5), 5)->ok());
}

TEST(OwnerTest, AnotherPrincipalsRequestIdIsNotAReplay) {
  Harness h;
  uint64_t t =
      TokenOf(ReplyTo(h.Apply(As(kAlice, LockCmd("l", 0, kSecond, kForever, "r1")), 1), 1));
  // Bob guesses Alice's request id: he waits in line, he is not handed her grant.
  auto out = h.Apply(As(kBob, LockCmd("l", 0, kSecond, kForever, "r1")), 2);
  EXPECT_FALSE(ReplyTo(out, 2).has_value());
  auto again = ReplyTo(h.Apply(As(kAlice, LockCmd("l", 0, kSecond, kForever, "r1")), 3), 3);
  ASSERT_TRUE(again->ok());
  EXPECT_EQ(std::get<Granted>(again->value).token, t);
  EXPECT_EQ(std::get<Granted>(again->value).how, GrantHow::kReplayed);
}

TEST(OwnerTest, ConditionWaitAndNotifyNeedTheLocksPrincipal) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(As(kAlice, LockCmd("l", 0, 10 * kSecond)), 1), 1));
  EXPECT_EQ(CodeOf(ReplyTo(
                h.Apply(As(kBob, ConditionWait{"l", "c", t, 0, 0, kForever, kForever}), 2), 2)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, Notify{"l", "c", t, 0, 1, false}), 3), 3)),
            absl::StatusCode::kPermissionDenied);
  // Alice waits; an admin (holding the lock itself) notifies her; the lock
  // she re-acquires is hers again, not the notifier's.
  EXPECT_FALSE(
      ReplyTo(h.Apply(As(kAlice, ConditionWait{"l", "c", t, 0, 0, kForever, kForever}), 4), 4)
          .has_value());
  uint64_t tn = TokenOf(ReplyTo(h.Apply(As(kAdmin, LockCmd("l"), true), 5), 5));
  h.Apply(As(kAdmin, Notify{"l", "c", tn, 0, 1, false}, true), 6);
  auto out = h.Apply(As(kAdmin, ReleasePermits{Kind::kLock, "l", tn, 0, 0}, true), 7);
  uint64_t again = TokenOf(ReplyTo(out, 4));
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, ReleasePermits{Kind::kLock, "l", again, 0, 0}), 8), 8)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(
      ReplyTo(h.Apply(As(kAlice, ReleasePermits{Kind::kLock, "l", again, 0, 0}), 9), 9)->ok());
}

PutItems PutOne(std::string name, std::string data) {
  PutItems c;
  c.name = std::move(name);
  c.items.push_back(NewQueueItem{std::move(data), 0, 0});
  return c;
}

GetItems GetOne(std::string name) {
  GetItems c;
  c.name = std::move(name);
  c.lease = 10 * kSecond;
  return c;
}

uint64_t ReceiptOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r && r->ok());
  if (!r || !r->ok()) return 0;
  return std::get<GotItems>(r->value).items.at(0).receipt;
}

TEST(OwnerTest, AReceiptIsAckedAndNackedOnlyByItsPrincipal) {
  Harness h;
  h.Apply(As(kAlice, PutOne("q", "x")), 1);
  h.Apply(As(kAlice, PutOne("q", "y")), 1);
  uint64_t rx = ReceiptOf(ReplyTo(h.Apply(As(kAlice, GetOne("q")), 2), 2));
  uint64_t ry = ReceiptOf(ReplyTo(h.Apply(As(kAlice, GetOne("q")), 3), 3));
  auto ack = ReplyTo(h.Apply(As(kBob, AckItems{"q", {rx, ry}}), 4), 4);
  EXPECT_EQ(CodeOf(ack), absl::StatusCode::kPermissionDenied);
  EXPECT_NE(ack->status.message().find("acknowledged 0 of 2"), std::string::npos) << ack->status;
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, NackItems{"q", {rx}, 0}), 5), 5)),
            absl::StatusCode::kPermissionDenied);
  // Both still in flight, Alice's to settle.
  auto mine = ReplyTo(h.Apply(As(kAlice, AckItems{"q", {rx}}), 6), 6);
  ASSERT_TRUE(mine->ok()) << mine->status;
  EXPECT_EQ(std::get<Acked>(mine->value).acked, 1u);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kAlice, NackItems{"q", {ry}, 0}), 7), 7)->ok());
  // The item Alice returned may go to anyone now, and is then theirs.
  uint64_t by_bob = ReceiptOf(ReplyTo(h.Apply(As(kBob, GetOne("q")), 8), 8));
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kAlice, AckItems{"q", {by_bob}}), 9), 9)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kBob, AckItems{"q", {by_bob}}), 10), 10)->ok());
}

TEST(OwnerTest, ItemsPushedToAConsumerAreItsPrincipals) {
  Harness h;
  ConsumeQueue consume;
  consume.name = "q";
  consume.lease = 10 * kSecond;
  h.Apply(As(kAlice, consume), 1);
  auto pushed = h.Apply(As(kBob, PutOne("q", "x")), 2);
  uint64_t r = ReceiptOf(ReplyTo(pushed, 1));
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, AckItems{"q", {r}}), 3), 3)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kAlice, AckItems{"q", {r}}), 4), 4)->ok());
}

TEST(OwnerTest, ARunningAttemptIsReportedOnlyByItsWorkersPrincipal) {
  Harness h;
  SubmitTask submit;
  submit.queue = "work";
  submit.payload = "job";
  h.Apply(As(kBob, submit), 1);
  auto taken = ReplyTo(h.Apply(As(kAlice, TakeTask{"work", 0, kSecond, kForever, ""}), 2), 2);
  ASSERT_TRUE(taken && taken->ok());
  const TakenTask& t = *std::get<Boxed<TakenTask>>(taken->value);
  uint64_t seq = std::stoull(t.id.substr(t.id.rfind('#') + 1));
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kBob, HeartbeatTask{"work", seq, t.attempt}), 3), 3)),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(
      CodeOf(ReplyTo(
          h.Apply(As(kBob, CompleteTask{"work", seq, t.attempt, false, "forged", 0, "", false}), 4),
          4)),
      absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kAlice, HeartbeatTask{"work", seq, t.attempt}), 5), 5)->ok());
  EXPECT_TRUE(
      ReplyTo(
          h.Apply(As(kAlice, CompleteTask{"work", seq, t.attempt, false, "done", 0, "", false}), 6),
          6)
          ->ok());
}

TEST(OwnerTest, NamesPastThePrincipalsLimitAreResourceExhausted) {
  Harness h;  // one shard: its share is the whole limit
  auto set = [&](uint64_t who, const std::string& name, uint64_t op) {
    return ReplyTo(h.Apply(As(who, SetEvent{name}, false, 3), op), op);
  };
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(set(kAlice, absl::StrCat("e", i), 1)->ok());
  EXPECT_EQ(h.state.NamesCreatedBy(kAlice), 3);
  auto refused = set(kAlice, "e3", 2);
  EXPECT_EQ(CodeOf(refused), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(refused->status.message().find("names limit (3"), std::string::npos) << refused->status;
  EXPECT_EQ(h.state.resource_count(), 3u);  // nothing was created
  // Names she did not create, and other principals, are not held back.
  EXPECT_TRUE(set(kBob, "b0", 3)->ok());
  EXPECT_TRUE(set(kAlice, "b0", 4)->ok());  // exists: Bob's, not counted as hers
  EXPECT_TRUE(ReplyTo(h.Apply(SetEvent{"server"}, 5), 5)->ok());  // principal 0: no limit
  // A cleared event is reclaimed, which makes room.
  h.Apply(As(kAlice, ClearEvent{"e0"}), 6);
  EXPECT_EQ(h.state.NamesCreatedBy(kAlice), 2);
  EXPECT_TRUE(set(kAlice, "e3", 7)->ok());
}

TEST(OwnerTest, EachShardAllowsItsShareOfTheNamesLimit) {
  // Shard 1 of 2: ceil(5 / 2) = 3 names of the principal may live here.
  Harness h(Limits{}, 1, 2);
  int created = 0;
  for (int i = 0; created < 4 && i < 100; ++i) {
    std::string name = absl::StrCat("n", i);
    if (ShardState::ShardOfName(name, 2) != 1) continue;
    auto r = ReplyTo(h.Apply(As(kAlice, SetEvent{name}, false, 5), 1), 1);
    if (!r->ok()) {
      EXPECT_EQ(CodeOf(r), absl::StatusCode::kResourceExhausted);
      EXPECT_NE(r->status.message().find("so 3 on each of the 2 shards"), std::string::npos)
          << r->status;
      break;
    }
    ++created;
  }
  EXPECT_EQ(created, 3);
}

TEST(OwnerTest, ARefusedCommandCountsNoName) {
  Harness h;
  AcquirePermits sem = SemCmd("s", 2, 3);  // count over the capacity: refused
  EXPECT_EQ(CodeOf(ReplyTo(h.Apply(As(kAlice, sem, false, 1), 1), 1)),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(h.state.NamesCreatedBy(kAlice), 0);
  EXPECT_TRUE(ReplyTo(h.Apply(As(kAlice, SetEvent{"e"}, false, 1), 2), 2)->ok());
}

}  // namespace
}  // namespace baton::apply
