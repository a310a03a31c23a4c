// Queues: Put, Get, Ack, Nack, Join, Purge, Delete, the rollbacks of lost
// replies, delayed items and visibility timeouts (primitives/queue.h).
//
// Every operation ends by Pump(), which serves waiting putters and getters in
// FIFO order while they can be served and releases joiners once nothing is
// unfinished, so no state change can leave a waiter that could go on parked.
// Pump also brings the shard's byte count (queue_bytes_) up to date, and so
// does the end-of-command sweep before it erases a queue (ReclaimTouched):
// every operation that changes a queue's payload ends in one of them.
#include "absl/strings/str_cat.h"
#include "service/apply/shard_state.h"

namespace baton::apply {

using primitives::InFlightItem;
using primitives::Queue;
using primitives::QueueItem;
using primitives::QueueOptions;
using primitives::Waiter;

namespace {

const char* OrderName(primitives::QueueOrder o) {
  switch (o) {
    case primitives::QueueOrder::kFifo:
      return "FIFO";
    case primitives::QueueOrder::kLifo:
      return "LIFO";
    case primitives::QueueOrder::kPriority:
      return "PRIORITY";
  }
  return "?";
}

std::string Describe(const QueueOptions& o) {
  return absl::StrCat("order ", OrderName(o.order), ", maxsize ", o.maxsize, ", max_item_bytes ",
                      o.max_item_bytes, ", max_deliveries ", o.max_deliveries);
}

}  // namespace

absl::StatusOr<ShardState::Resource*> ShardState::LookupQueue(
    const std::string& name, const std::optional<QueueOptions>& options, bool create) {
  auto r = Lookup(name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return r.status();
  if (*r != nullptr) {
    Queue& q = (*r)->queue();
    if (options && !q.declared() && !q.holds_items()) {
      q.Declare(*options);
      return *r;
    }
    const QueueOptions& declared = q.options();
    if (options && !(*options == declared)) {
      return absl::FailedPreconditionError(
          absl::StrCat("queue '", name, "' was declared with ", Describe(declared), ", not ",
                       Describe(*options), " (omit options to use the declared ones)"));
    }
    return *r;
  }
  if (!create) return nullptr;
  QueueOptions o;
  if (options) o = *options;
  if (o.maxsize == 0) o.maxsize = limits_.max_queue_items;
  if (o.max_item_bytes == 0) o.max_item_bytes = limits_.max_item_bytes;
  return AddResource(name, Resource{Kind::kQueue, Queue(o, options.has_value()), {}, 0});
}

std::vector<uint64_t> ShardState::Enqueue(const std::string& name, Queue& q,
                                          std::vector<QueueItem> items,
                                          const std::vector<Duration>& delays, Time now) {
  std::vector<uint64_t> ids;
  ids.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    QueueItem& item = items[i];
    item.id = NextId(next_item_id_);
    item.enqueued = now;
    ids.push_back(item.id);
    ++q.total_put;
    Place(name, q, std::move(item), i < delays.size() ? delays[i] : 0, /*at_head=*/false, now);
  }
  return ids;
}

void ShardState::Place(const std::string& name, Queue& q, QueueItem item, Duration delay,
                       bool at_head, Time now) {
  if (delay <= 0) return q.PushReady(std::move(item), at_head);
  Time at = AddSaturating(now, delay);
  AddTimer(at, TimerKind::kQueueDelay, item.id);
  delayed_names_[item.id] = name;
  q.PushDelayed(std::move(item), at);
}

std::vector<DeliveredItem> ShardState::ReplayGet(const Queue& q, uint64_t session,
                                                 const std::string& request_id, Time now) const {
  std::vector<DeliveredItem> got;
  for (const auto& [receipt, f] : q.in_flight_items()) {
    if (f.consumer.id != 0 || f.session != session || f.request_id != request_id ||
        f.owner != caller_) {
      continue;
    }
    got.push_back(DeliveredItem{receipt, f.item.id, f.item.data, f.item.priority, f.item.deliveries,
                                now - f.item.enqueued});
  }
  return got;
}

std::vector<DeliveredItem> ShardState::TakeItems(const std::string& name, Queue& q, uint32_t max,
                                                 bool dead, uint64_t session, uint64_t owner,
                                                 Duration lease, Time now, OpRef consumer,
                                                 const std::string& request_id) {
  std::vector<DeliveredItem> got;
  while (got.size() < max && (dead ? q.dead() : q.ready()) > 0) {
    QueueItem item = dead ? q.PopDead() : q.PopReady();
    ++item.deliveries;
    uint64_t receipt = NextId(next_receipt_);
    Time expires = lease > 0 ? AddSaturating(now, lease) : kForever;
    if (expires != kForever) {
      AddTimer(expires, TimerKind::kInFlight, receipt);
      receipt_names_[receipt] = name;
    }
    Ref(session, name);
    got.push_back(DeliveredItem{receipt, item.id, item.data, item.priority, item.deliveries,
                                now - item.enqueued});
    q.AddInFlight(receipt, InFlightItem{std::move(item), session, expires, dead, consumer,
                                        request_id, owner});
  }
  return got;
}

bool ShardState::ReturnItem(const std::string& name, Queue& q, uint64_t receipt, bool counted,
                            Duration delay, Time now) {
  std::optional<InFlightItem> f = q.TakeInFlight(receipt);
  if (!f) return false;
  if (f->expires != kForever) {
    RemoveTimer(f->expires, TimerKind::kInFlight, receipt);
    receipt_names_.erase(receipt);
  }
  Unref(f->session, name);
  QueueItem item = std::move(f->item);
  if (!counted) --item.deliveries;  // it never reached the consumer
  if (f->dead) {
    q.PushDead(std::move(item), /*at_head=*/true);
    return false;
  }
  uint32_t max = q.options().max_deliveries;
  if (counted && max > 0 && item.deliveries >= max) {
    q.PushDead(std::move(item), /*at_head=*/false);
    return true;
  }
  Place(name, q, std::move(item), delay, /*at_head=*/true, now);
  return false;
}

void ShardState::Pump(const std::string& name, Queue& q, Time now, Effects& out) {
  bool progress = true;
  while (progress) {
    progress = false;
    while (!q.putters.empty()) {
      uint64_t id = q.putters.front().id;
      auto pending = q.pending_puts.find(id);
      if (!q.HasRoom(pending->second.items.size())) break;
      Queue::PendingPut put = std::move(pending->second);
      q.pending_puts.erase(pending);
      Waiter w = q.putters.PopFront();
      Unpark(name, w);
      std::vector<QueueItem> items = std::move(put.items);
      std::vector<Duration> delays = std::move(put.delays);
      std::vector<uint64_t> ids = Enqueue(name, q, std::move(items), delays, now);
      out.push_back(
          Reply{w.op, Result::Ok(PutDone{std::move(ids), static_cast<uint32_t>(q.queued()),
                                         GrantHow::kAfterWait})});
      progress = true;
    }
    while (!q.getters.empty() && q.ready() > 0) {
      Waiter w = q.getters.PopFront();
      GotItems answer{{}, GrantHow::kAfterWait};
      if (auto acks = get_acks_.find(w.id); acks != get_acks_.end()) {
        answer.acked = acks->second.first;
        answer.ack_failed = std::move(acks->second.second);
        get_acks_.erase(acks);
      }
      Unpark(name, w);
      NoteGrant(name, w);
      answer.items = TakeItems(name, q, static_cast<uint32_t>(w.count), /*dead=*/false, w.session,
                               w.owner, w.lease, now, OpRef{}, w.request_id);
      out.push_back(Reply{w.op, Result::Ok(std::move(answer))});
      progress = true;
    }
    if (FeedConsumers(name, q, now, out)) progress = true;
  }
  if (q.unfinished() == 0) {
    for (const Waiter& w : q.joiners.RemoveAll()) {
      Unpark(name, w);
      out.push_back(Reply{w.op, Result::Ok(Passed{GrantHow::kAfterWait})});
    }
  }
  AccountQueue(q);
}

bool ShardState::FeedConsumers(const std::string& name, Queue& q, Time now, Effects& out) {
  bool fed = false;
  // Round robin: one item per consumer with credit per pass, starting after
  // the one served last, until items or credit run out.
  bool progress = true;
  while (progress && q.ready() > 0 && !q.consumers.empty()) {
    progress = false;
    auto it = q.consumers.upper_bound(q.consumer_cursor);
    for (size_t n = q.consumers.size(); n > 0 && q.ready() > 0; --n, ++it) {
      if (it == q.consumers.end()) it = q.consumers.begin();
      primitives::Consumer& c = it->second;
      if (c.outstanding >= c.prefetch) continue;
      OpRef op{it->first.first, it->first.second};
      ++c.outstanding;
      std::vector<DeliveredItem> got =
          TakeItems(name, q, 1, false, c.session, c.owner, c.lease, now, op);
      out.push_back(Reply{op, Result::Ok(GotItems{std::move(got), GrantHow::kAfterWait})});
      q.consumer_cursor = it->first;
      progress = fed = true;
    }
  }
  return fed;
}

void ShardState::EndConsumers(Queue& q, uint64_t session, const absl::Status& status,
                              Effects& out) {
  for (auto it = q.consumers.begin(); it != q.consumers.end();) {
    if (session != 0 && it->second.session != session) {
      ++it;
      continue;
    }
    out.push_back(Reply{OpRef{it->first.first, it->first.second}, Result::Error(status)});
    it = q.consumers.erase(it);
  }
}

void ShardState::Do(const ConsumeQueue& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = LookupQueue(c.name, c.options, /*create=*/true);
  if (!r.ok()) return fail(r.status());
  Queue& q = (*r)->queue();
  if (static_cast<int64_t>(q.consumers.size()) >= limits_.max_waiters_per_resource) {
    return fail(absl::ResourceExhaustedError(absl::StrCat(
        "too many consumers on '", c.name, "' (limit ", limits_.max_waiters_per_resource, ")")));
  }
  primitives::Consumer consumer;
  consumer.session = c.session;
  consumer.owner = caller_;
  consumer.lease = c.lease;
  consumer.prefetch = std::max<uint32_t>(1, c.prefetch);
  q.consumers[{origin.shard, origin.id}] = consumer;
  Ref(c.session, c.name);
  Pump(c.name, q, now, out);
}

void ShardState::Do(const StopConsuming& c, OpRef origin, Time, Effects& out) {
  // Always answered: the stream waits for this answer to know that no more
  // pushes are on their way.
  auto done = [&] { out.push_back(Answer(c, origin, Done{})); };
  auto it = resources_.find(c.name);
  if (it == resources_.end() || it->second.kind != Kind::kQueue) return done();
  Queue& q = it->second.queue();
  auto consumer = q.consumers.find({origin.shard, origin.id});
  if (consumer == q.consumers.end()) return done();  // already ended by the server
  Unref(consumer->second.session, c.name);
  q.consumers.erase(consumer);
  MaybeReclaim(c.name);
  done();
}

void ShardState::AccountQueue(Queue& q) {
  queue_bytes_ = queue_bytes_ - q.accounted_bytes + q.bytes();
  q.accounted_bytes = q.bytes();
}

void ShardState::QueueWaiterLeft(const std::string& name, Resource& r, uint8_t line, uint64_t id,
                                 EndReason, Time now, Effects& out) {
  if (line != kPutters) return;
  Queue& q = r.queue();
  q.pending_puts.erase(id);
  Pump(name, q, now, out);
}

void ShardState::QueueSessionEnded(const std::string& name, Resource& r, uint64_t session, Time now,
                                   Effects& out) {
  // Its Consume streams end, and its in-flight items go back to the head of
  // the queue.
  Queue& q = r.queue();
  for (const auto& [op, consumer] : q.consumers) {
    if (consumer.session == session) Unref(session, name);
  }
  EndConsumers(
      q, session,
      absl::AbortedError(absl::StrCat("session ", session, " ended; its Consume stream ends too")),
      out);
  std::vector<uint64_t> receipts;
  for (const auto& [receipt, f] : q.in_flight_items()) {
    if (f.session == session) receipts.push_back(receipt);
  }
  // Newest first, so that the oldest ends up first in line.
  for (auto rit = receipts.rbegin(); rit != receipts.rend(); ++rit) {
    ReturnItem(name, q, *rit, /*counted=*/true, 0, now);
  }
  Pump(name, q, now, out);
}

void ShardState::Do(const PutItems& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = LookupQueue(c.name, c.options, /*create=*/true);
  if (!r.ok()) return fail(r.status());
  Queue& q = (*r)->queue();
  uint64_t bytes = 0;
  for (size_t i = 0; i < c.items.size(); ++i) {
    if (c.items[i].data.size() > q.options().max_item_bytes) {
      absl::Status s = absl::InvalidArgumentError(
          absl::StrCat("item ", i, " is ", c.items[i].data.size(), " bytes; queue '", c.name,
                       "' takes at most ", q.options().max_item_bytes));
      return fail(s);
    }
    bytes += c.items[i].data.size();
  }
  if (c.items.size() > q.options().maxsize) {
    absl::Status s = absl::InvalidArgumentError(
        absl::StrCat("a batch of ", c.items.size(), " items can never fit in queue '", c.name,
                     "' of maxsize ", q.options().maxsize));
    return fail(s);
  }
  if (bytes > limits_.max_queue_bytes || queue_bytes_ > limits_.max_queue_bytes - bytes) {
    absl::Status s = absl::ResourceExhaustedError(
        absl::StrCat("queues on this server hold ", queue_bytes_, " bytes; ", bytes,
                     " more would pass the limit of ", limits_.max_queue_bytes,
                     " per shard (--max_queue_bytes): consume or purge some"));
    return fail(s);
  }
  std::vector<QueueItem> items;
  std::vector<Duration> delays;
  items.reserve(c.items.size());
  for (const NewQueueItem& in : c.items) {
    QueueItem item;
    item.data = in.data;
    item.priority = in.priority;
    items.push_back(std::move(item));
    delays.push_back(in.delay);
  }
  if (q.putters.empty() && q.HasRoom(items.size())) {
    std::vector<uint64_t> ids = Enqueue(c.name, q, std::move(items), delays, now);
    out.push_back(
        Answer(c, origin,
               PutDone{std::move(ids), static_cast<uint32_t>(q.queued()), GrantHow::kImmediate}));
    Pump(c.name, q, now, out);
    return;
  }
  if (c.deadline <= now) {
    std::string why =
        absl::StrCat("queue '", c.name, "' is full (", q.queued(), " of maxsize ",
                     q.options().maxsize, ", ", q.putters.size(), " putters waiting)");
    // put_nowait is QueueFull; a wait whose time ran out is a timeout.
    return fail(c.nowait ? absl::ResourceExhaustedError(why) : absl::DeadlineExceededError(why));
  }
  if (absl::Status s = CheckCanPark(q.putters, c.name); !s.ok()) return fail(s);
  Waiter w;
  w.op = origin;
  w.since = now;
  w.deadline = c.deadline;
  w.count = static_cast<int64_t>(items.size());
  w.line = kPutters;
  uint64_t id = Park(q.putters, c.name, std::move(w));
  q.pending_puts[id] = Queue::PendingPut{std::move(items), std::move(delays)};
}

void ShardState::Do(const GetItems& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = LookupQueue(c.name, c.options, /*create=*/!c.dead_letters);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr || (c.dead_letters && (*r)->queue().dead() == 0)) {
    // Dead-letter reads never wait: nothing is added to the dead letters by
    // a producer that a reader could wait for.
    return fail(
        absl::DeadlineExceededError(absl::StrCat("queue '", c.name, "' has no dead letters")));
  }
  Queue& q = (*r)->queue();
  // Acks riding on this Get go first: they may make room for putters, and
  // the items they free are never the ones this Get takes.
  uint32_t acked = 0;
  std::vector<uint64_t> ack_failed;
  if (!c.ack.empty()) {
    std::vector<uint64_t> foreign;
    acked = AckReceipts(c.name, q, c.ack, ack_failed, foreign);
    ack_failed.insert(ack_failed.end(), foreign.begin(), foreign.end());
    Pump(c.name, q, now, out);
  }
  auto got_items = [&](std::vector<DeliveredItem> items, GrantHow how) {
    GotItems g{std::move(items), how};
    g.acked = acked;
    g.ack_failed = std::move(ack_failed);
    return g;
  };
  if (!c.dead_letters) {
    if (absl::Status s = Superseded(c.name, c.session, c.request_id, c.nowait, now); !s.ok()) {
      fail(s);
      if (acked > 0) MaybeReclaim(c.name);
      return;
    }
  }
  if (!c.request_id.empty()) {
    std::vector<DeliveredItem> again = ReplayGet(q, c.session, c.request_id, now);
    if (!again.empty()) {
      Claim(c.name, c.session, c.request_id);
      return out.push_back(Answer(c, origin, got_items(std::move(again), GrantHow::kReplayed)));
    }
  }
  // The retry of a Get that a restart orphaned: it keeps its place.
  if (!c.dead_letters &&
      Adopt(c.name, q.getters, c.session, c.request_id, origin, c.deadline, now, out)) {
    return;
  }
  if (!c.dead_letters) NoteNothingFound(c.name, c.session, c.request_id, c.nowait, now);
  bool can_take = c.dead_letters || (q.getters.empty() && q.ready() > 0);
  if (can_take) {
    std::vector<DeliveredItem> got = TakeItems(c.name, q, c.max_items, c.dead_letters, c.session,
                                               caller_, c.lease, now, OpRef{}, c.request_id);
    out.push_back(Answer(c, origin, got_items(std::move(got), GrantHow::kImmediate)));
    Pump(c.name, q, now, out);  // room for putters
    return;
  }
  if (c.deadline <= now) {
    absl::Status s = absl::DeadlineExceededError(
        absl::StrCat("queue '", c.name, "' is empty",
                     q.delayed() > 0 ? absl::StrCat(" (", q.delayed(), " delayed)") : ""));
    fail(s);
    if (acked > 0) MaybeReclaim(c.name);  // the acks may have emptied it
    return;
  }
  if (absl::Status s = CheckCanPark(q.getters, c.name); !s.ok()) {
    return fail(s);
  }
  Waiter w;
  w.op = origin;
  w.session = c.session;
  w.owner = caller_;
  w.since = now;
  w.deadline = c.deadline;
  w.count = c.max_items;
  w.lease = c.lease;
  w.request_id = c.request_id;
  w.line = kMain;
  uint64_t id = Park(q.getters, c.name, std::move(w));
  if (!c.ack.empty()) get_acks_[id] = {acked, std::move(ack_failed)};
}

