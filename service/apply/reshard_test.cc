// Re-sharding (reshard.h): the states of N shards split over M hold the same
// resources, sessions and waits, behave on as one server, and keep every id
// a client holds valid while new ids never repeat old ones.
#include "service/apply/reshard.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/apply/state_codec.h"
#include "service/apply/workload_test_util.h"

namespace baton::apply {
namespace {

// N shards' state machines, with commands routed as the server routes them
// (by name, by session) and forwards and broadcasts delivered to the shard
// they name, at one manual time.
class Shards {
 public:
  explicit Shards(uint32_t n) {
    for (uint32_t i = 0; i < n; ++i) shards_.emplace_back(Limits{}, i, n);
  }

  uint32_t size() const { return static_cast<uint32_t>(shards_.size()); }
  Harness& at(uint32_t i) { return shards_[i]; }

  // The shard `c` goes to; nullopt: every shard (time, lifecycle, List,
  // a cancellation, which only the shard holding the op acts on).
  std::optional<uint32_t> Route(const Command& c, uint64_t op) const {
    const uint32_t n = size();
    return std::visit(
        [&](const auto& x) -> std::optional<uint32_t> {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, ListResources>) {
            return std::nullopt;
          } else if constexpr (requires { x.name; }) {
            return ShardState::ShardOfName(x.name, n);
          } else if constexpr (requires { x.lock; }) {
            return ShardState::ShardOfName(x.lock, n);
          } else if constexpr (requires { x.queue; }) {
            return ShardState::ShardOfName(x.queue, n);
          } else if constexpr (std::is_same_v<T, OpenSession>) {
            return static_cast<uint32_t>(op % n);
          } else if constexpr (requires { x.session; }) {
            return ShardState::ShardOfSession(x.session, n);
          } else {
            return std::nullopt;
          }
        },
        static_cast<const CommandVariant&>(c));
  }

  Effects Apply(const Command& c, uint64_t op) {
    Effects all;
    std::optional<uint32_t> to = Route(c, op);
    for (uint32_t i = 0; i < size(); ++i) {
      if (!to || *to == i) Collect(i, shards_[i].Apply(c, op), all);
    }
    return all;
  }

  // Applies `c` for a fresh op and returns the reply to it.
  std::optional<Result> Call(const Command& c) {
    uint64_t op = ++calls_;
    return ReplyTo(Apply(c, op), op);
  }

  Effects Advance(Duration d) {
    Effects all;
    for (uint32_t i = 0; i < size(); ++i) Collect(i, shards_[i].Advance(d), all);
    return all;
  }

  Effects Run(const Workload::Step& s, uint64_t cancel_op) {
    if (!s.command) return Advance(s.advance);
    return Apply(*s.command, std::holds_alternative<CancelWait>(*s.command) ? cancel_op : s.op);
  }

  std::vector<std::string> Save() const {
    std::vector<std::string> out;
    for (const Harness& h : shards_) out.push_back(SaveState(h.state));
    return out;
  }

  static Shards Restore(const std::vector<std::string>& parts, Time now) {
    Shards s(static_cast<uint32_t>(parts.size()));
    for (uint32_t i = 0; i < s.size(); ++i) {
      absl::Status st = RestoreState(parts[i], &s.at(i).state);
      EXPECT_TRUE(st.ok()) << st;
      s.at(i).now = now;
    }
    return s;
  }

  template <class F>
  int64_t Sum(F f) const {
    int64_t n = 0;
    for (const Harness& h : shards_) n += static_cast<int64_t>(f(h.state));
    return n;
  }

