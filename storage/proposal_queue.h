// ProposalQueue hands proposals from any number of proposer threads to one
// log thread. The log thread takes everything queued at once, which is what
// makes group commit work: while it writes and syncs one batch, the next
// batch accumulates here, so batches grow by themselves under load.
//
// Also carries the two other requests a log thread waits for: compaction
// and close. Thread-safe. Internal to baton_storage.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "storage/consensus_log.h"

namespace baton::storage {

class ProposalQueue {
 public:
  // What TakeAll returns besides the proposals.
  struct Work {
    uint64_t compact_through = 0;  // highest Compact(through) so far
    bool closing = false;          // Close was called: finish and exit
  };

  // Appends `p`. Returns false (and leaves `p` untouched) once Close was
  // called: the caller rejects it itself.
  bool Push(Proposal& p) ABSL_LOCKS_EXCLUDED(mu_);

  void Compact(uint64_t through) ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes the log thread for the last time; later Pushes fail.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until there is a proposal, a compaction request newer than
  // `compacted_through`, or Close; then moves every queued proposal to the
  // end of `*out` (which the caller has emptied, so its capacity is reused).
  Work TakeAll(std::vector<Proposal>* out, uint64_t compacted_through) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::vector<Proposal> queue_ ABSL_GUARDED_BY(mu_);
  uint64_t compact_through_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace baton::storage
