#include "service/log/snapshotter.h"

#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "baton/internal/v1/snapshot.pb.h"
#include "service/apply/shard.h"
#include "service/logging.h"

namespace baton::log {
namespace {

int64_t SteadyMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t UnixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Snapshotter::Snapshotter(apply::Cluster* cluster, storage::SnapshotStore* store,
                         uint64_t every_entries, uint64_t every_bytes,
                         std::function<uint64_t()> log_bytes, uint64_t last_index)
    : cluster_(cluster),
      store_(store),
      every_(every_entries),
      every_bytes_(log_bytes ? every_bytes : 0),
      log_bytes_(std::move(log_bytes)),
      last_index_(last_index),
      next_due_(every_entries == 0 ? UINT64_MAX : last_index + every_entries),
      next_due_bytes_(every_bytes_ == 0 ? UINT64_MAX : every_bytes_) {
  stats_.last_index = last_index;
  thread_ = std::thread([this] { Run(); });
}

Snapshotter::~Snapshotter() { Close(); }

void Snapshotter::Request(std::function<void(absl::Status, uint64_t)> done) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    if (done) done(absl::UnavailableError("the server is shutting down"), 0);
    return;
  }
  requested_.push_back(done ? std::move(done) : [](absl::Status, uint64_t) {});
  wanted_.store(true, std::memory_order_release);
}

void Snapshotter::SetKick(std::function<void()> kick) {
  std::lock_guard<std::mutex> lock(mu_);
  kick_ = std::move(kick);
}

void Snapshotter::AfterDispatch(uint64_t index, Time now) {
  // The log's thread calls this for every entry: no lock unless a snapshot
  // may be due.
  uint64_t bytes = every_bytes_ != 0 ? log_bytes_() : 0;
  struct Seen {  // set on every way out, after the decision
    std::atomic<uint64_t>& seen;
    uint64_t index;
    ~Seen() { seen.store(index, std::memory_order_release); }
  } seen{seen_index_, index};
  if (index < next_due_.load(std::memory_order_acquire) &&
      bytes < next_due_bytes_.load(std::memory_order_acquire) &&
      !wanted_.load(std::memory_order_acquire)) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || cutting_) return;
    bool due = index >= next_due_.load(std::memory_order_relaxed) ||
               bytes >= next_due_bytes_.load(std::memory_order_relaxed);
    if (!due && requested_.empty()) return;
    wanted_.store(false, std::memory_order_relaxed);
    cutting_ = true;
    cut_ = Cut{};
    cut_.index = index;
    cut_.now = now;
    cut_.log_bytes = bytes;
    cut_.started_us = SteadyMicros();
    cut_.parts.resize(cluster_->size());
    cut_.missing = cluster_->size();
    cut_.done.swap(requested_);
  }
  // Posted after entry `index` was posted to its shard: each shard applies
  // its entries up to `index` first.
  for (uint32_t i = 0; i < cluster_->size(); ++i) {
    apply::Shard* shard = &cluster_->shard(i);
    shard->loop().Post([this, shard] { OnPart(shard->index(), shard->SavePart()); });
  }
}

void Snapshotter::OnPart(uint32_t shard, std::string part) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cutting_ || closed_) return;
  cut_.parts[shard] = std::move(part);
  if (--cut_.missing == 0) {
    stats_.last_cut_ms = static_cast<double>(SteadyMicros() - cut_.started_us) / 1000.0;
    ready_ = true;
    cv_.notify_all();
  }
}

void Snapshotter::Run() {
  for (;;) {
    Cut cut;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return ready_ || closed_; });
      if (!ready_) return;  // closed, nothing complete to write
      cut = std::move(cut_);
    }
    int64_t start = SteadyMicros();
    absl::Status st = Write(cut);
    // The cut's copies of the state (tens of megabytes for a big one) are
    // freed by now. glibc keeps freed memory in its arenas, where it still
    // counts in RSS (about 90 bytes per pending wait at 100,000 waits,
    // docs/benchmarks.md): give it back to the system.
    malloc_trim(0);
    std::vector<std::function<void(absl::Status, uint64_t)>> done;
    std::function<void()> kick;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ready_ = false;
      cutting_ = false;
      // The next one is due `every_` entries after this one, whether or not
      // it could be written: a full disk must not make every later entry
      // cut a snapshot again.
      if (every_ != 0) next_due_.store(cut.index + every_, std::memory_order_release);
      if (every_bytes_ != 0) {
        next_due_bytes_.store(cut.log_bytes + every_bytes_, std::memory_order_release);
      }
      // Requests made during this cut were skipped by AfterDispatch: make
      // sure an entry comes to serve them, even on an idle server.
      if (!requested_.empty() && !closed_) kick = kick_;
      done.swap(cut.done);
      if (st.ok()) {
        ++stats_.taken;
        stats_.last_index = cut.index;
        stats_.last_write_ms = static_cast<double>(SteadyMicros() - start) / 1000.0;
        logging::Info("snapshot written")
            .Uint("index", cut.index)
            .Uint("bytes", stats_.last_bytes)
            .Dur("cut", static_cast<Duration>(stats_.last_cut_ms * 1000))
            .Dur("write", static_cast<Duration>(stats_.last_write_ms * 1000));
      } else {
        ++stats_.failed;
      }
    }
    for (auto& d : done) d(st, cut.index);
    if (kick) kick();
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
  }
}

absl::Status Snapshotter::Write(Cut& cut) {
  internal::v1::SnapshotHeader header;
  header.set_format(1);
  header.set_index(cut.index);
  header.set_now_us(cut.now);
  header.set_shard_count(cluster_->size());
  header.set_taken_unix_us(UnixMicros());
  std::vector<std::string> records;
  records.reserve(cut.parts.size() + 1);
  records.push_back(header.SerializeAsString());
  uint64_t bytes = records.back().size();
  for (std::string& p : cut.parts) {
    bytes += p.size();
    records.push_back(std::move(p));
  }
  if (absl::Status st = store_->Save(cut.index, records); !st.ok()) {
    // Not fatal: the log still holds everything; the next one may succeed
    // (a full disk), and the operator sees the failure in stats and logs.
    logging::Error("snapshot failed; the log keeps everything, and the next one is tried later")
        .Uint("index", cut.index)
        .Str("error", std::string(st.message()));
    return st;
  }
  uint64_t compact_through = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    compact_through = last_index_;
    last_index_ = cut.index;
    stats_.last_bytes = bytes;
  }
  if (compact_through > 0) cluster_->sequencer().Compact(compact_through);
  return absl::OkStatus();
}

void Snapshotter::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ && !thread_.joinable()) return;
    closed_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::vector<std::function<void(absl::Status, uint64_t)>> abandoned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    abandoned.swap(requested_);
    for (auto& d : cut_.done) abandoned.push_back(std::move(d));
    cut_.done.clear();
  }
  for (auto& d : abandoned) d(absl::UnavailableError("the server is shutting down"), 0);
}

Snapshotter::Stats Snapshotter::stats() const {
  // Read first: a cut that AfterDispatch started for this index shows below.
  uint64_t seen = seen_index_.load(std::memory_order_acquire);
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.seen_index = seen;
  s.cutting = cutting_;
  return s;
}

}  // namespace baton::log
