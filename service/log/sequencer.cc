#include "service/log/sequencer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "baton/internal/v1/log.pb.h"
#include "service/apply/codec.h"

namespace baton::log {

// An entry proposed and not yet committed: the log hands the pointer back as
// the proposal's cookie, so a commit applies the command already in memory
// instead of decoding what was just encoded.
struct Sequencer::Pending {
  Time now = 0;
  uint64_t seq = 0;  // the proposal's sequence number (rejected ones have no index)
  Entry entry;
};

std::string EncodeEntry(Time now, const Entry& e) {
  internal::v1::LogEntry pb;
  pb.set_now_us(now);
  pb.set_shard(e.shard);
  pb.set_origin_shard(e.origin.shard);
  pb.set_origin_op(e.origin.id);
  pb.set_source_index(e.source_index);
  pb.set_source_ordinal(e.source_ordinal);
  pb.set_source_shard(e.source_shard);
  apply::Encode(e.command, pb.mutable_command());
  return pb.SerializeAsString();
}

absl::StatusOr<std::pair<Time, Entry>> DecodeEntry(uint64_t index, std::string_view data) {
  internal::v1::LogEntry pb;
  if (!pb.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return absl::DataLossError(absl::StrCat("log entry ", index, " is not a LogEntry"));
  }
  auto command = apply::Decode(pb.command());
  if (!command.ok()) {
    return absl::DataLossError(absl::StrCat("log entry ", index, ": ", command.status().message()));
  }
  Entry e;
  e.shard = pb.shard();
  e.command = std::move(*command);
  e.origin = apply::OpRef{pb.origin_shard(), pb.origin_op()};
  e.source_index = pb.source_index();
  e.source_ordinal = pb.source_ordinal();
  e.source_shard = pb.source_shard();
  return std::make_pair(static_cast<Time>(pb.now_us()), std::move(e));
}

Sequencer::Sequencer(std::unique_ptr<storage::ConsensusLog> log, const Clock* clock)
    : log_(std::move(log)), clock_(clock) {}

Sequencer::~Sequencer() { Close(); }

absl::Status Sequencer::Open(const Replay& replay, Dispatch dispatch, Dispatch dispatch_query,
                             Reject reject, Fatal fatal, uint64_t after_index, Time after_now) {
  last_now_ = after_now;
  dispatch_ = std::move(dispatch);
  dispatch_query_ = std::move(dispatch_query);
  reject_ = std::move(reject);
  if (log_ == nullptr) return absl::OkStatus();
  storage::ReplayFn read = [&](uint64_t index, std::string_view data) -> absl::Status {
    auto entry = DecodeEntry(index, data);
    if (!entry.ok()) return entry.status();
    // Time never goes back along the log, even if this machine's clock did.
    last_now_ = std::max(last_now_, entry->first);
    return replay(index, entry->first, std::move(entry->second));
  };
  storage::LogCallbacks callbacks;
  callbacks.committed = [this](uint64_t index, std::string_view data, uint64_t cookie) {
    if (cookie == 0) {
      OnForeign(index, data);
      return;
    }
    OnCommitted(index, reinterpret_cast<Pending*>(cookie));
  };
  callbacks.rejected = [this](uint64_t cookie, absl::Status why) {
    std::unique_ptr<Pending> p(reinterpret_cast<Pending*>(cookie));
    reject_(std::move(p->entry), std::move(why));
    Finished(p.get());
  };
  fatal_ = fatal;
  callbacks.fatal = std::move(fatal);
  auto opened = log_->Open(after_index, read, std::move(callbacks));
  if (!opened.ok()) return opened.status();
  notes_ = std::move(opened->notes);
  return absl::OkStatus();
}

void Sequencer::Submit(Entry entry) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return;
  if (!leader_.load(std::memory_order_acquire)) return Refuse(std::move(entry));
  SubmitLocked(std::move(entry));
}

