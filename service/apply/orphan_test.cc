// Waits orphaned by a restart (Recover): a retry with the same session and
// request_id takes its wait over and keeps its place in line; a wait nobody
// claims leaves the line when the grace ends, and a grant made to it is
// rolled back then. Locks, semaphores, queue Gets and task Takes. Manual
// time, no sleeps.
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"

namespace baton::apply {
namespace {

constexpr Duration kGrace = 10 * kSecond;
constexpr Duration kLease = 600 * kSecond;

// A lease-only lock acquire (no session) with a replay key.
AcquirePermits Acquire(std::string request_id, Time deadline = kForever) {
  return LockCmd("a", 0, kLease, deadline, std::move(request_id));
}

ReleasePermits Release(uint64_t token) { return ReleasePermits{Kind::kLock, "a", token, 0, 0}; }

GrantHow HowOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r && r->ok());
  return r && r->ok() ? std::get<Granted>(r->value).how : GrantHow::kImmediate;
}

TEST(OrphanTest, RetriesAfterARestartKeepTheirPlacesInLine) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Acquire("c"), 3);
  h.Apply(Acquire(""), 4);  // no replay key: cannot be claimed
  Effects restart = h.Apply(Recover{.orphan_grace = kGrace});
  // Every op of the old process hears UNAVAILABLE (the reply goes nowhere).
  for (uint64_t op : {2, 3, 4}) {
    ASSERT_TRUE(ReplyTo(restart, op).has_value()) << op;
    EXPECT_EQ(ReplyTo(restart, op)->status.code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_EQ(h.state.orphan_count(), 2);
  EXPECT_EQ(h.state.waiter_count(), 0u);
  // An operator sees them in Describe.
  auto info = ReplyTo(h.Apply(DescribeResource{"a"}, 9), 9);
  ASSERT_TRUE(info && info->ok());
  EXPECT_EQ((*std::get<Boxed<ResourceInfo>>(info->value)).waiters, 2u);
  EXPECT_EQ((*std::get<Boxed<ResourceInfo>>(info->value)).orphaned_waiters, 2u);

  // A newcomer queues behind the orphans; the retries come back out of
  // order, and each takes over its own place.
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("d"), 5), 5).has_value());
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("c"), 6), 6).has_value());
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("b"), 7), 7).has_value());
  EXPECT_EQ(h.state.orphan_count(), 0);
  EXPECT_EQ(h.state.waiter_count(), 3u);

  Effects out = h.Apply(Release(held), 10);
  uint64_t b = TokenOf(ReplyTo(out, 7));
  EXPECT_EQ(HowOf(ReplyTo(out, 7)), GrantHow::kAfterWait);
  EXPECT_FALSE(ReplyTo(out, 6).has_value());
  out = h.Apply(Release(b), 11);
  uint64_t c = TokenOf(ReplyTo(out, 6));
  EXPECT_FALSE(ReplyTo(out, 5).has_value());
  out = h.Apply(Release(c), 12);
  EXPECT_TRUE(ReplyTo(out, 5)->ok());
}

TEST(OrphanTest, AnUnclaimedWaitLeavesTheLineWhenTheGraceEnds) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Acquire("d"), 5);
  h.Advance(kGrace);
  EXPECT_EQ(h.state.orphan_count(), 0);
  // The newcomer is next, and a late retry joins the back of the line.
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("b"), 6), 6).has_value());
  Effects out = h.Apply(Release(held), 10);
  EXPECT_TRUE(ReplyTo(out, 5)->ok());
  EXPECT_FALSE(ReplyTo(out, 6).has_value());
}

