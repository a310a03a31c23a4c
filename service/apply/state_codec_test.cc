// Snapshots (state_codec.h): a restored state is the same state machine as
// the one saved. The determining test runs seeded random workloads over
// every command, saves and restores in the middle, and requires the original
// and the restored state to give the same effects, byte for byte, from then on.
#include "service/apply/state_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"
#include "service/primitives/field_count.h"

namespace baton::apply {
namespace {

// --- A canonical text of effects, to compare two runs field by field. ---

template <class T>
void Dump(std::ostream& o, const T& v);

template <class... Ts>
void DumpAll(std::ostream& o, const Ts&... vs) {
  o << '{';
  ((Dump(o, vs), o << ','), ...);
  o << '}';
}

template <class T>
inline constexpr bool kIsVector = false;
template <class T>
inline constexpr bool kIsVector<std::vector<T>> = true;
template <class T>
inline constexpr bool kIsOptional = false;
template <class T>
inline constexpr bool kIsOptional<std::optional<T>> = true;
template <class T>
inline constexpr bool kIsBoxed = false;
template <class T>
inline constexpr bool kIsBoxed<Boxed<T>> = true;
template <class T>
inline constexpr bool kIsVariant = false;
template <class... Ts>
inline constexpr bool kIsVariant<std::variant<Ts...>> = true;

// Members of an aggregate, by structured binding (up to 30).
#define BATON_DUMP_N(n, ...)       \
  if constexpr (kCount == n) {     \
    const auto& [__VA_ARGS__] = v; \
    DumpAll(o, __VA_ARGS__);       \
    return;                        \
  }
template <class T>
void DumpAggregate(std::ostream& o, const T& v) {
  constexpr size_t kCount = primitives::FieldCount<T>();
  if constexpr (kCount == 0) {
    o << "{}";
    return;
  }
  BATON_DUMP_N(1, a1)
  BATON_DUMP_N(2, a1, a2)
  BATON_DUMP_N(3, a1, a2, a3)
  BATON_DUMP_N(4, a1, a2, a3, a4)
  BATON_DUMP_N(5, a1, a2, a3, a4, a5)
  BATON_DUMP_N(6, a1, a2, a3, a4, a5, a6)
  BATON_DUMP_N(7, a1, a2, a3, a4, a5, a6, a7)
  BATON_DUMP_N(8, a1, a2, a3, a4, a5, a6, a7, a8)
  BATON_DUMP_N(9, a1, a2, a3, a4, a5, a6, a7, a8, a9)
  BATON_DUMP_N(10, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10)
  BATON_DUMP_N(11, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
  BATON_DUMP_N(12, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12)
  BATON_DUMP_N(13, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13)
  BATON_DUMP_N(14, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14)
  BATON_DUMP_N(15, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15)
  BATON_DUMP_N(16, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16)
  BATON_DUMP_N(17, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17)
  BATON_DUMP_N(18, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18)
  BATON_DUMP_N(19, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19)
  BATON_DUMP_N(20, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20)
  BATON_DUMP_N(21, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21)
  BATON_DUMP_N(22, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22)
  BATON_DUMP_N(23, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23)
  BATON_DUMP_N(24, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24)
  BATON_DUMP_N(25, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25)
  BATON_DUMP_N(26, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26)
  BATON_DUMP_N(27, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26, a27)
  BATON_DUMP_N(28, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26, a27, a28)
  static_assert(kCount <= 28, "extend DumpAggregate");
}
#undef BATON_DUMP_N

template <class T>
void Dump(std::ostream& o, const T& v) {
  if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>) {
    o << static_cast<int64_t>(v);
  } else if constexpr (std::is_enum_v<T>) {
    o << static_cast<int64_t>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    o << '"' << v << '"';
  } else if constexpr (std::is_same_v<T, absl::Status>) {
    o << v.ToString();
  } else if constexpr (std::is_same_v<T, Command>) {
    Dump(o, static_cast<const CommandVariant&>(v));
  } else if constexpr (std::is_same_v<T, std::shared_ptr<const Command>>) {
    if (v) Dump(o, *v);
  } else if constexpr (kIsVector<T>) {
    o << '[';
    for (const auto& e : v) Dump(o, e), o << ',';
    o << ']';
  } else if constexpr (kIsOptional<T>) {
    if (v) Dump(o, *v);
  } else if constexpr (kIsBoxed<T>) {
    Dump(o, *v);
  } else if constexpr (kIsVariant<T>) {
    o << v.index() << ':';
    std::visit([&](const auto& x) { Dump(o, x); }, v);
  } else if constexpr (std::is_same_v<T, Result>) {
    DumpAll(o, v.status, v.value);
  } else if constexpr (std::is_same_v<T, Reply>) {
    DumpAll(o, v.op, v.result);
  } else {
    DumpAggregate(o, v);
  }
}

std::string Text(const Effects& effects) {
  std::ostringstream o;
  Dump(o, effects);
  return o.str();
}

// Applies `c` for op `op`, then the commands that timers forward (this is
// the only shard), as the shard driver would apply them as derived entries.
Effects ApplyAll(Harness& h, Command c, uint64_t op) {
  Effects all = h.Apply(std::move(c), op);
  for (size_t i = 0; i < all.size() && i < 1000; ++i) {
    if (auto* f = std::get_if<Forward>(&all[i])) {
      Command next = f->command;
      Effects more = h.Apply(std::move(next), 0);
      all.insert(all.end(), more.begin(), more.end());
    }
  }
  return all;
}

Effects AdvanceAll(Harness& h, Duration d) {
  Effects all = h.Advance(d);
  for (size_t i = 0; i < all.size() && i < 1000; ++i) {
    if (auto* f = std::get_if<Forward>(&all[i])) {
      Command next = f->command;
      Effects more = h.Apply(std::move(next), 0);
      all.insert(all.end(), more.begin(), more.end());
    }
  }
  return all;
}

Harness Restored(const Harness& a) {
  Harness b;
  absl::Status s = RestoreState(SaveState(a.state), &b.state);
  EXPECT_TRUE(s.ok()) << s;
  b.now = a.now;
  return b;
}

// --- A state with every kind of resource in every state. ---

std::shared_ptr<const Command> Action(Command c) { return std::make_shared<const Command>(c); }

void BuildEverything(Harness& h) {
  uint64_t op = 100;  // below: ops named by hand
  uint64_t last = 0;  // the op of the last apply()
  auto apply = [&](Command c) {
    last = op++;
    return ApplyAll(h, std::move(c), last);
  };
  // Sessions with TTLs.
  uint64_t s1 = SessionOf(ReplyTo(h.Apply(OpenSession{10 * kSecond, "one"}, 1000), 1000));
  uint64_t s2 = SessionOf(ReplyTo(h.Apply(OpenSession{20 * kSecond, "two"}, 1001), 1001));
  uint64_t s3 = SessionOf(ReplyTo(h.Apply(OpenSession{30 * kSecond, "three"}, 1002), 1002));
  h.Apply(AttachStream{s3});
  // Locks: held by a lease and by a session, with queued waiters.
  uint64_t t1 = TokenOf(ReplyTo(h.Apply(LockCmd("lock-a", 0, 5 * kSecond), 1), 1));
  apply(LockCmd("lock-a", s1, 0, h.now + 3 * kSecond, "r1"));
  apply(LockCmd("lock-a", s2, 0, h.now + 4 * kSecond));
  uint64_t t2 = TokenOf(ReplyTo(h.Apply(LockCmd("lock-b", s1, 0), 2), 2));
  // Conditions of lock-b with a waiter.
  apply(ConditionWait{"lock-b", "ready", t2, s1, 0, h.now + 2 * kSecond, h.now + 9 * kSecond});
  h.Apply(LockCmd("lock-b", s2, 0, h.now + 7 * kSecond), 3);
  (void)t1;
  // Semaphores.
  apply(SemCmd("sem", 3, 2));
  apply(SemCmd("sem", 3, 2, h.now + 5 * kSecond, s2));
  // Events: set, and cleared with waiters and watchers.
  apply(SetEvent{"ev-set"});
  apply(WaitEvent{"ev-clear", s1, h.now + 6 * kSecond});
  apply(WaitEvent{"ev-clear", 0, kForever});
  h.Apply(WatchEvent{"ev-clear"}, 500);
  // Queues: FIFO, LIFO, priority with ready, delayed, in-flight, dead items.
  for (auto [name, order] : {std::pair{"q-fifo", primitives::QueueOrder::kFifo},
                             std::pair{"q-lifo", primitives::QueueOrder::kLifo},
                             std::pair{"q-prio", primitives::QueueOrder::kPriority}}) {
    PutItems put;
    put.name = name;
    put.options = primitives::QueueOptions{order, 4, 1024, 1};
    put.items = {{"a", 3, 0}, {"b", 1, 0}, {"c", 2, 2 * kSecond}, {"d", 5, 0}};
    apply(put);
    GetItems get;
    get.name = name;
    get.session = s2;
    get.max_items = 2;
    get.request_id = "g1";
    auto got = [&] {
      Effects e = apply(get);
      return ReplyTo(e, last);
    }();
    // Nack one twice (max_deliveries 2) to dead-letter it.
    if (got && got->ok()) {
      const auto* items = std::get_if<GotItems>(&got->value);
      if (items && !items->items.empty()) apply(NackItems{name, {items->items[0].receipt}, 0});
    }
    GetItems get2;
    get2.name = name;
    get2.lease = 3 * kSecond;
    auto got2 = [&] {
      Effects e = apply(get2);
      return ReplyTo(e, last);
    }();
    if (got2 && got2->ok()) {
      const auto* items = std::get_if<GotItems>(&got2->value);
      if (items && !items->items.empty()) apply(NackItems{name, {items->items[0].receipt}, 0});
    }
    PutItems more = put;  // parks a putter: not enough room
    more.items = {{"e", 0, 0}, {"f", 0, 0}, {"g", 0, 0}, {"h", 0, 0}};
    more.deadline = h.now + 8 * kSecond;
    apply(more);
  }
  {
    GetItems getter;  // parked getter on an empty queue
    getter.name = "q-empty";
    getter.deadline = h.now + 5 * kSecond;
    apply(getter);
    ConsumeQueue consume;
    consume.name = "q-fifo";
    consume.session = s3;
    consume.prefetch = 1;
    h.Apply(consume, 600);
    apply(JoinQueue{"q-lifo", h.now + 9 * kSecond});
  }
  // Futures: pending with awaiters, and done.
  apply(AwaitFuture{"fut-pending", s1, h.now + 5 * kSecond});
  apply(CompleteFuture{"fut-done", {primitives::FutureState::kResult, "42", 0, ""}, 0});
  apply(CompleteFuture{"fut-failed", {primitives::FutureState::kException, "", 7, "boom"}, 0});
  // Barriers with arrivals, and a broken one.
  apply(BarrierWait{"bar", 3, s1, h.now + 5 * kSecond});
  apply(BarrierWait{"bar", 3, 0, kForever});
  apply(BarrierWait{"bar-broken", 2, 0, kForever});
  apply(AbortBarrier{"bar-broken"});
  // Timers: one-shot and periodic, with their actions.
  apply(ScheduleTimer{"tm-once", h.now + 3 * kSecond, 0, false, "ev-clear",
                      Action(SetEvent{"ev-clear"})});
  apply(ScheduleTimer{"tm-every", h.now + kSecond, 2 * kSecond, false, "q-fifo",
                      Action(PutItems{"q-fifo", std::nullopt, {{"tick", 0, 0}}, kForever, true})});
  // Tasks in every state.
  for (int i = 0; i < 6; ++i) {
    apply(SubmitTask{"work", absl::StrCat("p", i), i == 5 ? 4 * kSecond : 0, 2, "g", i == 4, 0});
  }
  auto take = [&](uint64_t session) {
    return [&] {
      Effects e = apply(TakeTask{"work", session, session ? 0 : 3 * kSecond, h.now, ""});
      return ReplyTo(e, last);
    }();
  };
  take(s1);                                                      // #1 running
  take(0);                                                       // #2 running, leased
  take(s2);                                                      // #3 -> succeeded
  apply(CompleteTask{"work", 3, 1, false, "ok", 0, "", false});  // succeeded
  take(s2);                                                      // #4 -> failed
  apply(CompleteTask{"work", 4, 1, true, "", 3, "bad", true});
  apply(CancelTask{"work", 5});  // pending -> cancelled
  apply(AwaitTask{"work", 1, h.now + 5 * kSecond});
  apply(WaitTasks{"work", {1, 2}, "", 3, h.now + 5 * kSecond});
  apply(TakeTask{"idle-work", s1, 0, h.now + 5 * kSecond, "t1"});  // parked worker
  // Let some time pass: timers fire, a delayed item becomes ready.
  AdvanceAll(h, kSecond + 500 * kMillisecond);
}

TEST(StateCodec, EmptyStateRoundTrips) {
  Harness a;
  std::string bytes = SaveState(a.state);
  Harness b;
  ASSERT_TRUE(RestoreState(bytes, &b.state).ok());
  EXPECT_EQ(SaveState(b.state), bytes);
}

TEST(StateCodec, EveryKindRoundTrips) {
  Harness a;
  BuildEverything(a);
  EXPECT_GE(a.state.resource_count(), 17u);
  EXPECT_GE(a.state.waiter_count(), 10u);
  EXPECT_EQ(a.state.home_session_count(), 3u);
  std::string bytes = SaveState(a.state);
  Harness b;
  ASSERT_TRUE(RestoreState(bytes, &b.state).ok());
  EXPECT_EQ(SaveState(b.state), bytes);
  EXPECT_EQ(b.state.resource_count(), a.state.resource_count());
  EXPECT_EQ(b.state.waiter_count(), a.state.waiter_count());
  EXPECT_EQ(b.state.timer_count(), a.state.timer_count());
  EXPECT_EQ(b.state.session_ref_count(), a.state.session_ref_count());
  EXPECT_EQ(b.state.queue_bytes(), a.state.queue_bytes());
  EXPECT_EQ(b.state.last_token(), a.state.last_token());
  EXPECT_EQ(b.state.NextDeadline(), a.state.NextDeadline());
  // Restoring replaces what was there.
  Harness c;
  BuildEverything(c);
  c.Apply(SetEvent{"only-in-c"});
  ASSERT_TRUE(RestoreState(bytes, &c.state).ok());
  EXPECT_EQ(SaveState(c.state), bytes);
  // And the two go on alike: describe everything, run every timer out.
  b.now = a.now;
  if (getenv("STATE_CODEC_DEBUG")) {
    for (const char* name : {"lock-a", "lock-b", "sem", "ev-set", "ev-clear", "q-fifo", "q-lifo",
                             "q-prio", "q-empty", "fut-pending", "fut-done", "bar", "bar-broken",
                             "tm-once", "tm-every", "work", "idle-work"}) {
      std::cout << Text(a.Apply(DescribeResource{name}, 1)) << "\n";
    }
  }
  for (const char* name : {"lock-a", "lock-b", "sem", "ev-set", "ev-clear", "q-fifo", "q-lifo",
                           "q-prio", "q-empty", "fut-pending", "fut-done", "bar", "bar-broken",
                           "tm-once", "tm-every", "work", "idle-work"}) {
    EXPECT_EQ(Text(a.Apply(DescribeResource{name}, 1)), Text(b.Apply(DescribeResource{name}, 1)))
        << name;
  }
  for (int i = 0; i < 40; ++i) {
    ASSERT_EQ(Text(AdvanceAll(a, kSecond)), Text(AdvanceAll(b, kSecond))) << i;
  }
  EXPECT_EQ(SaveState(a.state), SaveState(b.state));
}

// Orphaned waits and unclaimed grants (Recover) are state: a snapshot
// taken during the grace restores them, and the two go on alike through
// retries that claim and a grace end that rolls back.
TEST(StateCodec, OrphansAndUnclaimedGrantsRoundTrip) {
  Harness a;
  uint64_t held = TokenOf(ReplyTo(a.Apply(LockCmd("l", 0, 60 * kSecond, kForever, "h"), 1), 1));
  a.Apply(LockCmd("l", 0, 60 * kSecond, kForever, "b"), 2);
  a.Apply(LockCmd("l", 0, 60 * kSecond, kForever, "c"), 3);
  GetItems get;
  get.name = std::string("q");
  get.lease = 60 * kSecond;
  get.request_id = std::string("g");
  a.Apply(get, 4);
  a.Apply(TakeTask{"work", 0, 60 * kSecond, kForever, "t"}, 5);
  a.Apply(Recover{.orphan_grace = 10 * kSecond});
  PutItems put;
  put.name = std::string("q");
  put.items = {{"x", 0, 0}};
  a.Apply(put);                                              // to the orphaned Get
  a.Apply(SubmitTask{"work", "job", 0, 2, "", false, 0});    // to the orphaned Take
  a.Apply(ReleasePermits{Kind::kLock, "l", held, 0, 0}, 6);  // to orphan b
  EXPECT_EQ(a.state.orphan_count(), 1);                      // c
  EXPECT_EQ(a.state.unclaimed_count(), 3u);
  Harness b = Restored(a);
  EXPECT_EQ(b.state.orphan_count(), 1);
  EXPECT_EQ(b.state.unclaimed_count(), 3u);
  // c comes back (takes over), b claims its grant; the Get and Take do not.
  for (auto [command, op] :
       {std::pair<Command, uint64_t>{LockCmd("l", 0, 60 * kSecond, kForever, "c"), 7},
        {LockCmd("l", 0, 60 * kSecond, kForever, "b"), 8}}) {
    ASSERT_EQ(Text(ApplyAll(a, command, op)), Text(ApplyAll(b, command, op)));
  }
  EXPECT_EQ(a.state.unclaimed_count(), 2u);
  for (int i = 0; i < 12; ++i) {
    ASSERT_EQ(Text(AdvanceAll(a, kSecond)), Text(AdvanceAll(b, kSecond))) << i;
  }
  EXPECT_EQ(a.state.unclaimed_count(), 0u);
  EXPECT_EQ(SaveState(a.state), SaveState(b.state));
}

TEST(StateCodec, HashContainersAreWrittenInKeyOrder) {
  // The same data reached by different histories (different hash table
  // layouts) gives the same bytes.
  Harness a, b;
  for (int i = 0; i < 50; ++i) a.Apply(LockCmd(absl::StrCat("l", i), 0, kSecond), i + 1);
  for (int i = 0; i < 50; ++i) b.Apply(LockCmd(absl::StrCat("l", i), 0, kSecond), i + 1);
  Harness c = Restored(a);
  EXPECT_EQ(SaveState(a.state), SaveState(b.state));
  EXPECT_EQ(SaveState(a.state), SaveState(c.state));
}

// --- The determining test: a restored state behaves exactly as the original. ---

class Workload {
 public:
  explicit Workload(uint32_t seed) : rng_(seed) {}

