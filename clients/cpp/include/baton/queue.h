// Queue: a named asyncio.Queue / PriorityQueue / LifoQueue shared between
// processes, with acknowledgements and redelivery (baton.v1.Queues).
//
//   baton::Queue jobs = client.Queue("jobs", baton::QueueConfig{.max_deliveries = 3});
//   jobs.Put("resize 42.png");
//   auto got = jobs.Get();                 // waits while empty; items now in flight
//   for (const baton::Delivery& d : *got) { Work(d.data); jobs.Ack(d); }
//
// A got item stays *in flight*, owned by the client's session and/or a lease
// (the visibility timeout), until Ack (asyncio's task_done) or Nack; if the
// owner goes away first it is redelivered. After max_deliveries an item goes
// to the dead letters (Get with dead_letters reads them). Consume (and
// Consumer, consumer.h) streams items to a high-throughput consumer.
//
// Every call has an asynchronous form (Async*, see call.h).
//
// Thread safety: a cheap, copyable handle; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "baton/call.h"
#include "baton/stream.h"
#include "baton/wait_options.h"

namespace baton {

namespace internal {
class Core;
}  // namespace internal

class Consumer;

enum class QueueOrder {
  kFifo,      // asyncio.Queue
  kLifo,      // asyncio.LifoQueue
  kPriority,  // asyncio.PriorityQueue: lowest priority first, FIFO among equals
};

// Declares a queue (the first call that gives it wins; later ones must match).
struct QueueConfig {
  QueueOrder order = QueueOrder::kFifo;
  // Most items queued at once; 0: the server's limit.
  uint32_t maxsize = 0;
  // Largest payload in bytes; 0: the server's limit.
  uint32_t max_item_bytes = 0;
  // Deliveries after which an item is dead-lettered; 0: never.
  uint32_t max_deliveries = 0;
};

struct Item {
  std::string data{};  // bytes
  // PRIORITY queues: lower first.
  int64_t priority = 0;
  // Visible to Get only after this delay.
  absl::Duration delay = absl::ZeroDuration();
};

// An item as delivered by Get or Consume.
struct Delivery {
  // Pass to Ack or Nack; a new receipt per delivery.
  uint64_t receipt = 0;
  uint64_t item_id = 0;
  std::string data{};
  int64_t priority = 0;
  // 1 on the first delivery.
  uint32_t delivery_count = 0;
  // Time since the item was put.
  absl::Duration age{};
};

struct PutOptions {
  // How long to wait for room. Zero: put_nowait (kResourceExhausted if full).
  absl::Duration timeout = absl::InfiniteDuration();
  CancelToken cancel{};
};

struct PutResult {
  std::vector<uint64_t> item_ids{};  // in request order
  uint32_t size = 0;                 // items queued after this put
};

struct GetOptions {
  // Take up to this many items (at least one); at most 1000.
  uint32_t max_items = 1;
  // How long to wait while empty. Zero: get_nowait (kDeadlineExceeded if empty).
  absl::Duration timeout = absl::InfiniteDuration();
  CancelToken cancel{};
  // Own the items by a lease (the visibility timeout) too, or only
  // (use_session = false).
  std::optional<absl::Duration> lease{};
  bool use_session = true;
  // Read the dead letters instead (never waits).
  bool dead_letters = false;
  // Makes the Get safe to retry (queue.proto): empty, a fresh one per call.
  // The client re-sends it with the same id after a broken stream, and after
  // a cancel asks again with it to give back (Nack) what it may have got.
  std::string request_id{};
};

struct AckResult {
  uint32_t acked = 0;
  // Items put and neither acknowledged nor dead-lettered (what Join waits for).
  uint64_t unfinished = 0;
};

struct NackResult {
  uint32_t returned = 0;
  // Of those, moved to the dead letters (max_deliveries).
  uint32_t dead_lettered = 0;
};

struct ConsumeOptions {
  // Unacknowledged items the stream may hold; 0 means 16; at most 1000.
  uint32_t prefetch = 16;
  std::optional<absl::Duration> lease{};
  bool use_session = true;
  CancelToken cancel{};
};

class Queue {
 public:
  const std::string& name() const { return name_; }