TEST(OrphanTest, AGrantToAnOrphanIsRolledBackUnlessItsRetryClaimsIt) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Acquire("d"), 5);
  // The orphan is granted; nobody hears of it yet.
  Effects out = h.Apply(Release(held), 10);
  EXPECT_EQ(CountReplies(out), 2);  // the release, and the grant to op {}
  EXPECT_FALSE(ReplyTo(out, 5).has_value());
  EXPECT_EQ(h.state.unclaimed_count(), 1u);
  auto info = ReplyTo(h.Apply(DescribeResource{"a"}, 9), 9);
  ASSERT_TRUE(info && info->ok());
  EXPECT_EQ((*std::get<Boxed<ResourceInfo>>(info->value)).unclaimed_grants, 1u);
  // Unclaimed at the end of the grace: given back, and the next one gets it.
  out = h.Advance(kGrace);
  EXPECT_TRUE(ReplyTo(out, 5)->ok());
  EXPECT_EQ(h.state.unclaimed_count(), 0u);
  // The late retry does not find a holding: it waits like anyone.
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("b"), 6), 6).has_value());
}

TEST(OrphanTest, ARetryClaimsAGrantMadeWhileItWasAway) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Acquire("d"), 5);
  h.Apply(Release(held), 10);
  std::optional<Result> r = ReplyTo(h.Apply(Acquire("b"), 6), 6);
  EXPECT_EQ(HowOf(r), GrantHow::kReplayed);
  uint64_t b = TokenOf(r);
  EXPECT_GT(b, held);
  EXPECT_EQ(h.state.unclaimed_count(), 0u);
  // The grace ends: the claimed holding stays.
  EXPECT_FALSE(ReplyTo(h.Advance(kGrace), 5).has_value());
  Effects out = h.Apply(Release(b), 11);
  EXPECT_TRUE(ReplyTo(out, 11)->ok());
  EXPECT_TRUE(ReplyTo(out, 5)->ok());
}

TEST(OrphanTest, ARetryWithAShorterDeadlineTimesOutThenAndLeavesTheLine) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Acquire("d"), 5);
  EXPECT_FALSE(ReplyTo(h.Apply(Acquire("b", h.now + kSecond), 6), 6).has_value());
  EXPECT_EQ(ReplyTo(h.Advance(kSecond), 6)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(ReplyTo(h.Apply(Release(held), 10), 5)->ok());
  // One that will not wait at all gives the place up at once.
  h.Apply(Acquire("e"), 7);
  h.Apply(Recover{.orphan_grace = kGrace});
  EXPECT_EQ(h.state.orphan_count(), 1);
  std::optional<Result> now = ReplyTo(h.Apply(Acquire("e", h.now), 8), 8);
  ASSERT_TRUE(now.has_value());
  EXPECT_EQ(now->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.orphan_count(), 0);
}

TEST(OrphanTest, SemaphoreOrphansBehindAHeadThatLeftAreGrantedAtTheRestart) {
  Harness h;
  AcquirePermits one = SemCmd("s", 3, 2);
  one.request_id = std::string("one");
  ASSERT_TRUE(ReplyTo(h.Apply(one, 1), 1)->ok());
  h.Apply(SemCmd("s", 3, 3), 2);  // no replay key: ends at the restart
  AcquirePermits small = SemCmd("s", 3, 1);
  small.request_id = std::string("small");
  h.Apply(small, 3);  // fits, but waits behind the head of the line
  Effects out = h.Apply(Recover{.orphan_grace = kGrace});
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.state.unclaimed_count(), 1u);
  std::optional<Result> r = ReplyTo(h.Apply(small, 4), 4);
  EXPECT_EQ(HowOf(r), GrantHow::kReplayed);
  EXPECT_EQ(std::get<Granted>(r->value).available, 0);
}

TEST(OrphanTest, ARestartWithoutGraceEndsEveryWait) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{});
  EXPECT_EQ(h.state.orphan_count(), 0);
  h.Apply(Acquire("d"), 5);
  EXPECT_TRUE(ReplyTo(h.Apply(Release(held), 10), 5)->ok());
}

