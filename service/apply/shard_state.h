// ShardState is the deterministic state machine of one shard: the resources
// whose names hash to it, the sessions homed on it, a mirror of which
// sessions are alive anywhere, and a deadline index for timeouts and TTLs.
//
//   Apply(command, origin, now, effects)   -- the only way state changes
//   OnTimer(now, effects)                  -- time passing, as a command
//
// Effects are replies to ops and broadcasts to other shards (result.h). Apply
// never reads a clock, never does I/O, and iterates only ordered containers,
// so the same commands at the same times give the same effects.
//
// Threading: one ShardState is used only by its shard's loop thread.
//
// Ownership rules (DESIGN.md §3): a holding belongs to a session, a lease, or
// both; SessionEnded releases the session's holdings and ends its waits with
// ABORTED. Every pending wait ends exactly once: granted, DEADLINE_EXCEEDED,
// CANCELLED (CancelWait), ABORTED or UNAVAILABLE (BeginShutdown).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "service/apply/command.h"
#include "service/apply/limits.h"
#include "service/apply/observer.h"
#include "service/apply/result.h"
#include "service/apply/result_of.h"
#include "service/primitives/barrier.h"
#include "service/primitives/event.h"
#include "service/primitives/future.h"
#include "service/primitives/permit_pool.h"
#include "service/primitives/queue.h"
#include "service/primitives/task_queue.h"
#include "service/primitives/timer.h"

namespace baton::apply {

class ShardState {
 public:
  // Fencing tokens are a hybrid clock: each grant gets
  // max(previous token + 1, now), where `now` is cluster time (wall-clock
  // microseconds, never decreasing along the log). So tokens strictly
  // increase per lock, increase across all shards in real-time order (two
  // grants made one after the other by any client are more than a
  // microsecond apart), and keep increasing across restarts: the last token
  // is state, restored by replay. Session ids follow the same rule. Time
  // enters only through `now`, so replay gives the same tokens and ids.
  ShardState(uint32_t shard, uint32_t shard_count, Limits limits);

  void Apply(const Command& command, OpRef origin, Time now, Effects& out);

  // The last fencing token handed out by this shard (0: none yet).
  uint64_t last_token() const { return last_token_; }

  // Earliest timer deadline, or kForever.
  Time NextDeadline() const;
  // Fires every timer due at `now`, in (deadline, kind, id) order.
  void OnTimer(Time now, Effects& out);

  // The shard that owns a resource name, and the home shard of a session.
  static uint32_t ShardOfName(std::string_view name, uint32_t shard_count);
  static uint32_t ShardOfSession(uint64_t session, uint32_t shard_count) {
    return static_cast<uint32_t>(session % shard_count);
  }

  // Who opened live session `session` (OpenSession::owner): "" for a
  // session opened without a principal; nullptr if the session is not alive
  // as far as this shard knows. Every shard knows every live session before
  // its id reaches the client (sessions.cc), so the RPC layer asks the shard
  // it runs on.
  const std::string* SessionOwner(uint64_t session) const;
  // How many live sessions `owner` has opened (as far as this shard knows).
  // How many live resources of this shard principal `tag` created
  // (Command::principal); what Command::names_limit is checked against.
  int64_t NamesCreatedBy(uint64_t tag) const {
    auto it = names_by_creator_.find(tag);
    return it == names_by_creator_.end() ? 0 : it->second;
  }
  int64_t SessionsOwnedBy(const std::string& owner) const {
    auto it = owned_sessions_.find(owner);
    return it == owned_sessions_.end() ? 0 : it->second;
  }

  // Tells `observer` (may be null; not owned) of events worth a log line.
  void set_observer(Observer* observer) { observer_ = observer; }
  Observer* observer() const { return observer_; }

  // Introspection for tests and metrics.
  size_t resource_count() const { return resources_.size(); }
  size_t waiter_count() const { return waiters_by_op_.size(); }  // with a live op
  int64_t orphan_count() const { return orphans_; }
  size_t unclaimed_count() const { return unclaimed_.size(); }
  size_t retried_count() const { return retried_.size(); }
  size_t home_session_count() const { return sessions_.size(); }
  size_t timer_count() const { return timers_.size(); }
  size_t session_ref_count() const { return session_refs_.size(); }
  uint64_t queue_bytes() const { return queue_bytes_; }

  // Live resources, holders and waiters by kind, and queue items by state:
  // what the metrics endpoint reports. A scan of every resource (about 10
  // ns each); on the shard's thread, once per scrape.
  struct Gauges {
    struct PerKind {
      uint64_t resources = 0;
      uint64_t holders = 0;  // holdings; for queues, items in flight
      uint64_t waiters = 0;
    };
    std::array<PerKind, kKindCount> kinds{};
    uint64_t queue_ready = 0;
    uint64_t queue_delayed = 0;
    uint64_t queue_in_flight = 0;
    uint64_t queue_dead = 0;
    uint64_t orphans = 0;
    uint64_t timers = 0;
  };
  Gauges Measure();