  // One step: a command and its op, or a time advance (no command).
  struct Step {
    std::optional<Command> command;
    uint64_t op = 0;
    Duration advance = 0;
  };

  Step Next(Time now) {
    Step s;
    s.op = ++op_;
    if (Pick(8) == 0) {
      s.advance = Pick(3) == 0 ? Pick(5000) * kMillisecond : Pick(300) * kMillisecond;
      return s;
    }
    s.command = MakeCommand(now);
    return s;
  }

  // Learns ids from the effects of a step (tokens, sessions, receipts...).
  void Learn(const Effects& effects) {
    for (const Effect& e : effects) {
      const auto* r = std::get_if<Reply>(&e);
      if (r == nullptr || !r->result.ok()) continue;
      const ResultValue& v = r->result.value;
      if (auto* g = std::get_if<Granted>(&v)) {
        Remember(tokens_, g->token);
        Remember(deliveries_, g->delivery);
      } else if (auto* si = std::get_if<Boxed<SessionInfo>>(&v)) {
        Remember(sessions_, (*si)->session);
      } else if (auto* got = std::get_if<GotItems>(&v)) {
        for (const auto& item : got->items) {
          Remember(receipts_, item.receipt);
          Remember(item_ids_, item.item_id);
        }
      } else if (auto* put = std::get_if<PutDone>(&v)) {
        for (uint64_t id : put->item_ids) Remember(item_ids_, id);
      }
    }
  }