TEST(OrphanTest, ShutdownKeepsClaimableWaitsForTheNextProcess) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Acquire(""), 3);
  Effects out = h.Apply(BeginShutdown{});
  EXPECT_EQ(ReplyTo(out, 2)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(h.state.orphan_count(), 1);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Acquire("d"), 5);
  h.Apply(Acquire("b"), 6);
  EXPECT_TRUE(ReplyTo(h.Apply(Release(held), 10), 6)->ok());
}

TEST(OrphanTest, TwoRestartsInARowKeepTheOrphanUntilTheLastGraceEnds) {
  Harness h;
  uint64_t held = TokenOf(ReplyTo(h.Apply(Acquire("h"), 1), 1));
  h.Apply(Acquire("b"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Advance(kGrace / 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Advance(kGrace * 3 / 4);  // past the first grace, within the second
  EXPECT_EQ(h.state.orphan_count(), 1);
  h.Apply(Acquire("b"), 6);
  EXPECT_TRUE(ReplyTo(h.Apply(Release(held), 10), 6)->ok());
}

// --- queues ---

GetItems Get(std::string request_id, Time deadline = kForever) {
  GetItems c;
  c.name = std::string("q");
  c.lease = 60 * kSecond;
  c.deadline = deadline;
  c.request_id = std::move(request_id);
  return c;
}

PutItems Put(std::string data) {
  PutItems c;
  c.name = std::string("q");
  c.items.push_back(NewQueueItem{std::move(data), 0, 0});
  return c;
}

std::vector<std::string> Payloads(const std::optional<Result>& r) {
  std::vector<std::string> out;
  EXPECT_TRUE(r && r->ok());
  if (!r || !r->ok()) return out;
  for (const auto& i : std::get<GotItems>(r->value).items) out.push_back(i.data);
  return out;
}

TEST(OrphanTest, AnOrphanedGetKeepsItsPlaceAndClaimsItsItem) {
  Harness h;
  h.Apply(Get("g1"), 1);
  h.Apply(Get("g2"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Get("new"), 3);
  EXPECT_FALSE(ReplyTo(h.Apply(Get("g2"), 4), 4).has_value());  // g2 takes over its place
  h.Apply(Put("x"));                                            // to g1, still an orphan
  Effects out = h.Apply(Put("y"));
  EXPECT_EQ(Payloads(ReplyTo(out, 4)), std::vector<std::string>{"y"});
  // g1's retry finds the item it was given.
  std::optional<Result> again = ReplyTo(h.Apply(Get("g1"), 5), 5);
  EXPECT_EQ(Payloads(again), std::vector<std::string>{"x"});
  EXPECT_EQ(std::get<GotItems>(again->value).how, GrantHow::kReplayed);
  EXPECT_EQ(h.state.unclaimed_count(), 0u);
}

TEST(OrphanTest, AnItemGivenToAnOrphanThatNeverCameBackIsQueuedAgainUncounted) {
  Harness h;
  h.Apply(Get("g1"), 1);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Put("x"));
  h.Apply(Get("new"), 3);
  Effects out = h.Advance(kGrace);
  std::optional<Result> r = ReplyTo(out, 3);
  EXPECT_EQ(Payloads(r), std::vector<std::string>{"x"});
  EXPECT_EQ(std::get<GotItems>(r->value).items.at(0).deliveries, 1u);
}

// --- tasks ---

TakeTask Take(std::string request_id) {
  return TakeTask{"work", 0, 60 * kSecond, kForever, std::move(request_id)};
}

TEST(OrphanTest, AnOrphanedTakeKeepsItsPlaceAndAnUnclaimedTaskIsNotAnAttempt) {
  Harness h;
  h.Apply(Take("t1"), 1);
  h.Apply(Take("t2"), 2);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(Take("new"), 3);
  h.Apply(Take("t2"), 4);
  SubmitTask job{"work", "job", 0, 3, "", false, 0};
  h.Apply(job);  // to t1, an orphan
  Effects out = h.Apply(job);
  ASSERT_TRUE(ReplyTo(out, 4).has_value());  // t2 kept its place ahead of "new"
  EXPECT_FALSE(ReplyTo(out, 3).has_value());
  // t1 never comes back: its task goes to "new", as a first attempt.
  out = h.Advance(kGrace);
  std::optional<Result> r = ReplyTo(out, 3);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ((*std::get<Boxed<TakenTask>>(r->value)).attempt, 1u);
}

TEST(OrphanTest, ATakeRetryClaimsTheTaskItWasGiven) {
  Harness h;
  h.Apply(Take("t1"), 1);
  h.Apply(Recover{.orphan_grace = kGrace});
  h.Apply(SubmitTask{"work", "job", 0, 3, "", false, 0});
  std::optional<Result> r = ReplyTo(h.Apply(Take("t1"), 2), 2);
  ASSERT_TRUE(r && r->ok());
  EXPECT_EQ((*std::get<Boxed<TakenTask>>(r->value)).attempt, 1u);
  EXPECT_EQ(h.state.unclaimed_count(), 0u);
  h.Apply(Take("other"), 3);
  EXPECT_FALSE(ReplyTo(h.Advance(kGrace), 3).has_value());  // still running for t1
}

// Not only orphans: a retry with the request_id of a wait still in line in
// the same session (its first call was cancelled, or its connection broke,
// before the server noticed) takes that wait over and keeps its place; the
// first op is answered ABORTED. A retry with a zero timeout so ends the
// wait, which can then never be granted to a call nobody reads.
TEST(OrphanTest, ARetryTakesOverItsOwnWaitStillInLine) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  uint64_t held = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, kLease, kForever, "h"), 2), 2));
  h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 3);  // first in line
  h.Apply(LockCmd("a", sid, 0, kForever, "r2"), 4);  // second
  // The retry of r1 (op 5) takes op 3's place: op 3 hears ABORTED.
  Effects out = h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 5);
  ASSERT_TRUE(ReplyTo(out, 3).has_value());
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(ReplyTo(out, 5).has_value());
  EXPECT_EQ(h.state.waiter_count(), 2u);
  out = h.Apply(Release(held), 6);
  uint64_t t1 = TokenOf(ReplyTo(out, 5));
  EXPECT_FALSE(ReplyTo(out, 4).has_value());
  // A zero-timeout retry of r2 ends its wait: nothing is granted to op 4
  // or to anyone for it when the lock comes free.
  out = h.Apply(LockCmd("a", sid, 0, h.now, "r2"), 7);
  EXPECT_EQ(ReplyTo(out, 4)->status.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ReplyTo(out, 7)->status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(h.state.waiter_count(), 0u);
  out = h.Apply(ReleasePermits{Kind::kLock, "a", t1, sid, 0}, 8);
  EXPECT_TRUE(ReplyTo(out, 8)->ok());
  EXPECT_EQ(CountReplies(out), 1);
  // Another session's same request_id is not a retry: it waits anew.
  uint64_t other = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 9), 9));
  held = TokenOf(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r3"), 10), 10));
  h.Apply(LockCmd("a", sid, 0, kForever, "r4"), 11);
  out = h.Apply(LockCmd("a", other, 0, kForever, "r4"), 12);
  EXPECT_EQ(CountReplies(out), 0);
  EXPECT_EQ(h.state.waiter_count(), 2u);
}

