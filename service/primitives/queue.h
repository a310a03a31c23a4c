// Queue is the state of an asyncio.Queue / LifoQueue / PriorityQueue with
// acknowledgements: ready items in order, delayed items not yet visible,
// in-flight items got but not acknowledged, dead letters, and the three
// lines of waiters (getters, putters, joiners).
//
// Order: ready items are keyed by (priority, seq). FIFO puts take increasing
// seqs at the tail; LIFO puts and every return to the head take decreasing
// seqs, so the next item to get is always the smallest key. Priority only
// matters for PRIORITY queues (0 otherwise); FIFO among equal priorities.
//
// Invariants: queued() = ready + delayed <= maxsize except for returns
// (a nack or a redelivery never blocks and may overshoot); unfinished() =
// queued() + in-flight items that are not dead letters; item ids and
// receipts are unique per shard (the caller assigns them).
// Pure state: no clock, no I/O. Used only on its shard's loop thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "service/primitives/archive.h"
#include "service/primitives/field_count.h"
#include "service/primitives/types.h"
#include "service/primitives/waiter_queue.h"

namespace baton::primitives {

enum class QueueOrder : uint8_t { kFifo = 1, kLifo = 2, kPriority = 3 };

struct QueueOptions {
  QueueOrder order = QueueOrder::kFifo;
  uint32_t maxsize = 0;         // resolved: never 0
  uint32_t max_item_bytes = 0;  // resolved: never 0
  uint32_t max_deliveries = 0;  // 0: never dead-letter
  bool operator==(const QueueOptions&) const = default;

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(archive::Enum(order, QueueOrder::kFifo, QueueOrder::kPriority), maxsize, max_item_bytes,
       max_deliveries);
  }
};
static_assert(FieldCount<QueueOptions>() == 4, "store the new field in QueueOptions::Serialize");

struct QueueItem {
  uint64_t id = 0;
  std::string data;
  int64_t priority = 0;
  Time enqueued = 0;
  uint32_t deliveries = 0;

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(id, data, priority, enqueued, deliveries);
  }
};
static_assert(FieldCount<QueueItem>() == 5, "store the new field in QueueItem::Serialize");

struct InFlightItem {
  QueueItem item;
  uint64_t session = 0;
  Time expires = kForever;  // visibility timeout (lease)
  bool dead = false;        // taken from the dead letters
  OpRef consumer;           // the Consume stream it went to; id 0: a Get
  std::string request_id;   // the Get's replay key, may be empty
  uint64_t owner = 0;       // the consumer's principal (Holding::owner); format 4 on

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(item, session, expires, dead, consumer, request_id);
    if (ar.version() >= 4) ar(owner);
  }
};
static_assert(FieldCount<InFlightItem>() == 7, "store the new field in InFlightItem::Serialize");

// A Consume stream: items are pushed to it while it has credit.
struct Consumer {
  uint64_t session = 0;
  Duration lease = 0;
  uint32_t prefetch = 16;
  uint32_t outstanding = 0;  // items sent and not yet acked, nacked or returned
  uint64_t owner = 0;        // its principal (Holding::owner); format 4 on

  template <class Ar>
  void Serialize(Ar& ar) {
    ar(session, lease, prefetch, outstanding);
    if (ar.version() >= 4) ar(owner);
  }
};
static_assert(FieldCount<Consumer>() == 5, "store the new field in Consumer::Serialize");

class Queue {
 public:
  // `declared`: the options were given by the call that created the queue.
  // A queue made by a call without options (say, a consumer that came
  // first) takes the defaults until a call with options declares it.
  Queue(QueueOptions options, bool declared) : options_(options), declared_(declared) {}

  const QueueOptions& options() const { return options_; }
  bool declared() const { return declared_; }
  // Declares the options of an undeclared queue. REQUIRES: !declared() and
  // nothing queued, in flight or dead (the order could not change under
  // items already keyed by the old one).
  void Declare(QueueOptions options) {
    options_ = options;
    declared_ = true;
  }
  bool holds_items() const {
    return !ready_.empty() || !delayed_.empty() || !in_flight_.empty() || !dead_.empty();
  }

  size_t ready() const { return ready_.size(); }
  size_t delayed() const { return delayed_.size(); }
  size_t queued() const { return ready_.size() + delayed_.size(); }
  size_t in_flight() const { return in_flight_.size(); }
  size_t dead() const { return dead_.size(); }
  uint64_t unfinished() const { return queued() + in_flight_.size() - dead_in_flight_; }
  uint64_t bytes() const { return bytes_; }
  bool HasRoom(size_t n) const { return queued() + n <= options_.maxsize; }
  // The enqueue time of the oldest queued item, if any.
  std::optional<Time> OldestEnqueued() const;