 private:
  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  template <class T>
  const T& Of(const std::vector<T>& v) {
    return v[Pick(v.size())];
  }
  static void Remember(std::vector<uint64_t>& v, uint64_t x) {
    if (x == 0) return;
    v.push_back(x);
    if (v.size() > 32) v.erase(v.begin());
  }
  uint64_t Any(const std::vector<uint64_t>& v) { return v.empty() ? Pick(5) : Of(v); }
  uint64_t Session() { return Pick(3) == 0 || sessions_.empty() ? 0 : Of(sessions_); }
  Time Deadline(Time now) {
    switch (Pick(4)) {
      case 0:
        return now;  // try once
      case 1:
        return kForever;
      default:
        return now + static_cast<Duration>(Pick(4000)) * kMillisecond;
    }
  }
  std::string Name(const char* prefix, int n) { return prefix + std::to_string(Pick(n)); }
  std::string Data() { return std::string(Pick(6), static_cast<char>('a' + Pick(26))); }
  std::optional<primitives::QueueOptions> Options(const std::string& name) {
    if (Pick(2) == 0) return std::nullopt;
    // The order follows the name so that declarations mostly agree.
    auto order = static_cast<primitives::QueueOrder>(1 + (name.back() - '0') % 3);
    return primitives::QueueOptions{order, static_cast<uint32_t>(2 + Pick(4)), 64,
                                    static_cast<uint32_t>(Pick(3))};
  }