 private:
  // Adds `effects` (of shard `from`) to `all`, applying what they forward
  // and broadcast, and what that gives in turn.
  void Collect(uint32_t from, Effects effects, Effects& all) {
    std::deque<std::pair<uint32_t, Effects>> pending;
    pending.emplace_back(from, std::move(effects));
    for (int rounds = 0; !pending.empty() && rounds < 10000; ++rounds) {
      auto [source, batch] = std::move(pending.front());
      pending.pop_front();
      for (Effect& e : batch) {
        if (auto* f = std::get_if<Forward>(&e)) {
          uint32_t t = ShardState::ShardOfName(f->name, size());
          pending.emplace_back(t, shards_[t].Apply(f->command, 0));
        } else if (auto* b = std::get_if<Broadcast>(&e)) {
          for (uint32_t t = 0; t < size(); ++t) {
            if (t != source) pending.emplace_back(t, shards_[t].Apply(b->command, 0));
          }
        }
        all.push_back(std::move(e));
      }
    }
  }

  std::deque<Harness> shards_;
  uint64_t calls_ = 5'000'000;  // above the workload's ops
};

// Every name the workload uses.
std::vector<std::string> Names() {
  std::vector<std::string> names;
  for (const char* kind : {"lock", "sem", "ev", "q", "fut", "bar", "tm", "work"}) {
    for (int i = 0; i < 3; ++i) names.push_back(absl::StrCat(kind, i));
  }
  return names;
}

std::vector<uint64_t> SessionsIn(const Effects& effects) {
  std::vector<uint64_t> ids;
  for (const Effect& e : effects) {
    const auto* r = std::get_if<Reply>(&e);
    if (r == nullptr || !r->result.ok()) continue;
    if (auto* si = std::get_if<Boxed<SessionInfo>>(&r->result.value)) {
      ids.push_back((*si)->session);
    }
  }
  return ids;
}

// What a client can see of a server: every resource's and session's
// description, and the totals.
std::string Visible(Shards& s, const std::vector<uint64_t>& sessions) {
  std::string out;
  uint64_t op = 1'000'000;
  for (const std::string& name : Names()) {
    absl::StrAppend(&out, name, ": ", Text(s.Apply(DescribeResource{name}, ++op)), "\n");
  }
  for (uint64_t id : sessions) {
    absl::StrAppend(&out, "session ", id, ": ", Text(s.Apply(DescribeSession{id}, ++op)), "\n");
  }
  absl::StrAppend(&out, "resources ", s.Sum([](auto& st) { return st.resource_count(); }),
                  " waiters ", s.Sum([](auto& st) { return st.waiter_count(); }), " orphans ",
                  s.Sum([](auto& st) { return st.orphan_count(); }), " unclaimed ",
                  s.Sum([](auto& st) { return st.unclaimed_count(); }), " sessions ",
                  s.Sum([](auto& st) { return st.home_session_count(); }), " queue bytes ",
                  s.Sum([](auto& st) { return st.queue_bytes(); }), "\n");
  return out;
}

// The determining test: random workloads over every command on 3 shards;
// split in the middle over 1, 2 and 5 shards, the server looks the same to
// every client, and goes on working (ASan checks it touches nothing stale).
TEST(Reshard, EveryResourceAndSessionLooksTheSameAfterwards) {
  constexpr int kSteps = 300;
  int compared_resources = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937 rng(seed * 104729);
    int split_at = std::uniform_int_distribution<int>(kSteps / 3, kSteps)(rng);
    Workload w(seed);
    Shards a(3);
    std::vector<uint64_t> sessions;
    for (int step = 0; step < split_at; ++step) {
      Workload::Step s = w.Next(a.at(0).now);
      uint64_t cancel_op = 1 + std::uniform_int_distribution<uint64_t>(0, s.op)(rng);
      Effects e = a.Run(s, cancel_op);
      w.Learn(e);
      for (uint64_t id : SessionsIn(e)) sessions.push_back(id);
    }
    std::vector<std::string> saved = a.Save();
    std::string before = Visible(a, sessions);
    compared_resources += static_cast<int>(a.Sum([](auto& st) { return st.resource_count(); }));
    for (uint32_t m : {1u, 2u, 5u}) {
      SCOPED_TRACE(testing::Message() << "into " << m << " shards");
      auto parts = ReshardStates(saved, m, Limits{});
      ASSERT_TRUE(parts.ok()) << parts.status();
      ASSERT_EQ(parts->size(), m);
      Shards b = Shards::Restore(*parts, a.at(0).now);
      EXPECT_EQ(Visible(b, sessions), before);
      // Back to 3: the same again.
      auto back = ReshardStates(*parts, 3, Limits{});
      ASSERT_TRUE(back.ok()) << back.status();
      Shards c = Shards::Restore(*back, a.at(0).now);
      EXPECT_EQ(Visible(c, sessions), before);
      // And it goes on: a restart's Recover, the rest of the workload, and
      // every timer run out.
      Workload more(seed + 1000);
      b.Apply(Recover{.orphan_grace = kSecond}, 0);
      for (int step = 0; step < kSteps / 2; ++step) {
        Workload::Step s = more.Next(b.at(0).now);
        more.Learn(b.Run(s, 1 + std::uniform_int_distribution<uint64_t>(0, s.op)(rng)));
      }
      for (int i = 0; i < 30; ++i) b.Advance(kSecond);
      for (uint32_t j = 0; j < m; ++j) {
        ShardState copy(j, m, Limits{});
        ASSERT_TRUE(RestoreState(SaveState(b.at(j).state), &copy).ok());
        EXPECT_EQ(SaveState(copy), SaveState(b.at(j).state));
      }
    }
  }
  EXPECT_GT(compared_resources, 12 * 5);  // the comparison compared something
}

