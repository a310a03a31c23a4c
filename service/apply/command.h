// Commands: every change of state, and every query, as plain data.
//
// The RPC layer validates a request and turns it into exactly one Command,
// which the owning shard's ShardState applies. Times in commands are absolute
// (microseconds on the server's monotonic clock), computed by the submitter;
// ShardState::Apply receives `now` separately and never reads a clock, so a
// logged command replays to the same state (DESIGN.md §4.3).
//
// To add a command: define its struct here, add it to the Command variant,
// declare its gates (kGatesOf, below) if it waits or creates, give it a
// result (result_of.h), handle it with a ShardState::Do overload, and encode
// it (codec.cc, proto/baton/internal/v1/command.proto).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "runtime/clock.h"
#include "service/primitives/future.h"
#include "service/primitives/queue.h"
#include "service/primitives/task_queue.h"

namespace baton::apply {

enum class Kind { kLock, kSemaphore, kEvent, kQueue, kFuture, kBarrier, kTimer, kTasks };
inline constexpr size_t kKindCount = 8;
// "lock", "semaphore", ... (as in metrics labels and the CLI).
constexpr const char* KindName(Kind k) {
  constexpr const char* kNames[kKindCount] = {"lock",   "semaphore", "event", "queue",
                                              "future", "barrier",   "timer", "tasks"};
  return kNames[static_cast<size_t>(k)];
}

// --- locks and semaphores (both are permit pools; a lock has capacity 1) ---

struct AcquirePermits {
  Kind kind = Kind::kLock;  // kLock or kSemaphore
  std::string name;
  int64_t capacity = 1;  // semaphores: declared capacity, 0 = as existing
  int64_t count = 1;
  uint64_t session = 0;      // owner session, 0: none
  Duration lease = 0;        // lease TTL, 0: none
  Time deadline = kForever;  // <= now: try once
  std::string request_id;
  // The caller asked not to wait (a zero timeout), as a client's recovery
  // does; a deadline that had passed by the time the command was built is
  // not that (ShardState::Superseded).
  bool nowait = false;
};

struct ReleasePermits {
  Kind kind = Kind::kLock;
  std::string name;
  uint64_t token = 0;
  uint64_t session = 0;
  int64_t count = 0;  // 0: all permits of the holding
};

struct RefreshPermits {
  Kind kind = Kind::kLock;
  std::string name;
  uint64_t token = 0;
  uint64_t session = 0;
  Duration lease = 0;
};

// A grant that its RPC could not deliver (client gone, deadline passed): roll
// it back as if released. A no-op if the holding is already gone, or if a
// later reply (a replay to a retry) has delivered it since.
struct Undeliver {
  Kind kind = Kind::kLock;
  std::string name;
  uint64_t token = 0;
  uint64_t delivery = 0;  // Granted::delivery of the reply that was lost
};

// --- events ---

struct SetEvent {
  std::string name;
};
struct ClearEvent {
  std::string name;
};
struct WaitEvent {
  std::string name;
  uint64_t session = 0;
  Time deadline = kForever;
};
// Subscribes the submitting stream to changes; its first reply is the
// current state. Every later change is another reply to the same op.
struct WatchEvent {
  std::string name;
};
struct UnwatchEvent {
  std::string name;
};

// --- queues (queues.cc) ---

struct NewQueueItem {
  std::string data;
  int64_t priority = 0;
  Duration delay = 0;
};

// `options` set: declare the queue, or check the declared options.
struct PutItems {
  std::string name;
  std::optional<primitives::QueueOptions> options;
  std::vector<NewQueueItem> items;
  Time deadline = kForever;
  bool nowait = false;  // a zero timeout: full is RESOURCE_EXHAUSTED, not a timeout
};
struct GetItems {
  std::string name;
  std::optional<primitives::QueueOptions> options;
  uint32_t max_items = 1;
  uint64_t session = 0;
  Duration lease = 0;  // visibility timeout, 0: none (session-owned)
  Time deadline = kForever;
  bool dead_letters = false;
  std::string request_id;  // replay key, may be empty
  // Receipts to acknowledge first, as AckItems does (acks riding on the
  // consumer's next Get).
  std::vector<uint64_t> ack;
  bool nowait = false;  // as AcquirePermits::nowait
};
struct AckItems {
  std::string name;
  std::vector<uint64_t> receipts;
};
struct NackItems {
  std::string name;
  std::vector<uint64_t> receipts;
  Duration delay = 0;
};
struct JoinQueue {
  std::string name;
  Time deadline = kForever;
};
struct PurgeQueue {
  std::string name;
  bool dead_letters = false;
};
struct DeleteQueue {
  std::string name;
};
// Opens a Consume stream: the submitting op receives a GotItems result per
// push until StopConsuming, or an error that ends the stream.
struct ConsumeQueue {
  std::string name;
  std::optional<primitives::QueueOptions> options;
  uint64_t session = 0;
  Duration lease = 0;
  uint32_t prefetch = 16;
};
struct StopConsuming {
  std::string name;
};
// A Get reply that never reached its client: the items go back to the
// head, their delivery not counted.
struct UndeliverItems {
  std::string name;
  std::vector<uint64_t> receipts;
};
// A Put reply that never reached its client: its items still queued are
// taken back.
struct UndeliverPut {
  std::string name;
  std::vector<uint64_t> item_ids;
};

// --- futures (futures.cc) ---

struct CompleteFuture {
  std::string name;
  primitives::FutureValue value;  // kResult, kException or kCancelled
  Duration retention = 0;         // 0: the server's default
};
struct AwaitFuture {
  std::string name;
  uint64_t session = 0;
  Time deadline = kForever;
};

// --- barriers (barriers.cc) ---

struct BarrierWait {
  std::string name;
  uint32_t parties = 0;  // 0: as declared
  uint64_t session = 0;
  Time deadline = kForever;
};
struct AbortBarrier {
  std::string name;
};
struct ResetBarrier {
  std::string name;
};

// --- conditions, which live in their lock (conditions.cc) ---

struct ConditionWait {
  std::string lock;
  std::string condition;
  uint64_t token = 0;
  uint64_t session = 0;
  Duration lease = 0;            // for the re-acquired lock; 0: as the holding had
  Time deadline = kForever;      // the request's timeout: a notify-wait that runs out re-acquires
  Time rpc_deadline = kForever;  // the gRPC deadline (less a margin): the wait just ends
};
struct Notify {
  std::string lock;
  std::string condition;
  uint64_t token = 0;
  uint64_t session = 0;
  uint32_t n = 1;
  bool all = false;
};

// --- tasks (tasks.cc); a task is (queue, seq) ---

struct SubmitTask {
  std::string queue;
  std::string payload;
  Duration delay = 0;
  uint32_t max_attempts = 1;
  std::string group;
  bool shielded = false;
  Duration run_timeout = 0;
};
struct TakeTask {
  std::string queue;
  uint64_t session = 0;
  Duration lease = 0;
  Time deadline = kForever;
  std::string request_id;  // replay key, may be empty
  bool nowait = false;     // as AcquirePermits::nowait
};
// A Take reply that never reached its worker: the task goes back to the
// head of the line, the attempt not counted.
struct UndeliverTask {
  std::string queue;
  uint64_t seq = 0;
  uint32_t attempt = 0;
};
struct HeartbeatTask {
  std::string queue;
  uint64_t seq = 0;
  uint32_t attempt = 0;
};
struct CompleteTask {
  std::string queue;
  uint64_t seq = 0;
  uint32_t attempt = 0;
  bool failed = false;
  std::string result;
  int32_t error_code = 0;
  std::string error_message;
  bool final = false;  // a failure that must not be retried
  // Back to the head of the pending tasks, the attempt uncounted (as
  // UndeliverTask): a worker giving it back, a client rolling back a Take.
  bool give_back = false;
};
struct AwaitTask {
  std::string queue;
  uint64_t seq = 0;
  Time deadline = kForever;
};
struct CancelTask {
  std::string queue;
  uint64_t seq = 0;
};
struct WaitTasks {
  std::string queue;
  std::vector<uint64_t> seqs;
  std::string group;  // if set: the group's tasks instead of `seqs`
  uint8_t mode = 3;   // 1 first completed, 2 first exception, 3 all completed
  Time deadline = kForever;
};

// --- timers (timers.cc) ---

struct Command;  // the action a timer fires, below
struct ScheduleTimer {
  std::string name;
  Time due = 0;
  Duration every = 0;  // 0: one-shot
  bool replace = false;
  // What to apply when it fires, and the resource it acts on (which decides
  // the shard the action goes to).
  std::string target;
  std::shared_ptr<const Command> action;
};
struct CancelTimer {
  std::string name;
};

// --- waits in general ---

// The submitting op's client went away: end its wait with CANCELLED. A no-op
// if the wait already ended (its outcome is then on the way).
struct CancelWait {};

// --- sessions: handled by the session's home shard ---

struct OpenSession {
  Duration ttl = 0;
  std::string label;
  // The principal that opens it (security/auth.h), who alone may use it
  // (and admins); empty when the server checks no principals.
  std::string owner = "";
  // Random bits the id is made of (drawn by the RPC layer before the command
  // is logged, so replay makes the same id): session ids are unguessable.
  // 0 (tests, logs written before): ids follow cluster time.
  uint64_t nonce = 0;
  // The owner's limit on live sessions (the policy's sessions=N), 0: none.
  // The RPC layer homes every session of a limited owner on one shard
  // (rpc::Env::SessionHome), whose count of them is then exact.
  uint64_t max_sessions = 0;
};
struct KeepAlive {
  uint64_t session = 0;
};
struct AttachStream {
  uint64_t session = 0;
};
struct DetachStream {
  uint64_t session = 0;
};
struct CloseSession {
  uint64_t session = 0;
};
struct DescribeSession {
  uint64_t session = 0;
};

// --- broadcasts from a session's home shard to every shard ---

struct SessionStarted {
  uint64_t session = 0;
  std::string owner = "";  // OpenSession::owner
};
struct SessionEnded {
  uint64_t session = 0;
};

// --- inspection ---

struct ListResources {
  std::optional<Kind> kind;
  std::string prefix;
  std::string after;  // exclusive; "" = from the start
  uint32_t limit = 100;
};
struct DescribeResource {
  std::string name;
};

// --- lifecycle ---

// Ends every pending wait and watch with UNAVAILABLE; later waits are
// refused with UNAVAILABLE.
struct BeginShutdown {};

// Time has passed: fires every timer of the shard due at the entry's time.
// Proposed by the shard when its earliest deadline is due (only the log
// decides when time passes, so replay fires the same timers).
struct Tick {};

// The server restarted and replayed its log: ends every wait, watch and
// Consume stream of the previous process (their RPCs are gone), accepts
// work again after a logged BeginShutdown, and gives every session homed
// here a fresh TTL with no stream attached. Waits that a retry can name
// (a lock or semaphore acquire, a Get or a Take with a request_id) stay in
// line as orphans for `orphan_grace`: a retry with the same session and
// request_id takes the wait over, keeping its place; one that nobody
// claims leaves the line, and a grant made to it is rolled back, when the
// grace ends. 0: end them all, as for every other wait.
struct Recover {
  Duration orphan_grace = 0;
};

// Ends a semaphore's declaration: the semaphore and its capacity are gone,
// and the name may be declared anew. Refused while permits are held.
struct DeleteSemaphore {
  std::string name;
};

using CommandVariant =
    std::variant<AcquirePermits, ReleasePermits, RefreshPermits, Undeliver, SetEvent, ClearEvent,
                 WaitEvent, WatchEvent, UnwatchEvent, CancelWait, OpenSession, KeepAlive,
                 AttachStream, DetachStream, CloseSession, DescribeSession, SessionStarted,
                 SessionEnded, ListResources, DescribeResource, BeginShutdown, PutItems, GetItems,
                 AckItems, NackItems, JoinQueue, PurgeQueue, DeleteQueue, UndeliverItems,
                 UndeliverPut, CompleteFuture, AwaitFuture, BarrierWait, AbortBarrier, ResetBarrier,
                 ConditionWait, Notify, ScheduleTimer, CancelTimer, SubmitTask, TakeTask,
                 UndeliverTask, HeartbeatTask, CompleteTask, AwaitTask, CancelTask, WaitTasks,
                 ConsumeQueue, StopConsuming, Tick, Recover, DeleteSemaphore>;

// A Command is one of the structs above. (A struct rather than an alias, so
// that a timer's action can name it before it is complete.)
struct Command : CommandVariant {
  using CommandVariant::CommandVariant;
  using CommandVariant::operator=;