  Command MakeCommand(Time now) {
    std::string lock = Name("lock", 3), queue = Name("q", 3), task = Name("work", 2);
    switch (Pick(52)) {
      case 0:
      case 1:
        return LockCmd(lock, Session(), Pick(2) ? kSecond : 3 * kSecond, Deadline(now),
                       Pick(3) == 0 ? absl::StrCat("r", Pick(3)) : "");
      case 2:
        return SemCmd(Name("sem", 2), 3, 1 + static_cast<int64_t>(Pick(3)), Deadline(now),
                      Session());
      case 3:
        return ReleasePermits{Pick(3) ? Kind::kLock : Kind::kSemaphore,
                              Pick(2) ? lock : Name("sem", 2), Any(tokens_), Session(),
                              static_cast<int64_t>(Pick(2))};
      case 4:
        return RefreshPermits{Kind::kLock, lock, Any(tokens_), Session(), 2 * kSecond};
      case 5:
        return Undeliver{Pick(2) ? Kind::kLock : Kind::kSemaphore, Pick(2) ? lock : Name("sem", 2),
                         Any(tokens_), Any(deliveries_)};
      case 6:
        return SetEvent{Name("ev", 2)};
      case 7:
        return ClearEvent{Name("ev", 2)};
      case 8:
        return WaitEvent{Name("ev", 2), Session(), Deadline(now)};
      case 9:
        return WatchEvent{Name("ev", 2)};
      case 10:
        return UnwatchEvent{Name("ev", 2)};
      case 11:
        return OpenSession{static_cast<Duration>(1 + Pick(5)) * kSecond, Data()};
      case 12:
        return KeepAlive{Any(sessions_)};
      case 13:
        return Pick(2) ? Command(AttachStream{Any(sessions_)})
                       : Command(DetachStream{Any(sessions_)});
      case 14:
        return CloseSession{Any(sessions_)};
      case 15:
        return DescribeSession{Any(sessions_)};
      case 16:
        return ListResources{std::nullopt, "", "", 100};
      case 17:
      case 18: {
        const char* kinds[] = {"lock", "sem", "ev", "q", "fut", "bar", "tm", "work"};
        return DescribeResource{Name(kinds[Pick(8)], 3)};
      }
      case 19:
      case 20: {
        PutItems c;
        c.name = queue;
        c.options = Options(queue);
        for (uint64_t i = 0, n = 1 + Pick(3); i < n; ++i) {
          c.items.push_back({Data(), static_cast<int64_t>(Pick(5)),
                             Pick(4) == 0 ? static_cast<Duration>(Pick(2000)) * kMillisecond : 0});
        }
        c.deadline = Deadline(now);
        c.nowait = c.deadline == now;
        return c;
      }
      case 21:
      case 22: {
        GetItems c;
        c.name = queue;
        c.options = Options(queue);
        c.max_items = static_cast<uint32_t>(1 + Pick(3));
        c.session = Session();
        c.lease = c.session == 0 || Pick(2) ? static_cast<Duration>(1 + Pick(3)) * kSecond : 0;
        c.deadline = Deadline(now);
        c.dead_letters = Pick(6) == 0;
        c.request_id = Pick(3) == 0 ? absl::StrCat("g", Pick(3)) : "";
        return c;
      }
      case 23:
        return AckItems{queue, {Any(receipts_), Any(receipts_)}};
      case 24:
        return NackItems{queue, {Any(receipts_)}, static_cast<Duration>(Pick(2)) * kSecond};
      case 25:
        return JoinQueue{queue, Deadline(now)};
      case 26:
        return Pick(4) ? Command(PurgeQueue{queue, Pick(2) == 0}) : Command(DeleteQueue{queue});
      case 27:
        return Pick(2) ? Command(UndeliverItems{queue, {Any(receipts_)}})
                       : Command(UndeliverPut{queue, {Any(item_ids_)}});
      case 28: {
        ConsumeQueue c;
        c.name = queue;
        c.options = Options(queue);
        c.session = Any(sessions_);
        c.lease = static_cast<Duration>(Pick(3)) * kSecond;
        c.prefetch = static_cast<uint32_t>(1 + Pick(3));
        return c;
      }
      case 29:
        return StopConsuming{queue};
      case 30: {
        auto state = static_cast<primitives::FutureState>(2 + Pick(3));
        return CompleteFuture{
            Name("fut", 3), {state, Data(), 5, "err"}, static_cast<Duration>(Pick(3)) * kSecond};
      }
      case 31:
        return AwaitFuture{Name("fut", 3), Session(), Deadline(now)};
      case 32:
        return BarrierWait{Name("bar", 2), static_cast<uint32_t>(Pick(2) ? 3 : 0), Session(),
                           Deadline(now)};
      case 33:
        return Pick(2) ? Command(AbortBarrier{Name("bar", 2)})
                       : Command(ResetBarrier{Name("bar", 2)});
      case 34:
        return ConditionWait{
            lock,         absl::StrCat("c", Pick(2)), Any(tokens_), Session(), 0, Deadline(now),
            Deadline(now)};
      case 35:
        return Notify{lock,      absl::StrCat("c", Pick(2)),         Any(tokens_),
                      Session(), static_cast<uint32_t>(1 + Pick(2)), Pick(3) == 0};
      case 36:
      case 37: {
        ScheduleTimer c;
        c.name = Name("tm", 3);
        c.due = now + static_cast<Duration>(Pick(3000)) * kMillisecond;
        c.every = Pick(3) == 0 ? static_cast<Duration>(1 + Pick(2)) * kSecond : 0;
        c.replace = Pick(2) == 0;
        switch (Pick(3)) {
          case 0:
            c.target = Name("ev", 2);
            c.action = Action(SetEvent{c.target});
            break;
          case 1:
            c.target = queue;
            c.action = Action(PutItems{queue, std::nullopt, {{"timer", 0, 0}}, kForever, true});
            break;
          default:
            c.target = Name("fut", 3);
            c.action = Action(
                CompleteFuture{c.target, {primitives::FutureState::kCancelled, "", 0, ""}, 0});
        }
        return c;
      }
      case 38:
        return CancelTimer{Name("tm", 3)};
      case 39:
      case 40:
        return SubmitTask{task,
                          Data(),
                          Pick(4) == 0 ? static_cast<Duration>(Pick(2000)) * kMillisecond : 0,
                          static_cast<uint32_t>(1 + Pick(3)),
                          Pick(2) ? "g" : "",
                          Pick(4) == 0,
                          Pick(4) == 0 ? 2 * kSecond : 0};
      case 41:
      case 42: {
        uint64_t session = Session();
        return TakeTask{task, session,
                        session == 0 || Pick(2) ? static_cast<Duration>(1 + Pick(3)) * kSecond : 0,
                        Deadline(now), Pick(3) == 0 ? absl::StrCat("t", Pick(3)) : ""};
      }
      case 43:
        return UndeliverTask{task, 1 + Pick(12), static_cast<uint32_t>(1 + Pick(2))};
      case 44:
        return HeartbeatTask{task, 1 + Pick(12), static_cast<uint32_t>(1 + Pick(2))};
      case 45:
      case 46:
        return CompleteTask{task,         1 + Pick(12), static_cast<uint32_t>(1 + Pick(2)),
                            Pick(3) == 0, Data(),       2,
                            "e",          Pick(4) == 0};
      case 47:
        return AwaitTask{task, 1 + Pick(12), Deadline(now)};
      case 48:
        return CancelTask{task, 1 + Pick(12)};
      case 49:
        return WaitTasks{task,
                         {1 + Pick(12), 1 + Pick(12)},
                         Pick(3) == 0 ? "g" : "",
                         static_cast<uint8_t>(1 + Pick(3)),
                         Deadline(now)};
      case 50:
        // Cancels an earlier op's wait (the command's origin is that op).
        return CancelWait{};
      default:
        switch (Pick(20)) {
          case 0:
            return BeginShutdown{};
          case 1:
          case 2:
          case 3:
          case 4:
          case 5:
            // Orphaned waits, claimed or rolled back, are state too.
            return Recover{.orphan_grace =
                               Pick(3) == 0 ? 0 : static_cast<Duration>(1 + Pick(3)) * kSecond};
          default:
            return Tick{};
        }
    }
  }

