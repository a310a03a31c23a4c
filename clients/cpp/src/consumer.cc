#include "baton/consumer.h"

#include <condition_variable>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "consumer_get_loop.h"
#include "core.h"

namespace baton {

// What the stream's callbacks share with Next: a buffer of deliveries and
// how the stream ended.
struct Consumer::Buffer {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Delivery> items;
  bool ended = false;
  absl::Status end;
};

Consumer Queue::OpenConsumer(ConsumeOptions options) const {
  if (core_->stream() != nullptr) {
    return Consumer(*this, std::make_shared<Consumer::GetLoop>(core_, name_, config_,
                                                               std::move(options), *this));
  }
  auto buffer = std::make_shared<Consumer::Buffer>();
  Stream stream = Consume(
      std::move(options),
      [buffer](Delivery d) {
        {
          std::lock_guard<std::mutex> lock(buffer->mu);
          buffer->items.push_back(std::move(d));
        }
        buffer->cv.notify_all();
      },
      [buffer](absl::Status end) {
        {
          std::lock_guard<std::mutex> lock(buffer->mu);
          buffer->ended = true;
          buffer->end = std::move(end);
        }
        buffer->cv.notify_all();
      });
  return Consumer(*this, std::move(buffer), std::move(stream));
}

Consumer::Consumer(Queue queue, std::shared_ptr<GetLoop> loop)
    : queue_(std::move(queue)), loop_(std::move(loop)) {}

Consumer& Consumer::operator=(Consumer&& other) noexcept {
  if (this != &other) {
    Close();
    queue_ = std::move(other.queue_);
    buffer_ = std::move(other.buffer_);
    stream_ = std::move(other.stream_);
    loop_ = std::move(other.loop_);
  }
  return *this;
}

Consumer::~Consumer() { Close(); }

absl::Status Consumer::Ack(const Delivery& delivery) {
  if (loop_) {
    loop_->Ack(delivery.receipt);
    return absl::OkStatus();
  }
  return queue_.Ack(delivery).status();
}

ConsumerStats Consumer::stats() const { return loop_ ? loop_->stats() : ConsumerStats{}; }

absl::StatusOr<Delivery> Consumer::Next(absl::Duration timeout) {
  if (loop_) return loop_->Next(timeout);
  if (!buffer_) return absl::FailedPreconditionError("the consumer was moved from");
  std::unique_lock<std::mutex> lock(buffer_->mu);
  auto ready = [this] { return !buffer_->items.empty() || buffer_->ended; };
  if (timeout == absl::InfiniteDuration()) {
    buffer_->cv.wait(lock, ready);
  } else if (!buffer_->cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), ready)) {
    return absl::DeadlineExceededError(
        absl::StrCat("no item within ", absl::FormatDuration(timeout)));
  }
  if (!buffer_->items.empty()) {
    Delivery d = std::move(buffer_->items.front());
    buffer_->items.pop_front();
    return d;
  }
  if (buffer_->end.ok()) return absl::AbortedError("the consume stream ended");
  return buffer_->end;
}

void Consumer::Close() {
  if (loop_) {
    loop_->Close();
    return;
  }
  if (!buffer_) return;
  stream_.Cancel();
  (void)stream_.Wait();  // no delivery can arrive after this
  std::vector<uint64_t> receipts;
  {
    std::lock_guard<std::mutex> lock(buffer_->mu);
    for (const Delivery& d : buffer_->items) receipts.push_back(d.receipt);
    buffer_->items.clear();
  }
  // Give back what nobody took, so it is redelivered now rather than when
  // the session ends.
  if (!receipts.empty()) (void)queue_.Nack(std::move(receipts));
}

}  // namespace baton
