#include "consumer_get_loop.h"

#include "absl/strings/str_cat.h"
#include "acquire.h"
#include "queue_get.h"

namespace baton {

namespace {

// How long an acknowledgement waits for a Get to ride on.
constexpr absl::Duration kAckFlushDelay = absl::Milliseconds(10);
// Receipts per Get or Ack (queue.proto).
constexpr size_t kMaxReceipts = 1000;

}  // namespace

Consumer::GetLoop::GetLoop(std::shared_ptr<internal::Core> core, std::string name,
                           std::optional<QueueConfig> config, ConsumeOptions options, Queue queue)
    : core_(std::move(core)),
      name_(std::move(name)),
      config_(config),
      options_(std::move(options)),
      queue_(std::move(queue)) {
  flusher_ = std::thread([this] { Flusher(); });
}

Consumer::GetLoop::~GetLoop() { Close(); }

absl::StatusOr<Delivery> Consumer::GetLoop::Next(absl::Duration timeout) {
  absl::Time deadline = internal::DeadlineIn(timeout);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (!items_.empty()) {
      Delivery d = std::move(items_.front());
      items_.pop_front();
      return d;
    }
    if (closed_) return absl::FailedPreconditionError("the consumer is closed");
    if (!error_.ok()) return error_;
    if (options_.cancel.cancelled()) return absl::CancelledError("the consumer was cancelled");
    if (getting_) {
      // Another thread's Get fills the buffer.
      if (deadline == absl::InfiniteFuture()) {
        cv_.wait(lock);
      } else if (cv_.wait_until(lock, internal::ToChrono(deadline)) == std::cv_status::timeout &&
                 items_.empty()) {
        return absl::DeadlineExceededError(
            absl::StrCat("no item within ", absl::FormatDuration(timeout)));
      }
      continue;
    }
    std::vector<uint64_t> acks;
    if (ride_) {
      size_t n = std::min(acks_.size(), kMaxReceipts);
      acks.assign(acks_.begin(), acks_.begin() + static_cast<std::ptrdiff_t>(n));
      acks_.erase(acks_.begin(), acks_.begin() + static_cast<std::ptrdiff_t>(n));
      if (acks_.empty()) first_ack_ = absl::InfiniteFuture();
    }
    getting_ = true;
    ++stats_.gets;
    lock.unlock();
    GetOptions get{.max_items = options_.prefetch == 0 ? 16u : options_.prefetch,
                   .timeout = timeout == absl::InfiniteDuration()
                                  ? absl::InfiniteDuration()
                                  : std::max(deadline - absl::Now(), absl::ZeroDuration()),
                   .cancel = cancel_,
                   .lease = options_.lease,
                   .use_session = options_.use_session,
                   .dead_letters = false,
                   .request_id = ""};
    // The user's token ends the Get too.
    auto forward = options_.cancel.OnCancel([token = cancel_] { token.Cancel(); });
    absl::StatusOr<v1::GetResponse> got =
        internal::Block<v1::GetResponse>([&](Callback<v1::GetResponse> done) {
          return internal::StartGet(core_, name_, config_, std::move(get), acks, std::move(done));
        });
    lock.lock();
    getting_ = false;
    cv_.notify_all();
    std::vector<uint64_t> resend;
    if (!got.ok()) {
      absl::Status status = got.status();
      if (status.code() == absl::StatusCode::kDeadlineExceeded && ride_) {
        // The server ran the Get and applied its acks (queue.proto) before
        // its timeout ran out.
        stats_.acks_on_get += acks.size();
      } else if (!acks.empty()) {
        // Whether they were applied is unknown: send them again (an ack of
        // an acknowledged receipt fails harmlessly).
        lock.unlock();
        SendAck(std::move(acks), /*again=*/true);
        lock.lock();
      }
      if (status.code() == absl::StatusCode::kDeadlineExceeded) return status;
      if (closed_) return absl::FailedPreconditionError("the consumer is closed");
      if (status.code() == absl::StatusCode::kCancelled) return status;
      error_ = status;
      return status;
    }
    NoteAcks(acks, *got, &resend);
    for (Delivery& d : internal::Deliveries(*got)) items_.push_back(std::move(d));
    if (!resend.empty()) {
      lock.unlock();
      SendAck(std::move(resend), /*again=*/false);
      lock.lock();
    }
  }
}

void Consumer::GetLoop::NoteAcks(const std::vector<uint64_t>& sent, const v1::GetResponse& response,
                                 std::vector<uint64_t>* resend) {
  if (sent.empty()) return;
  if (response.acked() + static_cast<uint64_t>(response.ack_failed_size()) < sent.size()) {
    // A server that predates GetRequest.ack ignored them.
    ride_ = false;
    *resend = sent;
    return;
  }
  stats_.acks_on_get += response.acked();
  for (uint64_t r : response.ack_failed()) stats_.ack_failed.push_back(r);
}

void Consumer::GetLoop::Ack(uint64_t receipt) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (acks_.empty()) first_ack_ = absl::Now() + kAckFlushDelay;
    acks_.push_back(receipt);
  }
  cv_.notify_all();
}

void Consumer::GetLoop::SendAck(std::vector<uint64_t> receipts, bool again) {
  for (size_t start = 0; start < receipts.size(); start += kMaxReceipts) {
    std::vector<uint64_t> part(receipts.begin() + static_cast<std::ptrdiff_t>(start),
                               receipts.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                      receipts.size(), start + kMaxReceipts)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++acks_in_flight_;
    }
    queue_.AsyncAck(part, [this, part, again](absl::StatusOr<AckResult> result) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        --acks_in_flight_;
        if (result.ok()) {
          stats_.acks_flushed += result->acked;
        } else if (result.status().code() == absl::StatusCode::kFailedPrecondition) {
          if (again) {
            // Sent again after a failed Get: those refused were applied by it.
            stats_.acks_on_get += part.size();
          } else {
            // Some were not in flight any more; the valid ones were acknowledged.
            stats_.ack_failed.insert(stats_.ack_failed.end(), part.begin(), part.end());
          }
        }
      }
      cv_.notify_all();
    });
  }
}

void Consumer::GetLoop::Flusher() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!closed_) {
    if (acks_.empty()) {
      cv_.wait(lock);
      continue;
    }
    if (absl::Now() < first_ack_) {
      cv_.wait_until(lock, internal::ToChrono(first_ack_));
      continue;
    }
    // No Get went out within the delay: one Ack for them all.
    std::vector<uint64_t> acks;
    acks.swap(acks_);
    first_ack_ = absl::InfiniteFuture();
    lock.unlock();
    SendAck(std::move(acks), /*again=*/false);
    lock.lock();
  }
}

void Consumer::GetLoop::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // A Get in flight ends; what crossed the cancel is given back by it.
  cancel_.Cancel();
  std::vector<uint64_t> acks, receipts;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !getting_; });
    acks.swap(acks_);
    for (const Delivery& d : items_) receipts.push_back(d.receipt);
    items_.clear();
  }
  SendAck(std::move(acks), /*again=*/false);
  // Give back what nobody took, so it is redelivered now rather than when
  // the session ends.
  if (!receipts.empty()) (void)queue_.Nack(std::move(receipts));
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return acks_in_flight_ == 0; });
}

ConsumerStats Consumer::GetLoop::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace baton