// What clients hold stays valid; what the new shards hand out never repeats
// it, and tokens keep rising.
TEST(Reshard, HandlesStayValidAndNewIdsAreNew) {
  Shards a(3);
  uint64_t op = 0;
  std::vector<uint64_t> sessions;
  for (int i = 0; i < 6; ++i) {
    sessions.push_back(SessionOf(a.Call(OpenSession{60 * kSecond, "s"})));
  }
  // Locks on names spread over the shards, each held by a session.
  std::vector<std::pair<std::string, uint64_t>> held;
  uint64_t highest_token = 0;
  for (int i = 0; i < 9; ++i) {
    std::string name = absl::StrCat("lock-", i);
    uint64_t t = TokenOf(a.Call(LockCmd(name, sessions[i % 6], 0)));
    held.emplace_back(name, t);
    highest_token = std::max(highest_token, t);
    // And a second session waiting in line.
    a.Apply(LockCmd(name, sessions[(i + 1) % 6], 0, kForever, "r"), ++op);
  }
  // Queue items in flight.
  std::vector<std::pair<std::string, uint64_t>> receipts;
  for (int i = 0; i < 6; ++i) {
    std::string q = absl::StrCat("queue-", i);
    a.Apply(PutItems{q, std::nullopt, {{"x", 0, 0}, {"y", 0, 0}}, kForever, true}, ++op);
    GetItems g;
    g.name = q;
    g.max_items = 1;
    g.session = sessions[i];
    g.deadline = kForever;
    auto r = a.Call(g);
    ASSERT_TRUE(r && r->ok());
    receipts.emplace_back(q, std::get<GotItems>(r->value).items.at(0).receipt);
  }
  // Ids from different shards never collide: each is its shard's residue.
  std::set<uint64_t> seen;
  for (auto& [name, token] : held) {
    EXPECT_EQ(token % 3, ShardState::ShardOfName(name, 3)) << name;
    EXPECT_TRUE(seen.insert(token).second);
  }
  for (uint64_t id : sessions) EXPECT_TRUE(seen.insert(id).second);

  auto parts = ReshardStates(a.Save(), 2, Limits{});
  ASSERT_TRUE(parts.ok()) << parts.status();
  Shards b = Shards::Restore(*parts, a.at(0).now);
  b.Apply(Recover{.orphan_grace = 10 * kSecond}, 0);

  // Every session lives on at its new home.
  for (uint64_t id : sessions) {
    auto r = b.Call(KeepAlive{id});
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->ok()) << r->status;
  }
  // New sessions get ids above every old one.
  uint64_t fresh = SessionOf(b.Call(OpenSession{60 * kSecond, "new"}));
  for (uint64_t id : sessions) EXPECT_GT(fresh, id);
  // Receipts ack on the queue's new shard.
  for (auto& [q, receipt] : receipts) {
    auto r = b.Call(AckItems{q, {receipt}});
    ASSERT_TRUE(r && r->ok()) << q;
    EXPECT_EQ(std::get<Acked>(r->value).acked, 1u) << q;
  }
  // Each lock is released by its holder's token; the waiter in line (an
  // orphan since the restart) is granted when its retry claims it, with a
  // token above every token before.
  for (size_t i = 0; i < held.size(); ++i) {
    auto& [name, token] = held[i];
    auto r = b.Call(ReleasePermits{Kind::kLock, name, token, sessions[i % 6], 0});
    ASSERT_TRUE(r && r->ok()) << name << ": " << r->status;
    uint64_t t = TokenOf(b.Call(LockCmd(name, sessions[(i + 1) % 6], 0, kForever, "r")));
    EXPECT_GT(t, highest_token) << name;
  }
  // And a fresh lock too.
  EXPECT_GT(TokenOf(b.Call(LockCmd("another", fresh, 0))), highest_token);
}

