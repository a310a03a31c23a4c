// Test harness for ShardState: applies commands at a time the test controls
// (a manual clock, advanced explicitly; no test sleeps) and finds replies.
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "service/apply/shard_state.h"

namespace baton::apply {

class Harness {
 public:
  explicit Harness(Limits limits = {}, uint32_t shard = 0, uint32_t shards = 1)
      : state(shard, shards, limits) {}

  // Applies `c` on behalf of op `op` (0: nobody waits for a reply).
  Effects Apply(Command c, uint64_t op = 0) {
    Effects out;
    state.Apply(c, OpRef{0, op}, now, out);
    return out;
  }

  // Moves time forward and fires the timers that came due.
  Effects Advance(Duration d) {
    now += d;
    Effects out;
    if (state.NextDeadline() <= now) state.OnTimer(now, out);
    return out;
  }

  ShardState state;
  Time now = 1'000'000'000;
};

// The reply to op `op` among `effects`, if any (a copy: effects are often
// temporaries).
inline std::optional<Result> ReplyTo(const Effects& effects, uint64_t op) {
  for (const Effect& e : effects) {
    if (auto* r = std::get_if<Reply>(&e); r && r->op.id == op) return r->result;
  }
  return std::nullopt;
}

inline int CountReplies(const Effects& effects) {
  int n = 0;
  for (const Effect& e : effects) n += std::holds_alternative<Reply>(e) ? 1 : 0;
  return n;
}

inline uint64_t TokenOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value());
  if (!r || !r->ok()) return 0;
  return std::get<Granted>(r->value).token;
}

inline uint64_t SessionOf(const std::optional<Result>& r) {
  EXPECT_TRUE(r.has_value() && r->ok());
  if (!r || !r->ok()) return 0;
  return (*std::get<Boxed<SessionInfo>>(r->value)).session;
}

inline AcquirePermits LockCmd(std::string name, uint64_t session = 0, Duration lease = kSecond,
                              Time deadline = kForever, std::string request_id = "") {
  AcquirePermits c;
  c.kind = Kind::kLock;
  c.name = std::move(name);
  c.session = session;
  c.lease = session == 0 ? lease : 0;
  c.deadline = deadline;
  c.request_id = std::move(request_id);
  return c;
}

inline AcquirePermits SemCmd(std::string name, int64_t capacity, int64_t count,
                             Time deadline = kForever, uint64_t session = 0) {
  AcquirePermits c;
  c.kind = Kind::kSemaphore;
  c.name = std::move(name);
  c.capacity = capacity;
  c.count = count;
  c.session = session;
  c.lease = session == 0 ? 60 * kSecond : 0;
  c.deadline = deadline;
  return c;
}

}  // namespace baton::apply