uint32_t ShardState::AckReceipts(const std::string& name, Queue& q,
                                 const std::vector<uint64_t>& receipts,
                                 std::vector<uint64_t>& stale, std::vector<uint64_t>& foreign) {
  uint32_t acked = 0;
  for (uint64_t receipt : receipts) {
    if (auto it = q.in_flight_items().find(receipt);
        it != q.in_flight_items().end() && !MayUse(it->second.owner)) {
      foreign.push_back(receipt);
      continue;
    }
    std::optional<InFlightItem> f = q.TakeInFlight(receipt);
    if (!f) {
      stale.push_back(receipt);
      continue;
    }
    if (f->expires != kForever) {
      RemoveTimer(f->expires, TimerKind::kInFlight, receipt);
      receipt_names_.erase(receipt);
    }
    Unref(f->session, name);
    if (!f->dead) ++q.total_acked;
    ++acked;
  }
  return acked;
}

void ShardState::Do(const AckItems& c, OpRef origin, Time now, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) {
    return out.push_back(Reply{
        origin, Result::Error(absl::FailedPreconditionError(absl::StrCat(
                    "queue '", c.name, "' has nothing in flight (it is empty or was deleted)")))});
  }
  Queue& q = (*r)->queue();
  std::vector<uint64_t> stale, foreign;
  uint32_t acked = AckReceipts(c.name, q, c.receipts, stale, foreign);
  Pump(c.name, q, now, out);
  uint64_t unfinished = q.unfinished();
  MaybeReclaim(c.name);
  if (!foreign.empty()) {
    return out.push_back(Reply{
        origin, Result::Error(NotYours(absl::StrCat(
                    "acknowledged ", acked, " of ", c.receipts.size(), "; receipt ", foreign[0],
                    foreign.size() > 1 ? absl::StrCat(" and ", foreign.size() - 1, " more") : "",
                    " of queue '", c.name, "'")))});
  }
  if (!stale.empty()) {
    return out.push_back(
        Reply{origin, Result::Error(absl::FailedPreconditionError(absl::StrCat(
                          "acknowledged ", acked, " of ", c.receipts.size(), "; receipt ", stale[0],
                          stale.size() > 1 ? absl::StrCat(" and ", stale.size() - 1, " more") : "",
                          " not in flight: acknowledged already, or its lease ran out and the item "
                          "went back to the queue")))});
  }
  out.push_back(Answer(c, origin, Acked{acked, unfinished}));
}

