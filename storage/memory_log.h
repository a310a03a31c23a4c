// MemoryLog is the ConsensusLog that keeps nothing: each proposal is
// "committed" as soon as its own thread takes it, and forgotten afterwards.
// It serves `--durability=none` (today's in-memory behaviour: a restart
// loses everything) and tests of the code above the log, with the same
// threading as LocalLog: proposals are queued, and the callbacks run on the
// log's own thread, in index order. Never inline on the proposer's thread,
// so a caller written against MemoryLog also works against LocalLog.
//
// Open replays nothing and numbers entries from after_index + 1. Compact is
// a no-op; nothing ever fails, so `fatal` is never called.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/consensus_log.h"
#include "storage/proposal_queue.h"

namespace baton::storage {

class MemoryLog final : public ConsensusLog {
 public:
  MemoryLog() = default;
  ~MemoryLog() override;  // Close()

  MemoryLog(const MemoryLog&) = delete;
  MemoryLog& operator=(const MemoryLog&) = delete;

  [[nodiscard]] absl::StatusOr<OpenResult> Open(uint64_t after_index, const ReplayFn& replay,
                                                LogCallbacks callbacks) override;
  void Propose(Proposal p) override;
  void Compact(uint64_t through) override;
  void Close() override;

  // Entries committed and batches taken since Open. Thread-safe.
  uint64_t entries() const { return entries_.load(std::memory_order_relaxed); }
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

 private:
  void Run();

  LogCallbacks callbacks_;
  ProposalQueue queue_;
  std::thread thread_;
  absl::Mutex close_mu_;
  bool closed_ ABSL_GUARDED_BY(close_mu_) = false;
  uint64_t next_index_ = 1;  // the log's thread only (after Open)
  std::atomic<uint64_t> entries_{0}, batches_{0};
};

}  // namespace baton::storage