// A client's recovery: the same request_id, a zero timeout.
AcquirePermits Recovery(AcquirePermits c) {
  c.nowait = true;
  return c;
}

// A recovery (the same request_id, no time left) that overtakes the call it
// recovers, on the way to the shard, finds nothing; the call arriving after
// it is a stale copy that nobody reads: refused ALREADY_EXISTS, it neither
// waits (to be granted to nobody) nor replays the recovery's grant (whose
// loss would then take the lock from the client that holds it). Once.
TEST(SupersededTest, AWaitOvertakenByItsRecoveryDoesNotWait) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  uint64_t held = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, kLease, kForever, "h"), 2), 2));
  Effects out = h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 3);  // the recovery
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kDeadlineExceeded);
  out = h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 4);  // the call it recovered
  ASSERT_TRUE(ReplyTo(out, 4).has_value());
  EXPECT_EQ(ReplyTo(out, 4)->status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(ReplyTo(out, 4)->status.message().find("r1"), std::string::npos);
  EXPECT_EQ(h.state.waiter_count(), 0u);
  // The note is used: the same request_id waits again (a caller's own key).
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 5), 5).has_value());
  out = h.Apply(Release(held), 6);
  EXPECT_TRUE(ReplyTo(out, 5)->ok());
}

TEST(SupersededTest, AStaleCopyDoesNotReplayTheGrantItsRecoveryGot) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  std::optional<Result> got = ReplyTo(h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 2), 2);
  uint64_t token = TokenOf(got);
  uint64_t delivery = std::get<Granted>(got->value).delivery;
  Effects out = h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 3);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kAlreadyExists);
  // The grant still rides on the recovery's reply: its loss alone undoes it.
  out = h.Apply(Undeliver{Kind::kLock, "a", token, delivery + 1});
  out = h.Apply(ReleasePermits{Kind::kLock, "a", token, sid, 0}, 4);
  EXPECT_TRUE(ReplyTo(out, 4)->ok());
}