void ShardState::Do(const NackItems& c, OpRef origin, Time now, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) {
    return out.push_back(Reply{
        origin, Result::Error(absl::FailedPreconditionError(absl::StrCat(
                    "queue '", c.name, "' has nothing in flight (it is empty or was deleted)")))});
  }
  Queue& q = (*r)->queue();
  uint32_t returned = 0, dead = 0, stale = 0, foreign = 0;
  // Last first, so that the items keep their order at the head.
  for (auto it = c.receipts.rbegin(); it != c.receipts.rend(); ++it) {
    auto f = q.in_flight_items().find(*it);
    if (f == q.in_flight_items().end()) {
      ++stale;
      continue;
    }
    if (!MayUse(f->second.owner)) {
      ++foreign;
      continue;
    }
    ++returned;
    if (ReturnItem(c.name, q, *it, /*counted=*/true, c.delay, now)) ++dead;
  }
  Pump(c.name, q, now, out);
  if (foreign > 0) {
    return out.push_back(Reply{origin, Result::Error(NotYours(absl::StrCat(
                                           "returned ", returned, " of ", c.receipts.size(), "; ",
                                           foreign, " receipts of queue '", c.name, "'")))});
  }
  if (stale > 0) {
    return out.push_back(Reply{
        origin, Result::Error(absl::FailedPreconditionError(absl::StrCat(
                    "returned ", returned, " of ", c.receipts.size(), "; ", stale,
                    " receipts not in flight: acknowledged already, or their lease ran out")))});
  }
  out.push_back(Answer(c, origin, Nacked{returned, dead, q.unfinished()}));
}