  std::mt19937 rng_;
  uint64_t op_ = 0;
  std::vector<uint64_t> tokens_, deliveries_, sessions_, receipts_, item_ids_;
};

// Runs one step on `h`; CancelWait goes to a random earlier op.
Effects RunStep(Harness& h, const Workload::Step& s, uint64_t cancel_op) {
  if (!s.command) return AdvanceAll(h, s.advance);
  uint64_t op = std::holds_alternative<CancelWait>(*s.command) ? cancel_op : s.op;
  return ApplyAll(h, *s.command, op);
}

TEST(StateCodec, RestoredStateBehavesLikeTheOriginal) {
  constexpr int kSteps = 400;
  size_t largest = 0;
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    Workload w(seed);
    std::mt19937 rng(seed * 7919);
    int save_at = std::uniform_int_distribution<int>(0, kSteps * 2 / 3)(rng);
    Harness a;
    std::optional<Harness> b;
    int replies = 0, ok_replies = 0, orphaned = 0;
    for (int step = 0; step < kSteps; ++step) {
      if (step == save_at) {
        std::string bytes = SaveState(a.state);
        largest = std::max(largest, bytes.size());
        b.emplace();
        ASSERT_TRUE(RestoreState(bytes, &b->state).ok());
        b->now = a.now;
        ASSERT_EQ(SaveState(b->state), bytes);
      }
      Workload::Step s = w.Next(a.now);
      uint64_t cancel_op = 1 + std::uniform_int_distribution<uint64_t>(0, s.op)(rng);
      Effects ea = RunStep(a, s, cancel_op);
      w.Learn(ea);
      if (b) {
        Effects eb = RunStep(*b, s, cancel_op);
        ASSERT_EQ(Text(ea), Text(eb)) << "step " << step;
        ASSERT_EQ(SaveState(a.state), SaveState(b->state)) << "step " << step;
        orphaned += a.state.orphan_count() + a.state.unclaimed_count() > 0 ? 1 : 0;
        replies += CountReplies(ea);
        for (const Effect& e : ea) {
          if (auto* r = std::get_if<Reply>(&e); r && r->result.ok()) ++ok_replies;
        }
      }
    }
    // Run every timer out on both.
    for (int i = 0; i < 30 && b; ++i) {
      ASSERT_EQ(Text(AdvanceAll(a, kSecond)), Text(AdvanceAll(*b, kSecond)));
    }
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(SaveState(a.state), SaveState(b->state));
    // The comparison means something only if the workload does things.
    EXPECT_GT(ok_replies, replies / 8) << replies;
    if (getenv("STATE_CODEC_DEBUG")) {
      std::cout << "seed " << seed << ": saved at " << save_at << ", " << replies
                << " replies compared, " << ok_replies << " OK, " << a.state.resource_count()
                << " resources, " << a.state.waiter_count() << " waiters, " << orphaned
                << " steps with orphans\n";
    }
  }
  RecordProperty("largest_snapshot_bytes", static_cast<int>(largest));
}

// A restored state that lost something diverges, and the test above sees it:
// here a state restored from an older snapshot stands in for a lossy one.
TEST(StateCodec, DivergenceIsDetected) {
  Harness a;
  a.Apply(LockCmd("l", 0, 5 * kSecond), 1);
  Harness b = Restored(a);
  a.Apply(SetEvent{"e"});  // b misses this
  EXPECT_NE(Text(a.Apply(WaitEvent{"e", 0, a.now}, 2)), Text(b.Apply(WaitEvent{"e", 0, b.now}, 2)));
  EXPECT_NE(SaveState(a.state), SaveState(b.state));
}

// --- Bad input. ---

TEST(StateCodec, EveryTruncationIsDataLoss) {
  Harness small;
  small.Apply(LockCmd("l", 0, kSecond), 1);
  small.Apply(OpenSession{5 * kSecond, "s"}, 2);
  small.Apply(ScheduleTimer{"t", small.now + kSecond, 0, false, "e", Action(SetEvent{"e"})});
  std::string bytes = SaveState(small.state);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Harness h;
    absl::Status s = RestoreState(std::string_view(bytes).substr(0, n), &h.state);
    ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << n << ": " << s;
    EXPECT_EQ(h.state.resource_count(), 0u);  // untouched on failure
  }
  Harness big;
  BuildEverything(big);
  std::string large = SaveState(big.state);
  std::mt19937 rng(1);
  for (int i = 0; i < 300; ++i) {
    size_t n = std::uniform_int_distribution<size_t>(0, large.size() - 1)(rng);
    Harness h;
    absl::Status s = RestoreState(std::string_view(large).substr(0, n), &h.state);
    ASSERT_EQ(s.code(), absl::StatusCode::kDataLoss) << n << ": " << s;
  }
  // Trailing bytes too.
  Harness h;
  absl::Status s = RestoreState(bytes + "x", &h.state);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("trailing"), std::string::npos) << s;
}

