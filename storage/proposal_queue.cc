#include "storage/proposal_queue.h"

#include <utility>

namespace baton::storage {

bool ProposalQueue::Push(Proposal& p) {
  absl::MutexLock lock(&mu_);
  if (closing_) return false;
  queue_.push_back(std::move(p));
  return true;
}

void ProposalQueue::Compact(uint64_t through) {
  absl::MutexLock lock(&mu_);
  if (through > compact_through_) compact_through_ = through;
}

void ProposalQueue::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
}

ProposalQueue::Work ProposalQueue::TakeAll(std::vector<Proposal>* out, uint64_t compacted_through) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !queue_.empty() || compact_through_ > compacted_through || closing_;
  };
  mu_.Await(absl::Condition(&ready));
  if (out->empty()) {
    out->swap(queue_);  // keeps both vectors' capacity in circulation
  } else {
    for (Proposal& p : queue_) out->push_back(std::move(p));
    queue_.clear();
  }
  return Work{compact_through_, closing_};
}

}  // namespace baton::storage