void ShardState::Do(const JoinQueue& c, OpRef origin, Time now, Effects& out) {
  auto fail = [&](absl::Status s) { out.push_back(Reply{origin, Result::Error(std::move(s))}); };
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return fail(r.status());
  if (*r == nullptr || (*r)->queue().unfinished() == 0) {
    return out.push_back(Answer(c, origin, Passed{GrantHow::kImmediate}));
  }
  Queue& q = (*r)->queue();
  if (c.deadline <= now) {
    return fail(absl::DeadlineExceededError(
        absl::StrCat("queue '", c.name, "' has ", q.unfinished(), " unfinished items")));
  }
  if (absl::Status s = CheckCanPark(q.joiners, c.name); !s.ok()) return fail(s);
  Waiter w;
  w.op = origin;
  w.since = now;
  w.deadline = c.deadline;
  w.line = kJoiners;
  Park(q.joiners, c.name, std::move(w));
}

void ShardState::Do(const PurgeQueue& c, OpRef origin, Time now, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) return out.push_back(Answer(c, origin, Purged{}));
  Queue& q = (*r)->queue();
  uint32_t purged = 0;
  if (c.dead_letters) {
    purged = static_cast<uint32_t>(q.PurgeDead());
  } else {
    purged = static_cast<uint32_t>(q.queued());
    for (auto [id, at] : q.Purge()) {
      RemoveTimer(at, TimerKind::kQueueDelay, id);
      delayed_names_.erase(id);
    }
  }
  Pump(c.name, q, now, out);
  MaybeReclaim(c.name);
  out.push_back(Answer(c, origin, Purged{purged}));
}