 private:
  // Saves and restores the whole state (state_codec.cc). Adding a member
  // below: add it to StateCodec::Fields too, or snapshots lose it.
  friend struct StateCodec;
  // Splits the states of N shards over M (reshard.cc).
  friend struct Resharder;

  // The lines a waiter can stand in. kMain: lock and semaphore acquirers,
  // event waiters, queue getters, future awaiters, barrier arrivals;
  // kPutters and kJoiners: queues; kCondition: a condition of a lock.
  enum Line : uint8_t { kMain = 0, kPutters = 1, kJoiners = 2, kCondition = 3 };

  // The state of a resource: one primitive.
  using PrimitiveState =
      std::variant<primitives::PermitPool, primitives::Event, primitives::Queue, primitives::Future,
                   primitives::Barrier, primitives::Timer, primitives::TaskQueue>;

  struct Resource {
    Kind kind;
    PrimitiveState state;
    // Locks only: the waiters of each condition bound to the lock.
    absl::btree_map<std::string, primitives::WaiterQueue> conditions;
    // The principal whose command created it (Command::principal, 0: none):
    // it counts against that principal's names limit while it lives.
    // State format 4 on.
    uint64_t creator = 0;

    primitives::PermitPool& pool() { return std::get<primitives::PermitPool>(state); }
    primitives::Event& event() { return std::get<primitives::Event>(state); }
    primitives::Queue& queue() { return std::get<primitives::Queue>(state); }
    primitives::Future& future() { return std::get<primitives::Future>(state); }
    primitives::Barrier& barrier() { return std::get<primitives::Barrier>(state); }
    primitives::Timer& timer() { return std::get<primitives::Timer>(state); }
    primitives::TaskQueue& tasks() { return std::get<primitives::TaskQueue>(state); }
    bool is_pool() const { return kind == Kind::kLock || kind == Kind::kSemaphore; }
    // The main line.
    primitives::WaiterQueue& waiters();
    // The line `line` (and for kCondition, `condition`), or nullptr.
    primitives::WaiterQueue* LineOf(uint8_t line, const std::string& condition);
    // The line waiter `id` stands in, or nullptr.
    primitives::WaiterQueue* LineHolding(uint64_t id);
    // Idle in its default state, and not declared: may be reclaimed.
    bool idle() const;
    // Idle in its default state, declared or not.
    bool unused() const;
  };
  struct Session {
    std::string label;
    Duration ttl = 0;
    Time created = 0;
    Time expires = kForever;  // kForever while streams hold it open
    uint32_t streams = 0;
  };
  enum class TimerKind {
    kWaiter,
    kLease,
    kSession,
    kQueueDelay,
    kInFlight,
    kFutureExpiry,
    kUserTimer,
    kTask,
    kOrphanGrace  // id 0: the end of the orphans' grace after a restart
  };
  struct TimerKey {
    Time at;
    TimerKind kind;
    uint64_t id;
    auto operator<=>(const TimerKey&) const = default;
  };
  struct WaiterLoc {
    std::string name;
    uint64_t waiter_id;
  };
  // A grant made to an orphaned waiter, which the retry of its request
  // claims; rolled back when the orphans' grace ends.
  struct GrantKey {
    std::string name;
    uint64_t session = 0;
    std::string request_id;
    auto operator<=>(const GrantKey&) const = default;
  };
  // Why a waiter leaves its line early.
  enum class EndReason { kCancelled, kTimedOut, kSessionEnded };

