// TaskQueue is the state of a work queue of Tasks: every task submitted to
// it (pending, running or done), the pending ones in line, and the workers
// waiting to take one.
//
// Invariants: a task is in `ready` exactly when it is pending and visible
// (not delayed); a running task has attempts >= 1; a done task never
// changes again. Each task has at most one timer at a time (`timer_at`):
// its delay while delayed, its lease while running, its reclaim time once
// done.
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/btree_map.h"
#include "service/primitives/archive.h"
#include "service/primitives/field_count.h"
#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

enum class TaskState : uint8_t { kPending = 1, kRunning, kSucceeded, kFailed, kCancelled };

struct Task {
  uint64_t seq = 0;
  std::string payload;
  TaskState state = TaskState::kPending;
  bool delayed = false;
  uint32_t attempts = 0;
  uint32_t max_attempts = 1;
  std::string group;
  bool shielded = false;
  bool cancel_requested = false;
  uint64_t session = 0;          // the worker's, while running
  std::string take_request_id;   // the running attempt's Take replay key
  Duration lease = 0;            // the worker's heartbeat lease, while running
  Duration run_timeout = 0;      // 0: an attempt may run as long as heartbeats come
  Time run_deadline = kForever;  // of the running attempt
  Time timer_at = kForever;
  Time submitted = 0;
  std::string result;
  int32_t error_code = 0;
  std::string error_message;
  uint64_t owner = 0;  // the worker's principal while running (Holding::owner); format 4 on

  bool done() const { return state >= TaskState::kSucceeded; }

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(seq, payload, archive::Enum(state, TaskState::kPending, TaskState::kCancelled), delayed,
       attempts, max_attempts, group, shielded, cancel_requested, session, take_request_id, lease,
       run_timeout, run_deadline, timer_at, submitted, result, error_code, error_message);
    if (ar.version() >= 4) ar(owner);
  }
};
static_assert(FieldCount<Task>() == 20, "store the new field in Task::Serialize");

// A Wait call over several tasks (asyncio.wait).
struct MultiWait {
  std::vector<uint64_t> seqs;
  uint8_t mode = 3;  // 1 first completed, 2 first exception, 3 all completed

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(seqs, mode);  // any value: the log accepts any (tasks.cc reads all but 1, 2 as 3)
  }
};
static_assert(FieldCount<MultiWait>() == 2, "store the new field in MultiWait::Serialize");

class TaskQueue {
 public:
  absl::btree_map<uint64_t, Task> tasks;           // by seq
  absl::btree_map<int64_t, uint64_t> ready;        // line order -> seq
  WaiterQueue takers;                              // workers waiting in Take
  WaiterQueue waits;                               // Wait calls
  absl::btree_map<uint64_t, MultiWait> wait_args;  // by waiter id

  // Puts a pending task in line: at the tail, or at the head (a task whose
  // attempt never reached a worker).
  void Ready(uint64_t seq, bool at_head) { ready.emplace(at_head ? --head_ : ++tail_, seq); }
  // Removes a task from the line if it is there.
  void Unready(uint64_t seq) {
    for (auto it = ready.begin(); it != ready.end(); ++it) {
      if (it->second == seq) {
        ready.erase(it);
        return;
      }
    }
  }
  uint64_t PopReady() {
    uint64_t seq = ready.begin()->second;
    ready.erase(ready.begin());
    return seq;
  }

  WaiterQueue& waiters() { return takers; }
  bool idle() const { return tasks.empty() && takers.empty() && waits.empty(); }

  // The stored form (archive.h).
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(tasks, ready, takers, waits, wait_args, head_, tail_);
  }

 private:
  int64_t head_ = 0;
  int64_t tail_ = 0;
};

}  // namespace baton::primitives