void ShardState::ForgetQueue(const std::string& name, Queue& q) {
  for (const auto& [receipt, f] : q.in_flight_items()) {
    if (f.expires != kForever) {
      RemoveTimer(f.expires, TimerKind::kInFlight, receipt);
      receipt_names_.erase(receipt);
    }
    Unref(f.session, name);
  }
  for (auto [id, at] : q.Purge()) {
    RemoveTimer(at, TimerKind::kQueueDelay, id);
    delayed_names_.erase(id);
  }
}

void ShardState::Do(const DeleteQueue& c, OpRef origin, Time, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok()) return out.push_back(Reply{origin, Result::Error(r.status())});
  if (*r == nullptr) return out.push_back(Answer(c, origin, Deleted{false}));
  Queue& q = (*r)->queue();
  absl::Status deleted = absl::AbortedError(absl::StrCat("queue '", c.name, "' was deleted"));
  for (primitives::WaiterQueue* line : {&q.getters, &q.putters, &q.joiners}) {
    for (const Waiter& w : line->RemoveAll()) EndWait(c.name, w, deleted, out);
  }
  for (const auto& [op, consumer] : q.consumers) Unref(consumer.session, c.name);
  EndConsumers(q, 0, deleted, out);
  ForgetQueue(c.name, q);
  queue_bytes_ -= q.accounted_bytes;
  EraseResource(c.name);
  out.push_back(Answer(c, origin, Deleted{true}));
}

