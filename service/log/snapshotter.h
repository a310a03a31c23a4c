// Snapshotter cuts a snapshot of every shard at one log index, writes it
// with storage::SnapshotStore, and lets the log drop what the previous
// snapshot covers (DESIGN.md §6; notes/durability-ha.md §3.7).
//
// The cut: after the log's thread dispatched entry `index` to its shard, it
// posts a marker to every shard's loop. A loop runs posted work in posting
// order, so each shard meets the marker having applied exactly the entries
// up to `index` that are its own, and serialises its part then (a pause
// proportional to that shard's state; no lock across shards). The last part
// to arrive wakes the snapshot thread, which writes the file, syncs it, and
// only then compacts the log: through the *previous* snapshot's index, so a
// damaged newest snapshot can still be replaced by the previous one plus
// the log.
//
// When: every `every_entries` committed entries, or as soon as the log has
// grown by `every_bytes` since the last snapshot (or since the start), so
// that large entries (big queue items) bound the log's size too; 0 turns
// either off. And on request (Request). At most one snapshot is in progress.
//
// Threading: AfterDispatch on the log's thread; Request and stats from any
// thread; Close from the server's thread once the loops have stopped.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "runtime/clock.h"
#include "storage/snapshot_store.h"

namespace baton::apply {
class Cluster;
}

namespace baton::log {

class Snapshotter {
 public:
  struct Stats {
    uint64_t taken = 0;        // snapshots written
    uint64_t failed = 0;       // snapshots that could not be written
    uint64_t last_index = 0;   // index the newest snapshot covers
    uint64_t last_bytes = 0;   // its size
    double last_cut_ms = 0;    // from marker to the last part serialised
    double last_write_ms = 0;  // writing and syncing the file
    uint64_t seen_index = 0;   // the last index AfterDispatch has handled
    bool cutting = false;      // a snapshot is being cut or written
  };

  // `last_index`: the index of the snapshot the server started from (0:
  // none). `log_bytes`: record bytes the log committed since it opened (any
  // thread; called by AfterDispatch; may be empty when every_bytes is 0).
  // `cluster` and `store` outlive this object.
  Snapshotter(apply::Cluster* cluster, storage::SnapshotStore* store, uint64_t every_entries,
              uint64_t every_bytes, std::function<uint64_t()> log_bytes, uint64_t last_index);
  ~Snapshotter();

  // The log dispatched entry `index` (cluster time `now`). Log thread.
  void AfterDispatch(uint64_t index, Time now);

  // Takes a snapshot at the next dispatched entry, even if one is not due.
  // `done` (may be empty) runs on the snapshot thread with the outcome and
  // the index covered. Any thread.
  void Request(std::function<void(absl::Status, uint64_t index)> done);

  // `kick` makes the log dispatch one more entry (the server submits a Tick):
  // called on the snapshot thread when requests arrived during a cut, which
  // AfterDispatch could not serve then. Set before the log opens.
  void SetKick(std::function<void()> kick);

  // Stops: no new snapshot starts; waits for the one being written. Parts
  // still to come from loops that have stopped are abandoned. REQUIRES: the
  // shard loops have stopped (nothing will call back into this object).
  void Close();

  Stats stats() const;

 private:
  struct Cut {
    uint64_t index = 0;
    Time now = 0;
    uint64_t log_bytes = 0;  // log_bytes_() at the cut
    int64_t started_us = 0;
    std::vector<std::string> parts;
    uint32_t missing = 0;
    std::vector<std::function<void(absl::Status, uint64_t)>> done;
  };
  void OnPart(uint32_t shard, std::string part);
  void Run();
  absl::Status Write(Cut& cut);

  apply::Cluster* const cluster_;
  storage::SnapshotStore* const store_;
  const uint64_t every_;
  const uint64_t every_bytes_;
  const std::function<uint64_t()> log_bytes_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool cutting_ = false;  // a marker was posted and parts are due
  bool ready_ = false;    // every part of cut_ is in: the thread writes it
  Cut cut_;
  std::vector<std::function<void(absl::Status, uint64_t)>> requested_;
  // The newest snapshot written (or started from). A new one compacts the
  // log through it, not through itself.
  uint64_t last_index_ = 0;
  // AfterDispatch's lock-free check: the index at which the next automatic
  // snapshot is due (UINT64_MAX: never), and whether a request waits.
  std::atomic<uint64_t> next_due_;
  // The same by size: log_bytes_() at which one is due (UINT64_MAX: never).
  std::atomic<uint64_t> next_due_bytes_;
  std::atomic<uint64_t> seen_index_{0};  // stats().seen_index
  std::atomic<bool> wanted_{false};
  std::function<void()> kick_;
  Stats stats_;
  std::thread thread_;
};

}  // namespace baton::log