void Sequencer::BecomeLeader(std::vector<Entry> first) {
  std::unique_lock<std::mutex> lock(mu_);
  leader_address_.clear();
  leader_.store(true, std::memory_order_release);
  if (closed_) return;
  for (Entry& e : first) SubmitLocked(std::move(e));
}

void Sequencer::SeeTime(Time now) {
  Time seen = foreign_now_.load(std::memory_order_relaxed);
  while (now > seen && !foreign_now_.compare_exchange_weak(seen, now)) {
  }
}

void Sequencer::SubmitLocked(Entry entry) {
  // Stamped under the lock that also orders the proposals, so cluster time
  // never decreases along the log (nor below what other leaders stamped).
  Time now = std::max({last_now_, foreign_now_.load(std::memory_order_acquire), clock_->Now()});
  last_now_ = now;
  ++submitted_;
  uint64_t seq = ++proposed_;
  if (log_ == nullptr) {
    uint64_t index = next_index_++;
    // Dispatched under the lock: entries reach their shards in log order.
    dispatch_(index, now, std::move(entry));
    Pending done{now, seq, {}};
    Finished(&done);
    return;
  }
  auto p = std::make_unique<Pending>(Pending{now, seq, std::move(entry)});
  storage::Proposal proposal{EncodeEntry(now, p->entry), reinterpret_cast<uint64_t>(p.get())};
  p.release();
  log_->Propose(std::move(proposal));
}

void Sequencer::SubmitQuery(Entry entry) {
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return;
  Time now = std::max({last_now_, foreign_now_.load(std::memory_order_acquire), clock_->Now()});
  if (entry.serializable) {
    std::lock_guard<std::mutex> qlock(queries_mu_);
    ReleaseReadLocked(proposed_, std::move(entry), now);
    return;
  }
  // A follower's state may be behind the leader's: not a linearizable read.
  if (!leader_.load(std::memory_order_acquire)) return Refuse(std::move(entry));
  std::unique_lock<std::mutex> qlock(queries_mu_);
  if (!ask_read_index_) {
    ReleaseReadLocked(proposed_, std::move(entry), now);
    return;
  }
  // A leader may have been deposed without knowing it yet (cut off from the
  // others): confirm with a read index before answering.
  unconfirmed_.emplace_back(proposed_, std::move(entry));
  if (reading_) return;  // the answer to the question in flight asks again
  reading_ = true;
  confirming_.swap(unconfirmed_);
  uint64_t ctx = ++read_ctx_;
  read_rounds_.fetch_add(1, std::memory_order_relaxed);
  qlock.unlock();
  lock.unlock();
  ask_read_index_(ctx);  // may answer inline: no lock held
}

void Sequencer::ReleaseReadLocked(uint64_t seq, Entry read, Time now) {
  if (done_ >= seq) {
    dispatch_query_(0, now, std::move(read));
    return;
  }
  // queries_ stays ordered by the proposal each waits for.
  auto at = std::upper_bound(queries_.begin(), queries_.end(), seq,
                             [](uint64_t s, const auto& q) { return s < q.first; });
  queries_.emplace(at, seq, std::move(read));
}