void ShardState::Do(const UndeliverItems& c, OpRef, Time now, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok() || *r == nullptr) return;
  Queue& q = (*r)->queue();
  // Last first, so that the items keep their order at the head.
  for (auto it = c.receipts.rbegin(); it != c.receipts.rend(); ++it) {
    ReturnItem(c.name, q, *it, /*counted=*/false, 0, now);
  }
  Pump(c.name, q, now, out);
}

void ShardState::Do(const UndeliverPut& c, OpRef, Time now, Effects& out) {
  auto r = Lookup(c.name, Kind::kQueue, /*create=*/false, 0);
  if (!r.ok() || *r == nullptr) return;
  Queue& q = (*r)->queue();
  for (uint64_t id : c.item_ids) {
    std::optional<Time> at = q.DelayedAt(id);
    if (!q.RemoveQueued(id)) continue;  // already got: the put stands
    --q.total_put;
    if (at) {
      RemoveTimer(*at, TimerKind::kQueueDelay, id);
      delayed_names_.erase(id);
    }
  }
  Pump(c.name, q, now, out);
  MaybeReclaim(c.name);
}

void ShardState::ExpireInFlight(uint64_t receipt, Time now, Effects& out) {
  auto n = receipt_names_.find(receipt);
  if (n == receipt_names_.end()) return;
  std::string name = n->second;
  auto it = resources_.find(name);
  if (it == resources_.end() || it->second.kind != Kind::kQueue) return;
  Queue& q = it->second.queue();
  ReturnItem(name, q, receipt, /*counted=*/true, 0, now);
  Pump(name, q, now, out);
}

