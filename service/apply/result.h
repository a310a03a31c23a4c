// Results and effects: what applying a command produces.
//
// Effects are data (DESIGN.md §4.3): a Reply carries a Result to the op that
// waits for it, a Broadcast carries a command to every other shard. The
// shard driver (shard.h) performs them after Apply returns.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "service/apply/command.h"
#include "service/primitives/future.h"
#include "service/primitives/queue.h"
#include "service/primitives/task_queue.h"
#include "service/primitives/types.h"

namespace baton::apply {

using primitives::OpRef;

enum class GrantHow { kImmediate, kAfterWait, kReplayed };

struct Granted {
  uint64_t token = 0;
  int64_t count = 0;
  int64_t available = 0;
  GrantHow how = GrantHow::kImmediate;
  Duration expires_in = kForever;  // kForever: no lease
  uint64_t delivery = 0;           // pass back in Undeliver if the reply is lost
  // A condition wait's re-acquire: why the waiter woke.
  primitives::ConditionOutcome condition_outcome = primitives::ConditionOutcome::kNone;
};

struct Released {
  bool handed_off = false;
  int64_t available = 0;
  int64_t remaining = 0;
};

struct Refreshed {
  Duration expires_in = 0;
};

struct EventOutcome {
  bool previous_set = false;            // Set/Clear: state before the call
  bool set = false;                     // state after
  uint32_t woken = 0;                   // Set: waiters released
  GrantHow how = GrantHow::kImmediate;  // Wait
};

// One message of a Watch stream.
struct EventChange {
  bool set = false;
};

struct SessionInfo {
  uint64_t session = 0;
  std::string label;
  Duration ttl = 0;
  Duration expires_in = kForever;  // kForever while a stream holds it
  Duration age = 0;
  uint32_t open_streams = 0;
  std::string owner = "";  // OpenSession::owner
};

struct HolderInfo {
  uint64_t token = 0;
  uint64_t session = 0;
  int64_t count = 0;
  Duration held_for = 0;
  Duration expires_in = kForever;
  std::string request_id;
};

struct ResourceSummary {
  std::string name;
  Kind kind = Kind::kLock;
  uint32_t holders = 0;
  uint32_t waiters = 0;
};

struct ResourceList {
  std::vector<ResourceSummary> resources;
  bool more = false;  // this shard has more matches past the last one
};

struct ConditionSummary {
  std::string condition;
  uint32_t waiters = 0;
  uint32_t reacquiring = 0;
};

struct QueueSummary {
  primitives::QueueOptions options;
  uint64_t ready = 0, delayed = 0, in_flight = 0, dead = 0, unfinished = 0;
  Duration oldest_age = -1;  // -1: empty
  uint32_t getters = 0, putters = 0, joiners = 0;
  uint64_t total_put = 0, total_acked = 0;
};

struct ResourceInfo {
  std::string name;
  Kind kind = Kind::kLock;
  std::vector<HolderInfo> holders;
  uint32_t waiters = 0;
  Duration oldest_wait = -1;      // -1: nobody waits
  uint32_t orphaned_waiters = 0;  // of `waiters`: kept across a restart for a retry
  uint32_t unclaimed_grants = 0;  // made to orphans, not yet claimed by a retry
  int64_t capacity = 0;
  int64_t available = 0;
  bool event_set = false;
  uint32_t watchers = 0;
  uint64_t last_token = 0;
  std::vector<ConditionSummary> conditions;
  QueueSummary queue;
  primitives::FutureState future_state = primitives::FutureState::kPending;
  Duration retained_for = -1;  // -1: not done
  uint32_t parties = 0, arrived = 0;
  bool broken = false;
  uint64_t cycles = 0;
  // Timers.
  Duration due_in = -1;  // -1: not scheduled (a one-shot timer that fired)
  Duration every = 0;
  uint64_t fired = 0;
  Duration since_fired = -1;  // -1: never fired
  std::string action;         // e.g. "set_event cache-warm"
  // Work queues of tasks.
  uint64_t tasks_pending = 0, tasks_running = 0, tasks_done = 0;
};

// Queues.
struct PutDone {
  std::vector<uint64_t> item_ids;
  uint32_t size = 0;
  GrantHow how = GrantHow::kImmediate;
};
struct DeliveredItem {
  uint64_t receipt = 0;
  uint64_t item_id = 0;
  std::string data;
  int64_t priority = 0;
  uint32_t deliveries = 0;
  Duration age = 0;
};
struct GotItems {
  std::vector<DeliveredItem> items;
  GrantHow how = GrantHow::kImmediate;
  // GetItems::ack: how many were acknowledged, and the receipts that were not.
  uint32_t acked = 0;
  std::vector<uint64_t> ack_failed = {};
};
struct Acked {
  uint32_t acked = 0;
  uint64_t unfinished = 0;  // items put and not yet acked
};
struct Nacked {
  uint32_t returned = 0;
  uint32_t dead_lettered = 0;
  uint64_t unfinished = 0;
};
struct Purged {
  uint32_t purged = 0;
};
// Queues/Delete and Semaphores/Delete: whether there was one to delete.
struct Deleted {
  bool deleted = false;
};
// Barriers/Abort and Barriers/Reset: the waiters that were aborted.
struct BarrierAborted {
  uint32_t aborted = 0;
};
// Conditions/Notify.
struct Notified {
  uint32_t woken = 0;
};
// A wait that passed with no value: Join, and a Barrier's trip.
struct Passed {
  GrantHow how = GrantHow::kImmediate;
  uint32_t index = 0;
  uint64_t cycle = 0;
};
struct FutureOutcome {
  primitives::FutureValue value;
  GrantHow how = GrantHow::kImmediate;
  uint32_t woken = 0;
  bool changed = false;  // Cancel: whether this call cancelled it
};

// Tasks.
struct TaskReport {
  std::string id;
  primitives::TaskState state = primitives::TaskState::kPending;
  std::string result;
  int32_t error_code = 0;
  std::string error_message;
  uint32_t attempts = 0;
};
struct TaskReports {
  std::vector<TaskReport> done;
  std::vector<std::string> pending;
};
struct TakenTask {
  std::string id;
  std::string payload;
  uint32_t attempt = 0;
};

struct TaskHeartbeat {
  bool cancel_requested = false;  // the worker should stop
};
// Tasks/Complete: the task's state after the call, and whether it had been
// cancelled (the result was then dropped).
struct TaskCompleted {
  primitives::TaskState state = primitives::TaskState::kPending;
  bool was_cancelled = false;
};
// Tasks/Cancel: whether this call cancelled it, and its state after.
struct TaskCancelled {
  bool cancelled = false;
  primitives::TaskState state = primitives::TaskState::kPending;
};

// Timers.
struct TimerScheduled {
  Duration due_in = 0;
};
struct TimerCancelled {
  bool cancelled = false;
  uint64_t fired = 0;  // times it had fired
};

struct Done {};

// A value kept on the heap, so that the variant below stays small: every
// coroutine frame that waits for a Result holds one (or two), and a pending
// wait's memory is mostly its frame (docs/benchmarks.md). Copies are deep.
template <class T>
class Boxed {
 public:
  Boxed(T value) : p_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit on purpose
  Boxed(const Boxed& other) : p_(std::make_unique<T>(*other.p_)) {}
  Boxed(Boxed&&) noexcept = default;
  Boxed& operator=(const Boxed& other) {
    if (this != &other) p_ = std::make_unique<T>(*other.p_);
    return *this;
  }
  Boxed& operator=(Boxed&&) noexcept = default;

  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }

 private:
  std::unique_ptr<T> p_;
};

// Every result type. Which one a command gets is ResultOf<Command>
// (result_of.h); Submit hands a handler that type, never the variant.
using ResultValue =
    std::variant<Done, Granted, Released, Refreshed, EventOutcome, EventChange, Boxed<SessionInfo>,
                 ResourceList, Boxed<ResourceInfo>, PutDone, GotItems, Acked, Nacked, Purged,
                 Deleted, BarrierAborted, Notified, Passed, Boxed<FutureOutcome>, Boxed<TaskReport>,
                 TaskReports, Boxed<TakenTask>, TaskHeartbeat, TaskCompleted, TaskCancelled,
                 TimerScheduled, TimerCancelled>;

struct Result {
  absl::Status status;
  ResultValue value;

  bool ok() const { return status.ok(); }
  static Result Error(absl::Status s) { return Result{std::move(s), Done{}}; }
  template <class T>
  static Result Ok(T v) {
    return Result{absl::OkStatus(), std::move(v)};
  }
};

struct Reply {
  OpRef op;
  Result result;
};

struct Broadcast {
  Command command;
};

// A command for the shard that owns resource `name` (a timer's action),
// applied there with no reply expected.
struct Forward {
  std::string name;
  Command command;
};

using Effect = std::variant<Reply, Broadcast, Forward>;
using Effects = std::vector<Effect>;

}  // namespace baton::apply
