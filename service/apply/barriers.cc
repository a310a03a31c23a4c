// Barriers: Wait (arrive), Abort, Reset. Breaking on a departure (timeout,
// cancellation, session end) happens in RemoveWaiter.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Barrier;
using primitives::Waiter;

void ShardState::BreakBarrier(const std::string& name, Barrier& b, const std::string& why,
                              Effects& out) {
  absl::Status broken = absl::AbortedError(
      absl::StrCat("barrier '", name, "' is broken: ", why, "; Reset it to use it again"));
  for (const Waiter& w : b.Break()) EndWait(name, w, broken, out);
}

void ShardState::BarrierWaiterLeft(const std::string& name, Resource& r, uint8_t, uint64_t,
                                   EndReason why, Time, Effects& out) {
  // asyncio: a party that leaves early breaks the barrier for the rest.
  BreakBarrier(name, r.barrier(),
               why == EndReason::kSessionEnded ? "a party's session ended"
               : why == EndReason::kTimedOut   ? "a party timed out"
                                               : "a party was cancelled",
               out);
}

void ShardState::Do(const BarrierWait& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto found = Lookup(c.name, Kind::kBarrier, /*create=*/false, 0);
  if (!found.ok()) return fail(found.status());
  if (*found == nullptr && c.parties == 0) {
    return fail(absl::InvalidArgumentError(
        absl::StrCat("barrier '", c.name, "' does not exist yet: give its parties on first use")));
  }
  auto r = Lookup(c.name, Kind::kBarrier, /*create=*/true, c.parties);
  if (!r.ok()) return fail(r.status());
  Barrier& b = (*r)->barrier();
  if (c.parties != 0 && c.parties != b.parties()) {
    return fail(absl::FailedPreconditionError(
        absl::StrCat("barrier '", c.name, "' has ", b.parties(), " parties, not ", c.parties,
                     " (pass 0 to use the declared number)")));
  }
  if (b.broken()) {
    return fail(absl::AbortedError(
        absl::StrCat("barrier '", c.name, "' is broken; Reset it to use it again")));
  }
  if (b.next_trips()) {
    uint32_t index = b.next_index();
    std::vector<Waiter> released = b.Trip();
    for (const Waiter& w : released) {
      Unpark(c.name, w);
      out.push_back(Reply{w.op, Result::Ok(Passed{GrantHow::kAfterWait,
                                                  static_cast<uint32_t>(w.count), b.cycles()})});
    }
    out.push_back(Answer(c, origin, Passed{GrantHow::kImmediate, index, b.cycles()}));
    MaybeReclaim(c.name);
    return;
  }
  if (c.deadline <= now) {
    // Not waiting counts as leaving early: the barrier breaks, as a waiter
    // that times out breaks it in asyncio.
    BreakBarrier(c.name, b, "a party gave up without waiting (zero timeout)", out);
    return fail(absl::DeadlineExceededError(absl::StrCat("barrier '", c.name, "' has ",
                                                         b.next_index(), " of ", b.parties(),
                                                         " parties; it is now broken")));
  }
  if (absl::Status s = CheckCanPark(**r, c.name); !s.ok()) {
    MaybeReclaim(c.name);
    return fail(s);
  }
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.since = now;
  w.deadline = c.deadline;
  w.count = b.next_index();
  Park(**r, c.name, std::move(w));
}

void ShardState::Do(const AbortBarrier& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kBarrier, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  // A barrier nobody has used has no parties to break it for.
  if (*r == nullptr) return out.push_back(Answer(c, origin, BarrierAborted{0}));
  Barrier& b = (*r)->barrier();
  uint32_t n = static_cast<uint32_t>(b.waiters().size());
  BreakBarrier(c.name, b, "aborted", out);
  out.push_back(Answer(c, origin, BarrierAborted{n}));
}

void ShardState::Do(const ResetBarrier& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kBarrier, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) return out.push_back(Answer(c, origin, BarrierAborted{0}));
  Barrier& b = (*r)->barrier();
  absl::Status reset = absl::AbortedError(absl::StrCat("barrier '", c.name, "' was reset"));
  std::vector<Waiter> gone = b.Reset();
  for (const Waiter& w : gone) EndWait(c.name, w, reset, out);
  MaybeReclaim(c.name);
  out.push_back(Answer(c, origin, BarrierAborted{static_cast<uint32_t>(gone.size())}));
}

// Describe: the barrier.
ShardState::PrimitiveState ShardState::BarrierBlank(int64_t parties) {
  return primitives::Barrier(static_cast<uint32_t>(parties));
}

void ShardState::DescribeBarrier(const std::string&, Resource& r, Time, ResourceInfo& info) {
  const primitives::Barrier& b = r.barrier();
  info.parties = b.parties();
  info.arrived = static_cast<uint32_t>(b.waiters().size());
  info.broken = b.broken();
  info.cycles = b.cycles();
}

}  // namespace baton::apply