  // What each kind does at the moments every kind has. One row per kind in
  // kinds.cc (the one place that lists the kinds); each function lives in
  // its kind's file. A null hook: the kind has nothing to do then.
  struct KindHooks {
    const char* name = nullptr;  // in messages: "lock", "work queue" ...
    // The state of a new resource of the kind (`capacity`: a semaphore's,
    // a barrier's parties; 0 when restoring, which reads them).
    PrimitiveState (*blank)(int64_t capacity) = nullptr;
    // The kind's lines beyond the main one and conditions (kPutters,
    // kJoiners), or nullptr.
    primitives::WaiterQueue* (*line)(Resource& r, uint8_t line) = nullptr;
    // Declared: kept though idle, until deleted (a semaphore's capacity, a
    // queue's options). Null: never.
    bool (*declared)(const Resource& r) = nullptr;
    // Brings the shard's accounting of `r` up to date at the end of a
    // command that touched it (a queue's bytes).
    void (ShardState::*settle)(Resource& r) = nullptr;
    // Waiter `w` has just been taken out of its line of `r` early (`why`);
    // returns true if the kind ended its wait itself (a condition waiter
    // whose timeout passed re-acquires its lock; a Wait on tasks that timed
    // out reports what is done), false to end it with the usual error.
    bool (ShardState::*waiter_leaving)(const std::string& name, Resource& r, primitives::Waiter& w,
                                       EndReason why, Time now, Effects& out) = nullptr;
    // Fills the kind's part of a Describe.
    void (ShardState::*describe)(const std::string& name, Resource& r, Time now,
                                 ResourceInfo& info) = nullptr;
    // Waiter `id` has just left line `line` of `r` early (`why`, its wait
    // already ended): let the rest react (grant, pump, break).
    void (ShardState::*waiter_left)(const std::string& name, Resource& r, uint8_t line, uint64_t id,
                                    EndReason why, Time now, Effects& out) = nullptr;
    // `session` has ended and its waits here are gone: what it held goes
    // back (holdings, in-flight items, running tasks, Consume streams).
    void (ShardState::*session_ended)(const std::string& name, Resource& r, uint64_t session,
                                      Time now, Effects& out) = nullptr;
    // Ends, with `status`, every wait, watch and stream that the kind keeps
    // beyond its main line and its conditions (shutdown, restart).
    void (ShardState::*end_all)(const std::string& name, Resource& r, const absl::Status& status,
                                Effects& out) = nullptr;
    // Whether waiter `w`, on the main line, may stay in line as an orphan
    // across a restart (it has a request_id, checked before).
    bool (*orphanable)(const primitives::Waiter& w) = nullptr;
    // Rolls back what an orphan was granted that no retry claimed.
    void (ShardState::*roll_back)(const std::string& name, Resource& r, const GrantKey& k, Time now,
                                  Effects& out) = nullptr;
    // List's "holders": what is held now.
    uint32_t (*holders)(Resource& r) = nullptr;
  };
  static const KindHooks& HooksOf(Kind kind);