  // Puts items, all or none, waiting for room (FIFO among putters). Errors:
  // kInvalidArgument (no items, too many, too large), kResourceExhausted
  // (zero timeout and full), kDeadlineExceeded, kCancelled,
  // kFailedPrecondition (config differs), kAborted (queue deleted).
  absl::StatusOr<PutResult> Put(std::vector<Item> items, PutOptions options = {}) const;
  absl::StatusOr<PutResult> Put(std::string data) const;
  // The batched put: up to 1000 items in one Put, all or none (Put of a
  // vector, named as in the other clients).
  absl::StatusOr<PutResult> PutMany(std::vector<Item> items, PutOptions options = {}) const;
  // Cancellation: the server drops the wait; a Put whose reply is lost takes
  // back its items. A reply that raced with the cancel is delivered as is.
  Call AsyncPut(std::vector<Item> items, PutOptions options, Callback<PutResult> done) const;

  // Takes up to max_items items, waiting while the queue is empty. Errors:
  // kDeadlineExceeded, kCancelled, kAborted (session ended, queue deleted).
  absl::StatusOr<std::vector<Delivery>> Get(GetOptions options = {}) const;
  // Get of exactly one item.
  absl::StatusOr<Delivery> GetOne(absl::Duration timeout = absl::InfiniteDuration()) const;
  // The asynchronous form. Cancellation: the server drops the wait; items
  // whose reply raced with the cancel are given back (Nack, which counts as a
  // delivery) before `done` gets kCancelled.
  Call AsyncGet(GetOptions options, Callback<std::vector<Delivery>> done) const;

  // Acknowledges deliveries: finished and gone. kFailedPrecondition for a
  // receipt no longer in flight (the valid ones are acknowledged anyway).
  absl::StatusOr<AckResult> Ack(std::vector<uint64_t> receipts) const;
  absl::StatusOr<AckResult> Ack(std::initializer_list<uint64_t> receipts) const;
  absl::StatusOr<AckResult> Ack(const Delivery& delivery) const;
  Call AsyncAck(std::vector<uint64_t> receipts, Callback<AckResult> done) const;
  // Returns deliveries to the head of the queue (visible again after `delay`).
  absl::StatusOr<NackResult> Nack(std::vector<uint64_t> receipts,
                                  absl::Duration delay = absl::ZeroDuration()) const;
  absl::StatusOr<NackResult> Nack(std::initializer_list<uint64_t> receipts,
                                  absl::Duration delay = absl::ZeroDuration()) const;
  absl::StatusOr<NackResult> Nack(const Delivery& delivery) const;
  Call AsyncNack(std::vector<uint64_t> receipts, absl::Duration delay,
                 Callback<NackResult> done) const;

  // Waits until every item put has been acknowledged or dead-lettered
  // (asyncio's join). At once for an unknown or empty queue.
  absl::StatusOr<GrantOutcome> Join(WaitOptions options = {}) const;
  Call AsyncJoin(WaitOptions options, Callback<GrantOutcome> done) const;

  // Drops the queued (not in-flight) items, or the dead letters; returns how
  // many.
  absl::StatusOr<uint32_t> Purge(bool dead_letters = false) const;
  // Deletes the queue: every pending Put, Get, Join, Consume ends kAborted.
  // Returns false if there was no such queue.
  absl::StatusOr<bool> Delete() const;

  // Streams items as they become ready while fewer than `prefetch` sent on
  // this stream are unacknowledged. `on_delivery` runs per item (acknowledge
  // with Ack); `on_end` once: kCancelled after Stream::Cancel, kAborted when
  // the session ends or the queue is deleted, kUnavailable on shutdown.
  // Items already delivered stay in flight when the stream ends.
  Stream Consume(ConsumeOptions options, std::function<void(Delivery)> on_delivery,
                 std::function<void(absl::Status)> on_end) const;
  // The consumer (see consumer.h): on the stream transport a loop of Gets of
  // up to `prefetch` items whose acknowledgements ride on the next Get; on
  // the unary transport a reader of Consume.
  Consumer OpenConsumer(ConsumeOptions options = {}) const;

 private:
  friend class Client;
  friend class Consumer;
  Queue(std::shared_ptr<internal::Core> core, std::string name, std::optional<QueueConfig> config)
      : core_(std::move(core)), name_(std::move(name)), config_(config) {}

  std::shared_ptr<internal::Core> core_;
  std::string name_;
  std::optional<QueueConfig> config_;
};

}  // namespace baton