void ShardState::PromoteDelayed(uint64_t item_id, Time now, Effects& out) {
  auto n = delayed_names_.find(item_id);
  if (n == delayed_names_.end()) return;
  std::string name = n->second;
  delayed_names_.erase(n);
  auto it = resources_.find(name);
  if (it == resources_.end() || it->second.kind != Kind::kQueue) return;
  Queue& q = it->second.queue();
  q.PromoteDelayed(item_id);
  Pump(name, q, now, out);
}

// Describe: the queue, with its in-flight items as holders.
// --- the kind's hooks (kinds.cc) ---

// Its options are set by LookupQueue.
ShardState::PrimitiveState ShardState::QueueBlank(int64_t) {
  return Queue(primitives::QueueOptions{}, false);
}

primitives::WaiterQueue* ShardState::QueueLine(Resource& r, uint8_t line) {
  if (line == kPutters) return &r.queue().putters;
  return line == kJoiners ? &r.queue().joiners : nullptr;
}

// Options given explicitly are a declaration: they last until DeleteQueue.
bool ShardState::QueueDeclared(const Resource& r) { return std::get<Queue>(r.state).declared(); }

void ShardState::QueueSettle(Resource& r) { AccountQueue(r.queue()); }

void ShardState::DescribeQueue(const std::string&, Resource& r, Time now, ResourceInfo& info) {
  primitives::Queue& q = r.queue();
  QueueSummary& s = info.queue;
  s.options = q.options();
  s.ready = q.ready();
  s.delayed = q.delayed();
  s.in_flight = q.in_flight();
  s.dead = q.dead();
  s.unfinished = q.unfinished();
  if (auto oldest = q.OldestEnqueued()) s.oldest_age = now - *oldest;
  s.getters = static_cast<uint32_t>(q.getters.size());
  s.putters = static_cast<uint32_t>(q.putters.size());
  s.joiners = static_cast<uint32_t>(q.joiners.size());
  s.total_put = q.total_put;
  s.total_acked = q.total_acked;
  for (const auto& [receipt, f] : q.in_flight_items()) {
    info.holders.push_back(HolderInfo{receipt, f.session, 1, now - f.item.enqueued,
                                      f.expires == kForever ? kForever : f.expires - now, ""});
  }
}

