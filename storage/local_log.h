// LocalLog is the single-node ConsensusLog: a segmented write-ahead log in
// one directory, with group commit. Format and recovery rules:
// storage/README.md and wal_format.h.
//
// Group commit: one writer thread takes everything proposed so far, frames
// it into one buffer, writes it with one pwrite, calls fdatasync once, and
// only then reports each entry as committed, in index order. It goes back
// for more as soon as it is done (no timer), so under load the next batch
// gathers while the current one syncs, and one sync serves many entries.
//
// Threading: as ConsensusLog. stats() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "metrics/histogram.h"
#include "storage/consensus_log.h"
#include "storage/file_lock.h"
#include "storage/file_system.h"
#include "storage/proposal_queue.h"

namespace baton::storage {

class LocalLog final : public ConsensusLog {
 public:
  struct Options {
    // Where the segments live; created (one level) if missing.
    std::string directory;
    // A new segment starts before the next batch once the current one has
    // reached this many bytes (so a segment exceeds it by at most one
    // batch). Default 64 MiB.
    uint64_t segment_bytes = 64ull << 20;
    // true: fdatasync every batch (and fsync the directory when segments
    // are created or deleted) before reporting it committed. false only
    // for tests and benchmarks: a crash then loses committed entries.
    bool sync = true;
    // Hold <directory>/LOCK (FileLock) from Open to Close, so that a second
    // server on the same directory fails at Open. Default true.
    bool lock_directory = true;
    // The system calls of the write path; tests pass one that injects
    // faults. Not owned; must outlive the log.
    FileSystem* fs = FileSystem::Default();
  };

  // Counters since Open. Updated by the log's thread; stats() returns a
  // consistent-enough copy (each counter is read atomically).
  struct Stats {
    uint64_t entries = 0;   // committed
    uint64_t batches = 0;   // batches written and synced
    uint64_t syncs = 0;     // fdatasync calls on segments (incl. after a truncate)
    uint64_t bytes = 0;     // record bytes committed (headers included)
    uint64_t rejected = 0;  // proposals reported through `rejected`
    uint64_t segments_created = 0;
    uint64_t segments_deleted = 0;
  };

  explicit LocalLog(Options options);
  ~LocalLog() override;  // Close()

  LocalLog(const LocalLog&) = delete;
  LocalLog& operator=(const LocalLog&) = delete;

  // ConsensusLog. Open also takes the directory lock (Options), and
  // truncates a torn tail of the last segment, reporting it in notes.
  [[nodiscard]] absl::StatusOr<OpenResult> Open(uint64_t after_index, const ReplayFn& replay,
                                                LogCallbacks callbacks) override;
  void Propose(Proposal p) override;
  void Compact(uint64_t through) override;
  void Close() override;

  Stats stats() const;
  // fdatasync latency of each batch, in nanoseconds, and entries per batch.
  // Any thread.
  const metrics::Histogram& sync_nanos() const { return sync_nanos_; }
  const metrics::Histogram& batch_entries() const { return batch_entries_; }
  // Record bytes committed since Open (stats().bytes, alone). Any thread.
  uint64_t bytes_committed() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  struct Segment {
    uint64_t seq = 0;
    uint64_t first_index = 0;
    std::string path;
  };

  std::string PathOf(uint64_t seq, uint64_t first_index) const;
  absl::Status Recover(uint64_t after_index, const ReplayFn& replay, OpenResult* result);
  absl::Status CreateSegment(uint64_t seq, uint64_t first_index);
  int SyncDirectory();

  // The log's thread.
  void Run();
  void WriteBatch(std::vector<Proposal>& batch);
  void WriteFailed(int err, size_t written, std::vector<Proposal>& batch);
  void CompactThrough(uint64_t through);
  void Fail(absl::Status why);
  void Reject(Proposal& p, const absl::Status& why);
  void RejectAll(std::vector<Proposal>& batch, const absl::Status& why);

  const Options options_;
  FileSystem* const fs_;
  LogCallbacks callbacks_;
  ProposalQueue queue_;
  std::optional<FileLock> lock_;
  std::thread thread_;
  absl::Mutex close_mu_;
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;

  // Owned by Open, then by the log's thread.
  std::vector<Segment> segments_;  // oldest first; back() is the one written
  int fd_ = -1;                    // back()'s descriptor
  uint64_t offset_ = 0;            // bytes of back() that hold synced records
  uint64_t next_index_ = 1;
  uint64_t compacted_through_ = 0;
  std::optional<absl::Status> failed_;  // set once, by Fail
  std::string buf_;                     // the batch being written
  std::vector<size_t> accepted_;        // positions in the batch that were framed

  std::atomic<uint64_t> entries_{0}, batches_{0}, syncs_{0}, bytes_{0}, rejected_{0},
      segments_created_{0}, segments_deleted_{0};
  // 50 µs .. ~3.3 s, and 1 .. 4096 entries.
  metrics::Histogram sync_nanos_{metrics::Histogram::Exponential(50'000, 2, 17)};
  metrics::Histogram batch_entries_{metrics::Histogram::Exponential(1, 2, 13)};
};

}  // namespace baton::storage