// Timers armed before keep firing after: a user timer's action, a lease's
// expiry, a session's TTL, a waiter's deadline.
TEST(Reshard, TimersFireOnTheirNewShards) {
  Shards a(3);
  for (int i = 0; i < 8; ++i) {
    ScheduleTimer c;
    c.name = absl::StrCat("tm-", i);
    c.due = a.at(0).now + 2 * kSecond;
    c.target = absl::StrCat("ev-", i);
    c.action = Action(SetEvent{c.target});
    auto r = a.Call(c);
    ASSERT_TRUE(r && r->ok());
  }
  uint64_t leased = TokenOf(a.Call(LockCmd("leased", 0, 3 * kSecond)));
  ASSERT_NE(leased, 0u);
  uint64_t session = SessionOf(a.Call(OpenSession{4 * kSecond, "short"}));
  ASSERT_TRUE(a.Call(LockCmd("held", session, 0)).value().ok());
  for (uint32_t m : {1u, 2u, 4u}) {
    SCOPED_TRACE(testing::Message() << "into " << m << " shards");
    auto parts = ReshardStates(a.Save(), m, Limits{});
    ASSERT_TRUE(parts.ok()) << parts.status();
    Shards b = Shards::Restore(*parts, a.at(0).now);
    for (int s = 0; s < 6; ++s) b.Advance(kSecond);
    for (int i = 0; i < 8; ++i) {
      auto r = b.Call(WaitEvent{absl::StrCat("ev-", i), 0, b.at(0).now});
      ASSERT_TRUE(r.has_value());
      EXPECT_TRUE(r->ok()) << "ev-" << i << ": the timer did not fire";
    }
    // The lease ran out and the session expired: both locks are free.
    EXPECT_NE(TokenOf(b.Call(LockCmd("leased", 0, kSecond, b.at(0).now))), 0u);
    EXPECT_NE(TokenOf(b.Call(LockCmd("held", 0, kSecond, b.at(0).now))), 0u);
  }
}

TEST(Reshard, BadInputIsAClearError) {
  EXPECT_EQ(ReshardStates({}, 2, Limits{}).status().code(), absl::StatusCode::kInvalidArgument);
  Shards a(2);
  EXPECT_EQ(ReshardStates(a.Save(), 0, Limits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::string> bad = a.Save();
  bad[1] = "not a state";
  auto r = ReshardStates(bad, 3, Limits{});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("shard 1 of 2"), std::string::npos) << r.status();
  // Parts given in the wrong order are not mistaken for each other.
  std::vector<std::string> swapped = a.Save();
  std::swap(swapped[0], swapped[1]);
  EXPECT_EQ(ReshardStates(swapped, 3, Limits{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace baton::apply
