#include "service/primitives/queue.h"

namespace baton::primitives {

std::optional<Time> Queue::OldestEnqueued() const {
  std::optional<Time> oldest;
  for (const auto& [key, item] : ready_) {
    if (!oldest || item.enqueued < *oldest) oldest = item.enqueued;
  }
  for (const auto& [key, item] : delayed_) {
    if (!oldest || item.enqueued < *oldest) oldest = item.enqueued;
  }
  return oldest;
}

void Queue::PushReady(QueueItem item, bool at_head) {
  bool head = at_head || options_.order == QueueOrder::kLifo;
  int64_t prio = options_.order == QueueOrder::kPriority ? item.priority : 0;
  Key key{prio, head ? --head_seq_ : ++tail_seq_};
  bytes_ += item.data.size();
  ready_key_[item.id] = key;
  ready_.emplace(key, std::move(item));
}

void Queue::PushDelayed(QueueItem item, Time at) {
  bytes_ += item.data.size();
  delayed_at_[item.id] = at;
  uint64_t id = item.id;
  delayed_.emplace(std::make_pair(at, id), std::move(item));
}

bool Queue::PromoteDelayed(uint64_t id) {
  auto at = delayed_at_.find(id);
  if (at == delayed_at_.end()) return false;
  auto it = delayed_.find({at->second, id});
  QueueItem item = std::move(it->second);
  delayed_.erase(it);
  delayed_at_.erase(at);
  bytes_ -= item.data.size();
  PushReady(std::move(item), /*at_head=*/false);
  return true;
}

std::optional<Time> Queue::DelayedAt(uint64_t id) const {
  auto at = delayed_at_.find(id);
  if (at == delayed_at_.end()) return std::nullopt;
  return at->second;
}

std::optional<QueueItem> Queue::RemoveQueued(uint64_t id) {
  if (auto k = ready_key_.find(id); k != ready_key_.end()) {
    auto it = ready_.find(k->second);
    QueueItem item = std::move(it->second);
    ready_.erase(it);
    ready_key_.erase(k);
    bytes_ -= item.data.size();
    return item;
  }
  if (auto at = delayed_at_.find(id); at != delayed_at_.end()) {
    auto it = delayed_.find({at->second, id});
    QueueItem item = std::move(it->second);
    delayed_.erase(it);
    delayed_at_.erase(at);
    bytes_ -= item.data.size();
    return item;
  }
  return std::nullopt;
}

QueueItem Queue::PopReady() {
  auto it = ready_.begin();
  QueueItem item = std::move(it->second);
  ready_.erase(it);
  ready_key_.erase(item.id);
  bytes_ -= item.data.size();
  return item;
}

std::vector<std::pair<uint64_t, Time>> Queue::Purge() {
  std::vector<std::pair<uint64_t, Time>> timers;
  for (const auto& [id, at] : delayed_at_) timers.emplace_back(id, at);
  for (const auto& [key, item] : ready_) bytes_ -= item.data.size();
  for (const auto& [key, item] : delayed_) bytes_ -= item.data.size();
  ready_.clear();
  ready_key_.clear();
  delayed_.clear();
  delayed_at_.clear();
  return timers;
}

void Queue::PushDead(QueueItem item, bool at_head) {
  bytes_ += item.data.size();
  dead_.emplace(at_head ? --dead_head_ : ++dead_tail_, std::move(item));
}

QueueItem Queue::PopDead() {
  auto it = dead_.begin();
  QueueItem item = std::move(it->second);
  dead_.erase(it);
  bytes_ -= item.data.size();
  return item;
}

size_t Queue::PurgeDead() {
  size_t n = dead_.size();
  for (const auto& [seq, item] : dead_) bytes_ -= item.data.size();
  dead_.clear();
  return n;
}

void Queue::AddInFlight(uint64_t receipt, InFlightItem f) {
  bytes_ += f.item.data.size();
  if (f.dead) ++dead_in_flight_;
  in_flight_.emplace(receipt, std::move(f));
}

std::optional<InFlightItem> Queue::TakeInFlight(uint64_t receipt) {
  auto it = in_flight_.find(receipt);
  if (it == in_flight_.end()) return std::nullopt;
  InFlightItem f = std::move(it->second);
  in_flight_.erase(it);
  bytes_ -= f.item.data.size();
  if (f.dead) --dead_in_flight_;
  // The item leaves its Consume stream's window: a credit comes back.
  if (f.consumer.id != 0) {
    auto c = consumers.find({f.consumer.shard, f.consumer.id});
    if (c != consumers.end() && c->second.outstanding > 0) --c->second.outstanding;
  }
  return f;
}

}  // namespace baton::primitives
