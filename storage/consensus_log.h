// ConsensusLog is the ordered log through which a server's commands pass
// before they are applied: a command is proposed, the log makes it durable
// (LocalLog: fdatasync on this node) or replicated (a future RaftLog: a
// quorum has it), and only then hands it back as committed, with its index.
// Applying in index order, on every restart and every replica, reproduces
// the same state (durability-ha.md §3.1, §3.6).
//
// Entries are opaque bytes; indexes start at 1 and have no gaps. The log
// knows nothing about commands, shards or protobuf.
//
// Threading: Propose and Compact may be called from any thread. Every
// callback runs on the log's own thread, one at a time, so a callback must
// not block for long (it delays the next batch) and must not call Close (it
// would wait for itself). A callback may call Propose.
//
// Implementations: LocalLog (single node, segmented WAL with group commit),
// MemoryLog (no disk: `--durability=none` and tests). A replicated log
// implements the same calls.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace baton::storage {

// One entry to append. `cookie` is opaque to the log and handed back with
// the outcome, so the proposer can find who is waiting for it.
struct Proposal {
  std::string data;
  uint64_t cookie = 0;
};

// Reads one entry found in the log at Open, before the log's thread starts.
// `data` is valid only during the call. An error stops Open, which returns
// it.
using ReplayFn = std::function<absl::Status(uint64_t index, std::string_view data)>;

// What the log reports after Open. Every function is called on the log's
// thread (LogCallbacks are the only way a proposal's outcome comes back).
struct LogCallbacks {
  // Called once per entry when it is committed (durable), in index order.
  // `data` is valid only during the call.
  std::function<void(uint64_t index, std::string_view data, uint64_t cookie)> committed;

  // Called once for a proposal that this log did not commit and will not
  // commit. `why` tells the caller what to do next:
  //   RESOURCE_EXHAUSTED  disk full: the entry was not written (the file was
  //                       truncated back); a retry may succeed later.
  //   INVALID_ARGUMENT    the entry is larger than the log accepts.
  //   UNAVAILABLE         the log stopped after a fatal error (or was
  //                       closed). If the entry was in the batch whose sync
  //                       failed, it may still be found on replay after a
  //                       restart: its outcome is unknown, so the client
  //                       must retry idempotently (same request id).
  std::function<void(uint64_t cookie, absl::Status why)> rejected;

  // Called at most once when the log fails in a way that must stop the
  // server (a sync failed, an I/O error that cannot be undone). Every
  // proposal still queued, and every later one, is then rejected with
  // UNAVAILABLE.
  std::function<void(absl::Status why)> fatal;
};

struct OpenResult {
  // Index of the last entry in the log, or `after_index` if the log holds
  // nothing after it. The next committed entry gets last_index + 1.
  uint64_t last_index = 0;
  // What recovery repaired or noticed (e.g. a torn tail it truncated), for
  // the server to log. Empty when there was nothing to say.
  std::vector<std::string> notes;
};

class ConsensusLog {
 public:
  virtual ~ConsensusLog() = default;

  // Reads every entry with index > after_index already in the log, in
  // order, calling replay(index, data) on the calling thread; then starts
  // the log's thread. `after_index` is the last index covered by the
  // snapshot the caller loaded (0 without one); entries up to it are not
  // replayed.
  //
  // Errors: DATA_LOSS when the log is damaged in a way recovery must not
  // paper over (corruption before the tail, a missing segment, a gap after
  // after_index), naming the file and byte offset; FAILED_PRECONDITION when
  // another process holds the log; any error returned by `replay`.
  // REQUIRES: called once, before any other call.
  [[nodiscard]] virtual absl::StatusOr<OpenResult> Open(uint64_t after_index,
                                                        const ReplayFn& replay,
                                                        LogCallbacks callbacks) = 0;

  // Queues a proposal; it is committed or rejected later, on the log's
  // thread. Proposals from one thread are committed in the order proposed.
  // After Close, the proposal is rejected at once, on the caller's thread,
  // with UNAVAILABLE. Thread-safe.
  virtual void Propose(Proposal p) = 0;

  // Allows the log to discard entries with index <= through (a snapshot
  // covers them). Work happens later on the log's thread; the log may keep
  // more than asked (LocalLog deletes whole segments only). Thread-safe.
  virtual void Compact(uint64_t through) = 0;

  // Commits (or rejects) everything already proposed, then stops the log's
  // thread. Idempotent. REQUIRES: not called from a callback.
  virtual void Close() = 0;
};

}  // namespace baton::storage