TEST(StateCodec, RandomCorruptionNeverCrashes) {
  Harness big;
  BuildEverything(big);
  std::string bytes = SaveState(big.state);
  std::mt19937 rng(2);
  int ok = 0;
  for (int i = 0; i < 400; ++i) {
    std::string bad = bytes;
    for (int flips = 1 + i % 3; flips > 0; --flips) {
      size_t at = std::uniform_int_distribution<size_t>(0, bad.size() - 1)(rng);
      bad[at] = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng));
    }
    Harness h;
    absl::Status s = RestoreState(bad, &h.state);
    if (s.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(s.code() == absl::StatusCode::kDataLoss ||
                  s.code() == absl::StatusCode::kFailedPrecondition)
          << s;
    }
  }
  RecordProperty("flips_that_decoded", ok);
}

TEST(StateCodec, HugeLengthsAllocateNothing) {
  // A length near 2^63 at every position where one could be read.
  Harness big;
  BuildEverything(big);
  std::string bytes = SaveState(big.state);
  const std::string huge = "\xff\xff\xff\xff\xff\xff\xff\xff\x7f";
  int failed = 0;
  for (size_t at = 3; at < bytes.size(); at += 7) {
    std::string bad = bytes.substr(0, at) + huge + bytes.substr(at);
    Harness h;
    failed += RestoreState(bad, &h.state).ok() ? 0 : 1;  // OK if the length was data
  }
  EXPECT_GT(failed, 0);
}

