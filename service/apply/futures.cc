// Futures: SetResult / SetException / Cancel (one command, CompleteFuture),
// Await, and reclaiming a done future once its retention time has passed.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::Future;
using primitives::FutureState;
using primitives::Waiter;

void ShardState::Do(const CompleteFuture& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, Kind::kFuture, /*create=*/true, 0);
  if (!r.ok()) return fail(r.status());
  Future& f = (*r)->future();
  bool cancel = c.value.state == FutureState::kCancelled;
  if (f.done()) {
    // asyncio: Future.cancel() on a done future returns False; setting a
    // done future raises InvalidStateError.
    if (cancel) {
      return out.push_back(
          Answer(c, origin, FutureOutcome{f.value(), GrantHow::kImmediate, 0, /*changed=*/false}));
    }
    return fail(absl::FailedPreconditionError(
        absl::StrCat("future '", c.name, "' is already done; a future is set only once")));
  }
  Duration retention = c.retention > 0 ? c.retention : limits_.future_retention;
  Time expires = AddSaturating(now, retention);
  uint64_t timer = NextId(next_future_timer_);
  AddTimer(expires, TimerKind::kFutureExpiry, timer);
  future_names_[timer] = c.name;
  std::vector<Waiter> woken = f.Complete(c.value, now, expires, timer);
  for (const Waiter& w : woken) {
    Unpark(c.name, w);
    out.push_back(Reply{w.op, Result::Ok(FutureOutcome{f.value(), GrantHow::kAfterWait})});
  }
  out.push_back(
      Answer(c, origin,
             FutureOutcome{f.value(), GrantHow::kImmediate, static_cast<uint32_t>(woken.size()),
                           /*changed=*/true}));
}

void ShardState::Do(const AwaitFuture& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, Kind::kFuture, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r != nullptr && (*r)->future().done()) {
    return out.push_back(
        Answer(c, origin, FutureOutcome{(*r)->future().value(), GrantHow::kImmediate}));
  }
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(absl::StrCat("future '", c.name, "' is pending")));
  }
  if (*r == nullptr) {
    r = Lookup(c.name, Kind::kFuture, /*create=*/true, 0);
    if (!r.ok()) return fail(r.status());
  }
  if (absl::Status s = CheckCanPark(**r, c.name); !s.ok()) {
    return fail(s);
  }
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.since = now;
  w.deadline = c.deadline;
  Park(**r, c.name, std::move(w));
}

void ShardState::ExpireFuture(uint64_t timer_id) {
  auto n = future_names_.find(timer_id);
  if (n == future_names_.end()) return;
  std::string name = n->second;
  future_names_.erase(n);
  auto it = resources_.find(name);
  if (it == resources_.end() || it->second.kind != Kind::kFuture) return;
  const Future& f = it->second.future();
  if (f.done() && f.timer_id() == timer_id) EraseResource(it);
}

// Describe: the future.
ShardState::PrimitiveState ShardState::FutureBlank(int64_t) { return primitives::Future(); }

void ShardState::DescribeFuture(const std::string&, Resource& r, Time now, ResourceInfo& info) {
  const primitives::Future& f = r.future();
  info.future_state = f.value().state;
  if (f.done()) info.retained_for = f.expires() == kForever ? kForever : f.expires() - now;
}

}  // namespace baton::apply