TEST(SupersededTest, ARecoveryThatFoundItsGrantOrWaitNotesNothing) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  uint64_t token = TokenOf(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 2), 2));
  // The recovery replays the grant: the call it recovered was there first,
  // so a later call with time left is a re-send, answered the grant again.
  EXPECT_EQ(HowOf(ReplyTo(h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 3), 3)),
            GrantHow::kReplayed);
  EXPECT_EQ(TokenOf(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 4), 4)), token);
  // Likewise a recovery that ends its own wait.
  h.Apply(LockCmd("a", sid, 0, kForever, "r2"), 5);
  Effects out = h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r2")), 6);
  EXPECT_EQ(ReplyTo(out, 5)->status.code(), absl::StatusCode::kAborted);
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r2"), 7), 7).has_value());
  EXPECT_EQ(h.state.waiter_count(), 1u);
}

TEST(SupersededTest, ANoteLastsTenSecondsAndNeedsASession) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{600 * kSecond, ""}, 1), 1));
  uint64_t held = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, kLease, kForever, "h"), 2), 2));
  h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 3);
  h.Apply(Recovery(LockCmd("a", 0, kLease, h.now, "r2")), 4);  // no session: not noted
  h.Advance(10 * kSecond);
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "r1"), 5), 5).has_value());
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", 0, kLease, kForever, "r2"), 6), 6).has_value());
  EXPECT_EQ(h.state.waiter_count(), 2u);
  (void)held;
}

TEST(SupersededTest, NotesAreBoundedAndTheNewestKept) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{600 * kSecond, ""}, 1), 1));
  TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, kLease, kForever, "h"), 2), 2));
  for (int i = 0; i < 10'000; ++i) {
    h.Apply(Recovery(LockCmd("a", sid, 0, h.now, absl::StrCat("try", i))));
    if (i % 1000 == 999) h.Advance(kSecond);
  }
  EXPECT_LE(h.state.retried_count(), 4096u);
  // The newest is still noted, the oldest is not.
  Effects out = h.Apply(LockCmd("a", sid, 0, kForever, "try9999"), 3);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_FALSE(ReplyTo(h.Apply(LockCmd("a", sid, 0, kForever, "try0"), 4), 4).has_value());
}