TEST(StateCodec, ShardMismatchIsFailedPrecondition) {
  Harness a(Limits{}, 1, 4);
  a.Apply(SetEvent{"e"});
  std::string bytes = SaveState(a.state);
  Harness other_shard(Limits{}, 2, 4);
  EXPECT_EQ(RestoreState(bytes, &other_shard.state).code(), absl::StatusCode::kFailedPrecondition);
  Harness other_count(Limits{}, 1, 8);
  EXPECT_EQ(RestoreState(bytes, &other_count.state).code(), absl::StatusCode::kFailedPrecondition);
  Harness same(Limits{}, 1, 4);
  EXPECT_TRUE(RestoreState(bytes, &same.state).ok());
  EXPECT_EQ(SaveState(same.state), bytes);
}

TEST(StateCodec, UnknownFormatVersionIsDataLoss) {
  Harness a;
  std::string bytes = SaveState(a.state);
  ASSERT_EQ(static_cast<uint8_t>(bytes[0]), kStateFormatVersion);
  bytes[0] = static_cast<char>(kStateFormatVersion + 1);
  Harness b;
  absl::Status s = RestoreState(bytes, &b.state);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("version"), std::string::npos) << s;
  EXPECT_EQ(RestoreState("", &b.state).code(), absl::StatusCode::kDataLoss);
}

TEST(StateCodec, Sizes) {
  // Not a limit: prints the size of a snapshot per resource, for the record.
  for (int n : {1, 100, 1000}) {
    Harness h;
    for (int i = 0; i < n; ++i) {
      h.Apply(LockCmd(absl::StrCat("lock/", i), 0, 60 * kSecond), i + 1);
    }
    size_t bytes = SaveState(h.state).size();
    std::cout << n << " held locks with leases: " << bytes << " bytes (" << bytes / n
              << " per lock)\n";
  }
}

}  // namespace
}  // namespace baton::apply
