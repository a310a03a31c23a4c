// Consumer: a blocking reader of a Queue's Consume stream, for code that
// prefers `Next()` to callbacks.
//
//   baton::Consumer consumer = jobs.OpenConsumer({.prefetch = 32});
//   while (auto d = consumer.Next(absl::Seconds(5)); d.ok()) { Work(d->data); jobs.Ack(*d); }
//
// Items arrive in the background (at most `prefetch` unacknowledged) and wait
// in a buffer until Next takes them. Close (or destruction) ends the stream
// and gives back (Nack) the items still in the buffer, so they are redelivered
// at once rather than when the session ends.
//
// Thread safety: Next may be called from several threads; Close from any.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/queue.h"

namespace baton {

class Consumer {
 public:
  Consumer(Consumer&&) noexcept = default;
  Consumer& operator=(Consumer&& other) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // The next item: waits up to `timeout` (kDeadlineExceeded), or returns how
  // the stream ended once it has and the buffer is empty.
  absl::StatusOr<Delivery> Next(absl::Duration timeout = absl::InfiniteDuration());
  // Ends the stream and gives back the buffered items. Idempotent.
  void Close();

  struct Buffer;

 private:
  friend class Queue;
  Consumer(Queue queue, std::shared_ptr<Buffer> buffer, Stream stream)
      : queue_(std::move(queue)), buffer_(std::move(buffer)), stream_(std::move(stream)) {}

  Queue queue_;
  std::shared_ptr<Buffer> buffer_;
  Stream stream_;
};

}  // namespace baton