  // Who asked: security::OwnerTag of the principal's name, 0 when the
  // server checks no principals (and in commands the server makes itself).
  // What a command creates that only its creator may use afterwards (a
  // holding, an item in flight, a running task) records it, and a command
  // that uses such a thing must carry the same tag, or `admin`.
  uint64_t principal = 0;
  bool admin = false;
  // The principal's limit on live names it created (the policy's `limit
  // ... names=N`), 0: none. Logged with the command, so that replay refuses
  // the same creations; each shard enforces its share (ShardState).
  uint64_t names_limit = 0;
};

// What the dispatcher (ShardState::Apply) checks before a command's handler
// runs, so that no handler repeats it:
//   kRefusedAtShutdown: after BeginShutdown the command is UNAVAILABLE ("server
//     shutting down"): everything that starts a wait, a watch or a Consume
//     stream, opens a session, or creates work (Put, Submit, Schedule);
//   kNeedsLiveSession: the command's `session` (0: none) must be alive, else
//     NOT_FOUND, checked after the shutdown gate.
enum Gate : uint8_t { kRefusedAtShutdown = 1, kNeedsLiveSession = 2 };
template <class C>
inline constexpr uint8_t kGatesOf = 0;
#define BATON_GATES(Cmd, gates) \
  template <>                   \
  inline constexpr uint8_t kGatesOf<Cmd> = gates
BATON_GATES(AcquirePermits, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(ConditionWait, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(WaitEvent, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(WatchEvent, kRefusedAtShutdown);
BATON_GATES(PutItems, kRefusedAtShutdown);
BATON_GATES(GetItems, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(ConsumeQueue, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(JoinQueue, kRefusedAtShutdown);
BATON_GATES(AwaitFuture, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(BarrierWait, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(ScheduleTimer, kRefusedAtShutdown);
BATON_GATES(SubmitTask, kRefusedAtShutdown);
BATON_GATES(TakeTask, kRefusedAtShutdown | kNeedsLiveSession);
BATON_GATES(AwaitTask, kRefusedAtShutdown);
BATON_GATES(WaitTasks, kRefusedAtShutdown);
BATON_GATES(OpenSession, kRefusedAtShutdown);
#undef BATON_GATES

// Rollbacks: what an op sends when its reply did not reach its requester, to
// undo what the reply handed out. One that carries its op (origin) is
// answered Done once applied (ShardState::Apply), so a stream op answers
// CANCELLED only after it; like every command without a waiter, a rollback
// the log rejects is proposed again later (Shard::OnRejected).
template <class C>
inline constexpr bool kIsRollback =
    std::is_same_v<C, Undeliver> || std::is_same_v<C, UndeliverItems> ||
    std::is_same_v<C, UndeliverPut> || std::is_same_v<C, UndeliverTask>;
inline bool IsRollback(const Command& c) {
  return std::holds_alternative<Undeliver>(c) || std::holds_alternative<UndeliverItems>(c) ||
         std::holds_alternative<UndeliverPut>(c) || std::holds_alternative<UndeliverTask>(c);
}

// Queries read state and change nothing: they are applied where the resource
// lives without passing through the log. Every other command is a change,
// applied only once the log has made it durable (DESIGN.md §4.3-4.4).
inline bool IsQuery(const Command& c) {
  return std::holds_alternative<ListResources>(c) || std::holds_alternative<DescribeResource>(c) ||
         std::holds_alternative<DescribeSession>(c);
}

}  // namespace baton::apply