  // Puts a ready item at its place by order, or at the head (a return).
  void PushReady(QueueItem item, bool at_head);
  // Parks an item until it becomes visible at `at`.
  void PushDelayed(QueueItem item, Time at);
  // Makes a delayed item ready (its delay passed). False if it is gone.
  bool PromoteDelayed(uint64_t id);
  // The visibility time of delayed item `id`, if it is delayed.
  std::optional<Time> DelayedAt(uint64_t id) const;
  // Removes a queued (ready or delayed) item, e.g. when its put is rolled
  // back. Returns it if it was there.
  std::optional<QueueItem> RemoveQueued(uint64_t id);
  // REQUIRES: ready() > 0.
  QueueItem PopReady();
  // Removes every queued item; returns the delayed ones' (id, at) pairs so
  // the caller can cancel their timers.
  std::vector<std::pair<uint64_t, Time>> Purge();

  // Dead letters, FIFO.
  void PushDead(QueueItem item, bool at_head);
  QueueItem PopDead();  // REQUIRES: dead() > 0
  size_t PurgeDead();

  // In flight.
  void AddInFlight(uint64_t receipt, InFlightItem f);
  std::optional<InFlightItem> TakeInFlight(uint64_t receipt);
  const absl::btree_map<uint64_t, InFlightItem>& in_flight_items() const { return in_flight_; }

  // Payload bytes of this queue already counted in its shard's total; the
  // shard brings it up to date (ShardState::AccountQueue).
  uint64_t accounted_bytes = 0;

  // Counters for Describe.
  uint64_t total_put = 0;
  uint64_t total_acked = 0;

  WaiterQueue getters;
  WaiterQueue putters;
  WaiterQueue joiners;
  // Consume streams by (shard, op id); served in turn after `consumer_cursor`.
  absl::btree_map<std::pair<uint32_t, uint64_t>, Consumer> consumers;
  std::pair<uint32_t, uint64_t> consumer_cursor{0, 0};
  // Items of parked putters (and each item's delay), by waiter id.
  struct PendingPut {
    std::vector<QueueItem> items;
    std::vector<Duration> delays;

    template <class Ar>
    void Serialize(Ar& ar) {
      ar(items, delays);
    }
  };
  absl::btree_map<uint64_t, PendingPut> pending_puts;

  // Nothing queued, in flight or dead, nobody waiting: the default state.
  bool idle() const {
    return ready_.empty() && delayed_.empty() && in_flight_.empty() && dead_.empty() &&
           getters.empty() && putters.empty() && joiners.empty() && consumers.empty();
  }

  // The stored form (archive.h). ready_key_ and delayed_at_ are indexes of
  // ready_ and delayed_, rebuilt on load.
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(options_, declared_, ready_, delayed_, dead_, in_flight_, dead_in_flight_, bytes_, tail_seq_,
       head_seq_, dead_tail_, dead_head_, accounted_bytes, total_put, total_acked, getters, putters,
       joiners, consumers, consumer_cursor, pending_puts);
    if constexpr (Ar::kLoading) {
      ready_key_.clear();
      delayed_at_.clear();
      for (const auto& [key, item] : ready_) {
        ar.Check(ready_key_.emplace(item.id, key).second, "queue item id repeated");
      }
      for (const auto& [key, item] : delayed_) {
        ar.Check(key.second == item.id && delayed_at_.emplace(item.id, key.first).second,
                 "delayed item id repeated or mismatched");
      }
    }
  }

 private:
  using Key = std::pair<int64_t, int64_t>;  // (priority, seq)

  QueueOptions options_;
  bool declared_;
  absl::btree_map<Key, QueueItem> ready_;
  absl::btree_map<uint64_t, Key> ready_key_;  // item id -> key
  absl::btree_map<std::pair<Time, uint64_t>, QueueItem> delayed_;
  absl::btree_map<uint64_t, Time> delayed_at_;  // item id -> visibility time
  absl::btree_map<int64_t, QueueItem> dead_;
  absl::btree_map<uint64_t, InFlightItem> in_flight_;
  size_t dead_in_flight_ = 0;
  uint64_t bytes_ = 0;  // payload bytes held (queued, in flight, dead)
  int64_t tail_seq_ = 0;
  int64_t head_seq_ = 0;
  int64_t dead_tail_ = 0;
  int64_t dead_head_ = 0;
};

}  // namespace baton::primitives
