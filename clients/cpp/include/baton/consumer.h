// Consumer: the queue consumer, for code that prefers `Next()` to callbacks.
//
//   baton::Consumer consumer = jobs.OpenConsumer({.prefetch = 32});
//   for (auto d = consumer.Next(absl::Seconds(5)); d.ok(); d = consumer.Next(absl::Seconds(5))) {
//   Work(d->data); consumer.Ack(*d); }
//
// On the session stream (the default transport) Next takes items from a
// buffer filled by Gets of up to `prefetch` items (clients/README.md, "Queues
// at speed"): an item's Ack only queues its receipt, which rides on the
// consumer's next Get (GetRequest.ack), or goes out with the others as one
// Queues/Ack if no Get follows within 10 ms. On the unary transport items
// arrive in the background from Queues/Consume (at most `prefetch`
// unacknowledged) and Ack is a Queues/Ack call.
//
// Close (or destruction) sends the acknowledgements still queued and gives
// back (Nack) the items received but not handed out, so they are redelivered
// at once rather than when the session ends.
//
// Thread safety: Next and Ack may be called from several threads; Close from
// any (not from a completion callback).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/queue.h"

namespace baton {

// How a consumer's acknowledgements travelled (stream transport).
struct ConsumerStats {
  uint64_t gets = 0;
  // Acknowledgements the server confirmed: riding on a Get, or in an Ack.
  uint64_t acks_on_get = 0;
  uint64_t acks_flushed = 0;
  // Receipts the server refused (not in flight any more: acknowledged
  // already, or their lease ran out and the item went back).
  std::vector<uint64_t> ack_failed{};
};

class Consumer {
 public:
  Consumer(Consumer&&) noexcept = default;
  Consumer& operator=(Consumer&& other) noexcept;
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  ~Consumer();

  // The next item: waits up to `timeout` (kDeadlineExceeded), or returns how
  // the consumer ended (kAborted: session ended or queue deleted;
  // kUnavailable; kFailedPrecondition once closed) once the buffer is empty.
  absl::StatusOr<Delivery> Next(absl::Duration timeout = absl::InfiniteDuration());
  // Acknowledges an item Next returned (see above: on the stream it is queued
  // and the error of a refused receipt shows in stats().ack_failed).
  absl::Status Ack(const Delivery& delivery);
  // Ends the consumer: flushes the queued acknowledgements and gives back the
  // buffered items. Idempotent.
  void Close();
  ConsumerStats stats() const;

  struct Buffer;
  class GetLoop;

 private:
  friend class Queue;
  Consumer(Queue queue, std::shared_ptr<Buffer> buffer, Stream stream)
      : queue_(std::move(queue)), buffer_(std::move(buffer)), stream_(std::move(stream)) {}
  Consumer(Queue queue, std::shared_ptr<GetLoop> loop);

  Queue queue_;
  // The unary transport: a Consume stream into a buffer.
  std::shared_ptr<Buffer> buffer_;
  Stream stream_;
  // The stream transport: Gets with acks riding on them.
  std::shared_ptr<GetLoop> loop_;
};

}  // namespace baton