  // The hooks, by kind (permits.cc, events.cc, queues.cc, futures.cc,
  // barriers.cc, timers.cc, tasks.cc).
  static PrimitiveState PoolBlank(int64_t capacity);
  static bool SemaphoreDeclared(const Resource& r);
  bool PoolWaiterLeaving(const std::string& name, Resource& r, primitives::Waiter& w, EndReason why,
                         Time now, Effects& out);
  static PrimitiveState EventBlank(int64_t capacity);
  static PrimitiveState QueueBlank(int64_t capacity);
  static primitives::WaiterQueue* QueueLine(Resource& r, uint8_t line);
  static bool QueueDeclared(const Resource& r);
  void QueueSettle(Resource& r);
  static PrimitiveState FutureBlank(int64_t capacity);
  static PrimitiveState BarrierBlank(int64_t capacity);
  static PrimitiveState TimerBlank(int64_t capacity);
  static PrimitiveState TasksBlank(int64_t capacity);
  static primitives::WaiterQueue* TasksLine(Resource& r, uint8_t line);
  bool TasksWaiterLeaving(const std::string& name, Resource& r, primitives::Waiter& w,
                          EndReason why, Time now, Effects& out);
  void DescribePool(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void PoolWaiterLeft(const std::string& name, Resource& r, uint8_t line, uint64_t id,
                      EndReason why, Time now, Effects& out);
  void PoolSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                        Effects& out);
  static bool PoolOrphanable(const primitives::Waiter& w);
  void PoolRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                    Effects& out);
  static uint32_t PoolHolders(Resource& r);
  void DescribeEvent(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void EventEndAll(const std::string& name, Resource& r, const absl::Status& status, Effects& out);
  void QueueEndAll(const std::string& name, Resource& r, const absl::Status& status, Effects& out);
  static bool QueueOrphanable(const primitives::Waiter& w);
  void QueueRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                     Effects& out);
  static uint32_t QueueHolders(Resource& r);
  void TasksEndAll(const std::string& name, Resource& r, const absl::Status& status, Effects& out);
  static bool TasksOrphanable(const primitives::Waiter& w);
  void TasksRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                     Effects& out);
  static uint32_t TasksHolders(Resource& r);
  void DescribeQueue(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void QueueWaiterLeft(const std::string& name, Resource& r, uint8_t line, uint64_t id,
                       EndReason why, Time now, Effects& out);
  void QueueSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                         Effects& out);
  void DescribeFuture(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void DescribeBarrier(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void BarrierWaiterLeft(const std::string& name, Resource& r, uint8_t line, uint64_t id,
                         EndReason why, Time now, Effects& out);
  void DescribeTimer(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void DescribeTasks(const std::string& name, Resource& r, Time now, ResourceInfo& info);
  void TasksSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                         Effects& out);

  // Dispatch targets, one per command (permits.cc, events.cc, sessions.cc,
  // admin.cc).
  void Do(const AcquirePermits& c, OpRef origin, Time now, Effects& out);
  void Do(const ReleasePermits& c, OpRef origin, Time now, Effects& out);
  void Do(const RefreshPermits& c, OpRef origin, Time now, Effects& out);
  void Do(const Undeliver& c, OpRef origin, Time now, Effects& out);
  void Do(const SetEvent& c, OpRef origin, Time now, Effects& out);
  void Do(const ClearEvent& c, OpRef origin, Time now, Effects& out);
  void Do(const WaitEvent& c, OpRef origin, Time now, Effects& out);
  void Do(const WatchEvent& c, OpRef origin, Time now, Effects& out);
  void Do(const UnwatchEvent& c, OpRef origin, Time now, Effects& out);
  void Do(const CancelWait& c, OpRef origin, Time now, Effects& out);
  void Do(const OpenSession& c, OpRef origin, Time now, Effects& out);
  void Do(const KeepAlive& c, OpRef origin, Time now, Effects& out);
  void Do(const AttachStream& c, OpRef origin, Time now, Effects& out);
  void Do(const DetachStream& c, OpRef origin, Time now, Effects& out);
  void Do(const CloseSession& c, OpRef origin, Time now, Effects& out);
  void Do(const DescribeSession& c, OpRef origin, Time now, Effects& out);
  void Do(const SessionStarted& c, OpRef origin, Time now, Effects& out);
  void Do(const SessionEnded& c, OpRef origin, Time now, Effects& out);
  void Do(const ListResources& c, OpRef origin, Time now, Effects& out);
  void Do(const DescribeResource& c, OpRef origin, Time now, Effects& out);
  void Do(const BeginShutdown& c, OpRef origin, Time now, Effects& out);
  void Do(const PutItems& c, OpRef origin, Time now, Effects& out);
  void Do(const GetItems& c, OpRef origin, Time now, Effects& out);
  void Do(const AckItems& c, OpRef origin, Time now, Effects& out);
  // Acknowledges `receipts` of queue `name` (AckItems, GetItems::ack): returns
  // how many; those not in flight go to `stale`, another principal's to
  // `foreign`. Does not pump the queue.
  uint32_t AckReceipts(const std::string& name, primitives::Queue& q,
                       const std::vector<uint64_t>& receipts, std::vector<uint64_t>& stale,
                       std::vector<uint64_t>& foreign);
  void Do(const NackItems& c, OpRef origin, Time now, Effects& out);
  void Do(const JoinQueue& c, OpRef origin, Time now, Effects& out);
  void Do(const PurgeQueue& c, OpRef origin, Time now, Effects& out);
  void Do(const DeleteQueue& c, OpRef origin, Time now, Effects& out);
  void Do(const UndeliverItems& c, OpRef origin, Time now, Effects& out);
  void Do(const UndeliverPut& c, OpRef origin, Time now, Effects& out);
  void Do(const CompleteFuture& c, OpRef origin, Time now, Effects& out);
  void Do(const AwaitFuture& c, OpRef origin, Time now, Effects& out);
  void Do(const BarrierWait& c, OpRef origin, Time now, Effects& out);
  void Do(const AbortBarrier& c, OpRef origin, Time now, Effects& out);
  void Do(const ResetBarrier& c, OpRef origin, Time now, Effects& out);
  void Do(const ConditionWait& c, OpRef origin, Time now, Effects& out);
  void Do(const Notify& c, OpRef origin, Time now, Effects& out);
  void Do(const ScheduleTimer& c, OpRef origin, Time now, Effects& out);
  void Do(const CancelTimer& c, OpRef origin, Time now, Effects& out);
  void Do(const SubmitTask& c, OpRef origin, Time now, Effects& out);
  void Do(const TakeTask& c, OpRef origin, Time now, Effects& out);
  void Do(const UndeliverTask& c, OpRef origin, Time now, Effects& out);
  void Do(const HeartbeatTask& c, OpRef origin, Time now, Effects& out);
  void Do(const CompleteTask& c, OpRef origin, Time now, Effects& out);
  void Do(const AwaitTask& c, OpRef origin, Time now, Effects& out);
  void Do(const CancelTask& c, OpRef origin, Time now, Effects& out);
  void Do(const WaitTasks& c, OpRef origin, Time now, Effects& out);
  void Do(const ConsumeQueue& c, OpRef origin, Time now, Effects& out);
  void Do(const StopConsuming& c, OpRef origin, Time now, Effects& out);
  void Do(const Tick& c, OpRef origin, Time now, Effects& out);
  void Do(const Recover& c, OpRef origin, Time now, Effects& out);
  void Do(const DeleteSemaphore& c, OpRef origin, Time now, Effects& out);

  // Resources.
  // The resource `name` of `kind`, created if absent and `create`; errors:
  // FAILED_PRECONDITION on a kind mismatch, RESOURCE_EXHAUSTED at the limit.
  absl::StatusOr<Resource*> Lookup(const std::string& name, Kind kind, bool create,
                                   int64_t capacity);
  // Notes that `name` may have become idle. Every resource so noted, and
  // every resource created, is erased at the end of the command (or of the
  // timers fired) if it is idle in its default state then: no handler frees
  // a resource it still points to, and no error path after a create has to
  // remember to reclaim (review F6).
  void MaybeReclaim(const std::string& name) { touched_.push_back(name); }
  // The sweep: erases each touched resource that is idle.
  void ReclaimTouched();

  // Waiting (the one waiting mechanism for every primitive).
  absl::Status CheckCanPark(primitives::WaiterQueue& line, const std::string& name) const;
  absl::Status CheckCanPark(Resource& r, const std::string& name) const {
    return CheckCanPark(r.waiters(), name);
  }
  // Parks `w` at the back of `line` of resource `name`; returns its id.
  uint64_t Park(primitives::WaiterQueue& line, const std::string& name, primitives::Waiter w);
  uint64_t Park(Resource& r, const std::string& name, primitives::Waiter w) {
    return Park(r.waiters(), name, std::move(w));
  }
  // Forgets a waiter already removed from its queue: timer, op index, refs.
  void Unpark(const std::string& name, const primitives::Waiter& w);
  // Ends the wait of everyone in `line` with `status`.
  void EndLine(const std::string& name, primitives::WaiterQueue& line, const absl::Status& status,
               Effects& out);
  // Ends one waiter's wait with `status`.
  void EndWait(const std::string& name, const primitives::Waiter& w, absl::Status status,
               Effects& out);
  // Takes waiter `id` out of its line before it was served, ends its wait
  // (or, for a condition waiter that timed out, moves it on to re-acquire
  // the lock), and lets the resource react: a semaphore grants the waiters
  // that now fit, a queue lets the next putters in, a barrier breaks.
  void RemoveWaiter(const std::string& name, uint64_t id, EndReason why, Time now, Effects& out);
  // Ends every wait, watch and Consume stream with `status` (shutdown, and
  // the ops of a previous process after a restart). With `keep_orphans`,
  // waits that a retry can claim (Orphanable) get `status` too but stay in
  // line as orphans, timing out by `orphan_until` at the latest.
  void EndEveryWait(const absl::Status& status, Time now, Effects& out, bool keep_orphans = false,
                    Time orphan_until = kForever);

  // Orphans (shard_state.cc). Whether `w`, on the main line of `r`, names
  // itself well enough for a retry to take it over: an acquire, Get or Take
  // with a request_id.
  static bool Orphanable(const Resource& r, const primitives::Waiter& w);
  // A retry of a wait in `line` (same session and request_id) takes it over
  // with its own op and deadline, keeping its place in line: an orphan (its
  // RPC belonged to a previous process), or a wait still in line whose call
  // the client gave up on (cancelled, or its connection broke) before this
  // server noticed; that call is answered ABORTED. So a retry with a zero
  // timeout ends the wait instead of leaving it to be granted to nobody.
  // Returns false if there is no such wait.
  bool Adopt(const std::string& name, primitives::WaiterQueue& line, uint64_t session,
             const std::string& request_id, OpRef origin, Time deadline, Time now, Effects& out);
  // Stale copies. A client that gives up on an acquire, Get or Take whose
  // outcome it does not know asks again with the same request_id and a zero
  // timeout (its recovery: `nowait`), to find and give back what the call
  // got. The recovery can overtake the call on the way to this shard (two
  // calls on one connection, started by different loops): finding nothing,
  // it is noted (NoteNothingFound), and the call, arriving after it, is
  // refused ALREADY_EXISTS (Superseded): it neither waits, nor takes what
  // nobody would read, nor replays what the recovery was given. That call
  // did not ask for a zero timeout, though its deadline may have passed by
  // the time it got here (the client gave up on it at that deadline), so it
  // is told from a recovery by `nowait`, not by its deadline. A note is used
  // once and kept at most kRetriedFor. (A client re-sends a call that waits
  // only while it still waits on it, never after its recovery; a caller that
  // reuses its own request_id for a new wait within kRetriedFor of a
  // zero-timeout call with it that found nothing is refused once, saying
  // so.) Both do nothing without a request_id or a session (request_ids are
  // scoped by session).
  absl::Status Superseded(const std::string& name, uint64_t session, const std::string& request_id,
                          bool nowait, Time now);
  void NoteNothingFound(const std::string& name, uint64_t session, const std::string& request_id,
                        bool nowait, Time now);
  // `w` was just served: if it was an orphan, its grant awaits a claim.
  void NoteGrant(const std::string& name, const primitives::Waiter& w);
  // A retry found what an earlier grant gave: it is claimed.
  void Claim(const std::string& name, uint64_t session, const std::string& request_id);
  // Rolls back every grant made to an orphan that no retry claimed.
  void RollBackUnclaimed(Time now, Effects& out);

  // Queues (queues.cc).
  absl::StatusOr<Resource*> LookupQueue(const std::string& name,
                                        const std::optional<primitives::QueueOptions>& options,
                                        bool create);
  // Puts items into the queue now; returns their ids.
  std::vector<uint64_t> Enqueue(const std::string& name, primitives::Queue& q,
                                std::vector<primitives::QueueItem> items,
                                const std::vector<Duration>& delays, Time now);
  // Items still in flight from the Get with `request_id` by `session` (and
  // the caller's principal).
  std::vector<DeliveredItem> ReplayGet(const primitives::Queue& q, uint64_t session,
                                       const std::string& request_id, Time now) const;
  std::vector<DeliveredItem> TakeItems(const std::string& name, primitives::Queue& q, uint32_t max,
                                       bool dead, uint64_t session, uint64_t owner, Duration lease,
                                       Time now, OpRef consumer = OpRef{},
                                       const std::string& request_id = {});
  // Puts an item in line (at the tail, or the head for a return), or parks
  // it until `delay` has passed.
  void Place(const std::string& name, primitives::Queue& q, primitives::QueueItem item,
             Duration delay, bool at_head, Time now);
  // Pushes ready items to Consume streams with credit, in turn; returns
  // whether it pushed anything.
  bool FeedConsumers(const std::string& name, primitives::Queue& q, Time now, Effects& out);
  // Ends every Consume stream of `q` (of `session` only, if not 0) with
  // `status`.
  void EndConsumers(primitives::Queue& q, uint64_t session, const absl::Status& status,
                    Effects& out);
  // An in-flight item comes back: redelivered at the head (or after
  // `delay`), or dead-lettered once it has had max_deliveries. `counted`:
  // the delivery reached the consumer (false for a lost reply).
  // Returns true if it was dead-lettered.
  bool ReturnItem(const std::string& name, primitives::Queue& q, uint64_t receipt, bool counted,
                  Duration delay, Time now);
  // Brings queue_bytes_ up to date with `q`'s payload bytes.
  void AccountQueue(primitives::Queue& q);
  // Serves putters and getters while they can be served, then joiners, and
  // accounts the queue's bytes.
  void Pump(const std::string& name, primitives::Queue& q, Time now, Effects& out);
  void ExpireInFlight(uint64_t receipt, Time now, Effects& out);
  void PromoteDelayed(uint64_t item_id, Time now, Effects& out);
  // Drops a queue's timers and session references (Delete).
  void ForgetQueue(const std::string& name, primitives::Queue& q);

  // Futures (futures.cc).
  void ExpireFuture(uint64_t timer_id);

  // Barriers (barriers.cc): breaks `b`, aborting its waiters with `why`.
  void BreakBarrier(const std::string& name, primitives::Barrier& b, const std::string& why,
                    Effects& out);

  // Timers (timers.cc): fires (or reclaims) the timer whose index entry is
  // `seq`.
  void FireTimer(uint64_t seq, Time now, Effects& out);
  void DropTimer(const std::string& name);

  // Tasks (tasks.cc).
  static std::string TaskId(const std::string& queue, uint64_t seq);
  TaskReport Report(const std::string& queue, const primitives::Task& t) const;
  // Arms the task's one timer at `at` (kForever: none), replacing the old.
  void SetTaskTimer(const std::string& queue, primitives::Task& t, Time at);
  absl::StatusOr<std::pair<Resource*, primitives::Task*>> FindTask(const std::string& queue,
                                                                   uint64_t seq);
  // The task if attempt `attempt` of it is running; else FAILED_PRECONDITION.
  absl::StatusOr<primitives::Task*> RunningTask(const std::string& queue, uint64_t seq,
                                                uint32_t attempt);
  void StartTask(const std::string& queue, primitives::TaskQueue& tq, uint64_t seq,
                 const primitives::Waiter& worker, Time now, Effects& out);
  void StopRunning(const std::string& queue, primitives::Task& t);
  // The running attempt of `t` never reached its worker: not an attempt; the
  // task is pending again, first in line. The caller pumps.
  void Unstart(const std::string& queue, primitives::TaskQueue& tq, primitives::Task& t);
  // Hands pending tasks to waiting workers.
  void PumpTasks(const std::string& queue, primitives::TaskQueue& tq, Time now, Effects& out);
  void FinishTask(const std::string& queue, Resource& res, primitives::Task& t,
                  primitives::TaskState state, Time now, Effects& out);
  // Its worker is gone (session, lease): another attempt, or failure.
  void LoseTask(const std::string& queue, Resource& res, primitives::Task& t, const char* why,
                Time now, Effects& out);
  bool WaitSatisfied(const std::string& queue, primitives::TaskQueue& tq,
                     const primitives::MultiWait& w, TaskReports& report) const;
  void CheckWaits(const std::string& queue, primitives::TaskQueue& tq, bool timed_out, Time now,
                  Effects& out);
  void OnTaskTimer(uint64_t seq, Time now, Effects& out);

  // Conditions (conditions.cc): moves a condition waiter into its lock's
  // line to re-acquire it.
  void Reacquire(Resource& lock, const std::string& name, primitives::Waiter w,
                 primitives::ConditionOutcome outcome, Time now, Effects& out);

  // Permits.
  void GrantHolding(
      const std::string& name, primitives::PermitPool& pool, uint64_t session, uint64_t owner,
      int64_t count, Duration lease, const std::string& request_id, OpRef op, GrantHow how,
      Time now, Effects& out,
      primitives::ConditionOutcome condition_outcome = primitives::ConditionOutcome::kNone);
  // Grants waiters that now fit, oldest first; returns how many.
  int GrantWaiters(const std::string& name, primitives::PermitPool& pool, Time now, Effects& out);
  void ForgetHolding(const std::string& name, const primitives::Holding& h);
  // Takes holding `token` back (its permits go to the waiters that fit),
  // and reclaims the pool if it is left idle. REQUIRES: it exists.
  void DropHolding(const std::string& name, primitives::PermitPool& pool, uint64_t token, Time now,
                   Effects& out);
  void ExpireLease(uint64_t token, Time now, Effects& out);

  // Events.
  void NotifyWatchers(const primitives::Event& e, Effects& out);

  // Sessions.
  bool SessionAlive(uint64_t session) const { return live_sessions_.contains(session); }
  absl::Status CheckSession(uint64_t session) const;
  // Whether the command being applied may use something owned by `owner`
  // (Holding::owner): it has no owner, or the command was made by the
  // server, by the same principal, or by an admin. If not: NotYours(what),
  // PERMISSION_DENIED "`what` belongs to another principal".
  bool MayUse(uint64_t owner) const {
    return owner == 0 || caller_ == 0 || caller_ == owner || caller_admin_;
  }
  static absl::Status NotYours(const std::string& what);
  // Adds resource `r` as `name`, created by the command being applied:
  // refused (RESOURCE_EXHAUSTED) past --max_resources or past the caller's
  // names limit, which each shard enforces as its share,
  // ceil(names_limit / shard count), of the names that hash to it. The new
  // resource is reclaimed at the end of the command if left idle, and
  // erased if the command is refused.
  absl::StatusOr<Resource*> AddResource(const std::string& name, Resource r);
  // Erases a resource (by iterator or name), uncounting its creator.
  void EraseResource(absl::btree_map<std::string, Resource>::iterator it);
  void EraseResource(const std::string& name);
  // Recounts names_by_creator_ from resources_.
  void CountNames();
  void EndSession(uint64_t session, Time now, Effects& out);
  SessionInfo Info(uint64_t id, const Session& s, Time now) const;
  void Ref(uint64_t session, const std::string& name);
  void Unref(uint64_t session, const std::string& name);

  // Ids. Every id a shard hands out (waiters, tokens, deliveries, items,
  // receipts, timers, tasks, sessions) is congruent to the shard's index
  // modulo the shard count, so no two shards ever hand out the same one,
  // and the states of several shards can be merged into one (reshard.cc).
  // The next id from `counter` (a sequence number: id = seq * count + shard).
  uint64_t NextId(uint64_t& counter) { return counter++ * shard_count_ + shard_; }
  // The least id of this shard that is at least `floor`.
  uint64_t OwnIdAtLeast(uint64_t floor) const {
    return floor + (shard_ + shard_count_ - floor % shard_count_) % shard_count_;
  }

  // Timers.
  void AddTimer(Time at, TimerKind kind, uint64_t id);
  void RemoveTimer(Time at, TimerKind kind, uint64_t id);

  const uint32_t shard_;
  const uint32_t shard_count_;
  const Limits limits_;
  Observer* observer_ = nullptr;
  bool shutting_down_ = false;

  absl::btree_map<std::string, Resource> resources_;
  // Names created or noted by MaybeReclaim during the current command; empty
  // between commands, so never part of a snapshot.
  std::vector<std::string> touched_;
  // Names created during the current command: if the command is refused
  // (an error reply to its origin), those still unused are erased, so a
  // refused first use declares nothing (a queue's options, a semaphore's
  // capacity).
  std::vector<std::string> created_;
  // The principal of the command being applied (Command::principal, admin),
  // for CheckOwner; reset between commands, so never part of a snapshot.
  uint64_t caller_ = 0;
  bool caller_admin_ = false;
  uint64_t caller_names_limit_ = 0;
  // Live resources by creator (Resource::creator, 0 left out): derived from
  // resources_, rebuilt by Restore and by a reshard, never stored.
  absl::flat_hash_map<uint64_t, int64_t> names_by_creator_;
  // Pending waiters: where each stands, by waiter id, and its id by op (a
  // pending wait costs both entries; the name is kept once).
  absl::flat_hash_map<OpRef, uint64_t> waiters_by_op_;
  absl::flat_hash_map<uint64_t, WaiterLoc> waiters_by_id_;
  absl::flat_hash_map<uint64_t, std::string> lease_names_;    // token -> name, leased holdings
  absl::flat_hash_map<uint64_t, std::string> receipt_names_;  // in-flight receipt -> queue
  absl::flat_hash_map<uint64_t, std::string> delayed_names_;  // delayed item id -> queue
  absl::flat_hash_map<uint64_t, std::string> future_names_;   // retention timer -> future
  absl::flat_hash_map<uint64_t, std::string> timer_names_;    // timer seq -> timer name
  absl::flat_hash_map<uint64_t, std::string> task_names_;     // task seq -> work queue
  // How the acks of a parked Get went (GetItems::ack), by waiter id, for its
  // answer when it is granted; erased when the waiter leaves its line. Only
  // for answers: not in a snapshot (a restored waiter's op is gone).
  absl::flat_hash_map<uint64_t, std::pair<uint32_t, std::vector<uint64_t>>> get_acks_;
  // Each timer's action: the resource it acts on and the command.
  absl::flat_hash_map<std::string, std::pair<std::string, std::shared_ptr<const Command>>>
      timer_actions_;
  absl::btree_map<uint64_t, Session> sessions_;  // homed here
  absl::flat_hash_set<uint64_t> live_sessions_;  // alive anywhere
  // The owner of each live session opened by a principal (OpenSession).
  absl::flat_hash_map<uint64_t, std::string> session_owners_;
  // Derived from session_owners_ (not saved; rebuilt by Restore): live
  // sessions per owner.
  absl::flat_hash_map<std::string, int64_t> owned_sessions_;
  void AddOwner(uint64_t session, const std::string& owner);
  void DropOwner(uint64_t session);
  // Per session: resources on this shard where it holds or waits, with how
  // many holdings + waiters it has there.
  absl::flat_hash_map<uint64_t, absl::btree_map<std::string, int64_t>> session_refs_;
  absl::btree_set<TimerKey> timers_;

  uint64_t last_token_ = 0;
  uint64_t next_session_seq_ = 1;
  uint64_t next_waiter_id_ = 1;
  uint64_t next_delivery_ = 1;
  uint64_t next_item_id_ = 1;
  uint64_t next_receipt_ = 1;
  uint64_t next_future_timer_ = 1;
  uint64_t next_timer_seq_ = 1;
  uint64_t next_task_seq_ = 1;
  uint64_t queue_bytes_ = 0;  // payload bytes held by this shard's queues
  // Orphaned waiters in line, unclaimed grants made to orphans, and when the
  // grace for both ends (kForever: no grace running).
  int64_t orphans_ = 0;
  absl::btree_set<GrantKey> unclaimed_;
  Time orphan_grace_end_ = kForever;
  // Calls that would not wait and found nothing of their own, by name,
  // session and request_id, with when each was applied (Superseded).
  // Kept kRetriedFor, at most kMaxRetried of them (the older half goes when
  // full): a stale copy comes within a scheduling delay of its recovery.
  static constexpr Duration kRetriedFor = 10 * kSecond;
  static constexpr size_t kMaxRetried = 4096;
  absl::btree_map<GrantKey, Time> retried_;
};

}  // namespace baton::apply