// Shutdown and restart: putters, joiners and Consume streams end too.
void ShardState::QueueEndAll(const std::string& name, Resource& r, const absl::Status& status,
                             Effects& out) {
  Queue& q = r.queue();
  EndLine(name, q.putters, status, out);
  EndLine(name, q.joiners, status, out);
  q.pending_puts.clear();
  for (const auto& [op, consumer] : q.consumers) Unref(consumer.session, name);
  EndConsumers(q, 0, status, out);
}

// Orphans: a Get may stay in line across a restart, a read of the dead
// letters may not.
bool ShardState::QueueOrphanable(const Waiter& w) { return !w.dead_letters; }

// The items an unclaimed Get was given go back to the head, their delivery
// not counted.
void ShardState::QueueRollBack(const std::string& name, Resource& r, const GrantKey& k, Time now,
                               Effects& out) {
  Queue& q = r.queue();
  std::vector<uint64_t> receipts;
  for (const auto& [receipt, f] : q.in_flight_items()) {
    if (f.consumer.id == 0 && f.session == k.session && f.request_id == k.request_id) {
      receipts.push_back(receipt);
    }
  }
  // Newest first, so that the oldest ends up first in line.
  for (auto rit = receipts.rbegin(); rit != receipts.rend(); ++rit) {
    ReturnItem(name, q, *rit, /*counted=*/false, 0, now);
  }
  Pump(name, q, now, out);
}

uint32_t ShardState::QueueHolders(Resource& r) {
  return static_cast<uint32_t>(r.queue().in_flight());
}

}  // namespace baton::apply