void Sequencer::OnReadIndex(uint64_t ctx, absl::Status status) {
  std::vector<std::pair<uint64_t, Entry>> refused;
  uint64_t next = 0;
  {
    std::lock_guard<std::mutex> qlock(queries_mu_);
    if (!reading_ || ctx != read_ctx_) return;  // not ours, or answered already
    std::vector<std::pair<uint64_t, Entry>> batch;
    batch.swap(confirming_);
    reading_ = false;
    if (status.ok()) {
      // Every entry through the read index reached the dispatcher before
      // this answer (the log's promise), so reads dispatched now follow it.
      Time now = std::max(foreign_now_.load(std::memory_order_acquire), clock_->Now());
      for (auto& [seq, read] : batch) ReleaseReadLocked(seq, std::move(read), now);
    } else {
      refused.swap(batch);
    }
    if (!unconfirmed_.empty()) {
      reading_ = true;
      confirming_.swap(unconfirmed_);
      next = ++read_ctx_;
      read_rounds_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  if (!refused.empty()) {
    std::string leader = leader_address();
    absl::Status why = absl::UnavailableError(absl::StrCat(
        "this node could not confirm that it still leads the cluster, so it does not answer "
        "reads (",
        status.message(), ")",
        leader.empty() ? std::string("; retry shortly")
                       : absl::StrCat("; the leader is ", leader)));
    if (!leader.empty()) why.SetPayload(kLeaderPayload, absl::Cord(leader));
    for (auto& [seq, read] : refused) {
      if (read.origin.id != 0) reject_(std::move(read), why);
    }
  }
  if (next != 0) ask_read_index_(next);
}

void Sequencer::Refuse(Entry entry) {
  // A derived command stays in its shard's outbox; ticks and the like are the
  // leader's to make. Only a client waits for an answer.
  if (entry.origin.id == 0) return;
  std::string why =
      leader_address_.empty()
          ? std::string(
                "this node is not the leader, and no leader is known now "
                "(an election is under way): retry shortly")
          : absl::StrCat("this node is not the leader; the leader is ", leader_address_);
  absl::Status status = absl::UnavailableError(why);
  if (!leader_address_.empty()) status.SetPayload(kLeaderPayload, absl::Cord(leader_address_));
  reject_(std::move(entry), std::move(status));
}

void Sequencer::StartAsFollower() { leader_.store(false, std::memory_order_release); }

void Sequencer::SetLeadership(bool leader, std::string leader_address) {
  std::lock_guard<std::mutex> lock(mu_);
  leader_address_ = std::move(leader_address);
  leader_.store(leader, std::memory_order_release);
}

std::string Sequencer::leader_address() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leader_address_;
}

void Sequencer::OnForeign(uint64_t index, std::string_view data) {
  auto decoded = DecodeEntry(index, data);
  if (!decoded.ok()) {
    // Every replica applies every entry: one this build cannot read stops it.
    if (fatal_) fatal_(decoded.status());
    return;
  }
  auto& [now, entry] = *decoded;
  // Its op, if any, lives in the process that proposed it (or was answered
  // when its proposal was given up): nobody here waits for it.
  entry.foreign = true;
  SeeTime(now);
  foreign_.fetch_add(1, std::memory_order_relaxed);
  dispatch_(index, now, std::move(entry));
}

void Sequencer::OnCommitted(uint64_t index, Pending* raw) {
  std::unique_ptr<Pending> p(raw);
  dispatch_(index, p->now, std::move(p->entry));
  Finished(p.get());
}

// Not under mu_: a log may reject a proposal on the proposing thread, inside
// Submit (which holds mu_; queries_mu_ comes after it in the lock order).
void Sequencer::Finished(const Pending* p) {
  {
    std::lock_guard<std::mutex> lock(queries_mu_);
    done_ = std::max(done_, p->seq);
    if (!queries_.empty()) {
      size_t n = 0;
      while (n < queries_.size() && queries_[n].first <= done_) {
        dispatch_query_(0, p->now, std::move(queries_[n].second));
        ++n;
      }
      queries_.erase(queries_.begin(), queries_.begin() + static_cast<ptrdiff_t>(n));
    }
  }
  std::lock_guard<std::mutex> lock(flush_mu_);
  ++finished_;
  finished_cv_.notify_all();
}

void Sequencer::Flush() {
  uint64_t target = submitted_.load();
  std::unique_lock<std::mutex> lock(flush_mu_);
  finished_cv_.wait(lock, [&] { return finished_ >= target; });
}

void Sequencer::Compact(uint64_t through) {
  if (log_ != nullptr) log_->Compact(through);
}

void Sequencer::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  if (log_ != nullptr) log_->Close();
}

}  // namespace baton::log
