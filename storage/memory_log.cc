#include "storage/memory_log.h"

#include <utility>
#include <vector>

namespace baton::storage {

MemoryLog::~MemoryLog() { Close(); }

absl::StatusOr<OpenResult> MemoryLog::Open(uint64_t after_index, const ReplayFn& /*replay*/,
                                           LogCallbacks callbacks) {
  if (thread_.joinable()) return absl::FailedPreconditionError("MemoryLog::Open called twice");
  callbacks_ = std::move(callbacks);
  next_index_ = after_index + 1;
  thread_ = std::thread(&MemoryLog::Run, this);
  return OpenResult{after_index, {}};
}

void MemoryLog::Propose(Proposal p) {
  if (!queue_.Push(p) && callbacks_.rejected) {
    callbacks_.rejected(p.cookie, absl::UnavailableError("log closed"));
  }
}

void MemoryLog::Compact(uint64_t /*through*/) {}

void MemoryLog::Close() {
  absl::MutexLock lock(&close_mu_);
  if (closed_) return;
  closed_ = true;
  queue_.Close();
  if (thread_.joinable()) thread_.join();
}

void MemoryLog::Run() {
  std::vector<Proposal> batch;
  for (;;) {
    ProposalQueue::Work work = queue_.TakeAll(&batch, /*compacted_through=*/~uint64_t{0});
    if (!batch.empty()) {
      entries_ += batch.size();
      ++batches_;
      for (Proposal& p : batch) callbacks_.committed(next_index_++, p.data, p.cookie);
      batch.clear();
    }
    if (work.closing) return;
  }
}

}  // namespace baton::storage