TEST(SupersededTest, GetsAndTakesToo) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  GetItems get = Get("g1", h.now);
  get.session = sid;
  get.nowait = true;
  EXPECT_EQ(ReplyTo(h.Apply(get, 2), 2)->status.code(), absl::StatusCode::kDeadlineExceeded);
  get.deadline = kForever;
  get.nowait = false;
  EXPECT_EQ(ReplyTo(h.Apply(get, 3), 3)->status.code(), absl::StatusCode::kAlreadyExists);
  Effects out = h.Apply(Put("x"));
  EXPECT_FALSE(ReplyTo(out, 3).has_value());  // nobody took it
  EXPECT_EQ(Payloads(ReplyTo(h.Apply(Get("other"), 4), 4)), std::vector<std::string>{"x"});

  TakeTask take{"work", sid, 60 * kSecond, h.now, "t1", /*nowait=*/true};
  EXPECT_EQ(ReplyTo(h.Apply(take, 5), 5)->status.code(), absl::StatusCode::kDeadlineExceeded);
  take.deadline = kForever;
  take.nowait = false;
  EXPECT_EQ(ReplyTo(h.Apply(take, 6), 6)->status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(h.state.waiter_count(), 0u);
}

// The call a client gave up on at its deadline may get here after that
// deadline (then it would not wait either): it is still not a recovery,
// which asks with a zero timeout, and is refused.
TEST(SupersededTest, AStaleCopyPastItsDeadlineIsRefusedToo) {
  Harness h;
  uint64_t sid = SessionOf(ReplyTo(h.Apply(OpenSession{60 * kSecond, ""}, 1), 1));
  Effects out = h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 2);
  uint64_t token = TokenOf(ReplyTo(out, 2));  // free: the recovery got it
  out = h.Apply(LockCmd("a", sid, 0, h.now - kMillisecond, "r1"), 3);
  EXPECT_EQ(ReplyTo(out, 3)->status.code(), absl::StatusCode::kAlreadyExists);
  // And a recovery asked again (its first answer lost) finds the grant.
  EXPECT_EQ(TokenOf(ReplyTo(h.Apply(Recovery(LockCmd("a", sid, 0, h.now, "r1")), 4), 4)), token);
}

// A new leader (Recover) gives every leased holding at least a whole lease
// from its own now, as it gives sessions a fresh TTL: a holder could not
// refresh while no leader served, and a leader whose clock runs ahead of its
// predecessor's must not end leases early by the difference.
TEST(RecoverTest, LeasesGetAWholeLeaseAgainNeverLess) {
  Harness h;
  uint64_t t = TokenOf(ReplyTo(h.Apply(LockCmd("a", 0, 10 * kSecond, kForever, "h"), 1), 1));
  h.Advance(6 * kSecond);  // e.g. a clock 6 s ahead: 4 s of the lease would be left
  h.Apply(Recover{});
  h.Advance(9 * kSecond);
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now, ""), 2), 2)->status.code(),
            absl::StatusCode::kDeadlineExceeded);  // still held
  Effects out = h.Advance(kSecond);
  EXPECT_TRUE(ReplyTo(h.Apply(LockCmd("a", 0, kSecond, h.now, ""), 3), 3)->ok());
  // A refresh sets the lease a Recover renews.
  uint64_t t2 = TokenOf(ReplyTo(h.Apply(LockCmd("b", 0, kSecond, kForever, ""), 4), 4));
  EXPECT_TRUE(ReplyTo(h.Apply(RefreshPermits{Kind::kLock, "b", t2, 0, 20 * kSecond}, 5), 5)->ok());
  h.Advance(5 * kSecond);
  h.Apply(Recover{});  // 15 s were left, less than a whole lease: 20 s again
  h.Advance(19 * kSecond);
  EXPECT_EQ(ReplyTo(h.Apply(LockCmd("b", 0, kSecond, h.now, ""), 6), 6)->status.code(),
            absl::StatusCode::kDeadlineExceeded);
  (void)t;
  (void)out;
}

}  // namespace
}  // namespace baton::apply
