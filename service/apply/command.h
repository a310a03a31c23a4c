// Commands: every change of state, and every query, as plain data.
//
// The RPC layer validates a request and turns it into exactly one Command,
// which the owning shard's ShardState applies. Times in commands are absolute
// (microseconds on the server's monotonic clock), computed by the submitter;
// ShardState::Apply receives `now` separately and never reads a clock, so a
// logged command replays to the same state (DESIGN.md §4.3).
//
// To add a command: define its struct here, add it to the Command variant,
// handle it in ShardState::Apply (shard_state.cc), and give it a Result.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "runtime/clock.h"

namespace baton::apply {

enum class Kind { kLock, kSemaphore, kEvent };

// --- locks and semaphores (both are permit pools; a lock has capacity 1) ---

struct AcquirePermits {
  Kind kind = Kind::kLock;  // kLock or kSemaphore
  std::string name;
  int64_t capacity = 1;     // semaphores: declared capacity, 0 = as existing
  int64_t count = 1;
  uint64_t session = 0;     // owner session, 0: none
  Duration lease = 0;       // lease TTL, 0: none
  Time deadline = kForever; // <= now: try once
  std::string request_id;
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

// --- waits in general ---

// The submitting op's client went away: end its wait with CANCELLED. A no-op
// if the wait already ended (its outcome is then on the way).
struct CancelWait {};

// --- sessions: handled by the session's home shard ---

struct OpenSession {
  Duration ttl = 0;
  std::string label;
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

using Command =
    std::variant<AcquirePermits, ReleasePermits, RefreshPermits, Undeliver, SetEvent, ClearEvent,
                 WaitEvent, WatchEvent, UnwatchEvent, CancelWait, OpenSession, KeepAlive,
                 AttachStream, DetachStream, CloseSession, DescribeSession, SessionStarted,
                 SessionEnded, ListResources, DescribeResource, BeginShutdown>;

}  // namespace baton::apply
