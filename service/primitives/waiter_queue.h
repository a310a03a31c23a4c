// WaiterQueue holds pending operations in FIFO order until they are granted,
// time out, are cancelled, or are aborted. It is the one waiting mechanism
// of every primitive (STYLE.md: "one waiting mechanism"): removal by id is
// O(log n), and the oldest waiter is always at the front.
//
// Invariants: ids are unique; iteration order is arrival order.
// Used only on its shard's loop thread; deterministic (no hashing order).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/btree_map.h"
#include "service/primitives/types.h"

namespace baton::primitives {

class WaiterQueue {
 public:
  bool empty() const { return by_seq_.empty(); }
  size_t size() const { return by_seq_.size(); }

  // REQUIRES: !empty().
  const Waiter& front() const { return by_seq_.begin()->second; }

  void PushBack(Waiter w) {
    uint64_t seq = next_seq_++;
    seq_of_[w.id] = seq;
    by_seq_.emplace(seq, std::move(w));
  }

  // Puts `w` first in line, ahead of every waiter already queued.
  void PushFront(Waiter w) {
    uint64_t seq = by_seq_.empty() ? next_seq_++ : by_seq_.begin()->first - 1;
    seq_of_[w.id] = seq;
    by_seq_.emplace(seq, std::move(w));
  }

  // REQUIRES: !empty().
  Waiter PopFront() {
    auto it = by_seq_.begin();
    Waiter w = std::move(it->second);
    seq_of_.erase(w.id);
    by_seq_.erase(it);
    return w;
  }

  const Waiter* Find(uint64_t id) const {
    auto s = seq_of_.find(id);
    return s == seq_of_.end() ? nullptr : &by_seq_.at(s->second);
  }

  Waiter* Find(uint64_t id) {
    auto s = seq_of_.find(id);
    return s == seq_of_.end() ? nullptr : &by_seq_.at(s->second);
  }

  std::optional<Waiter> Remove(uint64_t id) {
    auto s = seq_of_.find(id);
    if (s == seq_of_.end()) return std::nullopt;
    auto it = by_seq_.find(s->second);
    Waiter w = std::move(it->second);
    by_seq_.erase(it);
    seq_of_.erase(s);
    return w;
  }

  // Removes and returns every waiter of `session`, oldest first.
  std::vector<Waiter> RemoveSession(uint64_t session) {
    std::vector<Waiter> out;
    for (auto it = by_seq_.begin(); it != by_seq_.end();) {
      if (it->second.session == session) {
        seq_of_.erase(it->second.id);
        out.push_back(std::move(it->second));
        it = by_seq_.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  // Removes and returns every waiter, oldest first.
  std::vector<Waiter> RemoveAll() {
    std::vector<Waiter> out;
    out.reserve(by_seq_.size());
    for (auto& [seq, w] : by_seq_) out.push_back(std::move(w));
    by_seq_.clear();
    seq_of_.clear();
    return out;
  }

  auto begin() const { return by_seq_.begin(); }
  auto end() const { return by_seq_.end(); }

  // The stored form (archive.h): the waiters in order and the next seq;
  // seq_of_ is their index, rebuilt on load.
  template <class Ar>
  void Serialize(Ar& ar) {
    ar(by_seq_, next_seq_);
    if constexpr (Ar::kLoading) {
      seq_of_.clear();
      for (const auto& [seq, w] : by_seq_) {
        ar.Check(seq_of_.emplace(w.id, seq).second, "waiter id repeated");
      }
    }
  }

 private:
  absl::btree_map<uint64_t, Waiter> by_seq_;    // arrival order
  absl::btree_map<uint64_t, uint64_t> seq_of_;  // waiter id -> seq
  uint64_t next_seq_ = 1ull << 62;              // room below for PushFront
};

}  // namespace baton::primitives
