// Sequencer: the one ordered path every change takes before any shard
// applies it (DESIGN.md §4.3-4.4).
//
//   shard loop --Submit--> stamp cluster time, encode --> ConsensusLog
//        (durable: group commit, one fdatasync per batch)
//   log thread --Dispatch(index, now, entry)--> owning shard's loop, in
//        log order; the shard applies it and sends the replies
//
// Cluster time is wall-clock microseconds, forced never to decrease along
// the log (not even across a restart whose clock stepped back), so every
// deadline a command carries means the same thing on replay.
//
// Without a log (--durability=none) Submit stamps the entry and dispatches
// it at once on the calling thread: the same order and the same code path,
// minus the disk.
//
// Replicated (a RaftLog, issue 9): only the leader proposes, because only
// the leader decides time (DESIGN.md §4.6). The sequencer starts as a
// follower (StartAsFollower) and SetLeadership says when that changes. A
// follower proposes nothing: a client's command is rejected at once with
// UNAVAILABLE naming the leader, a derived command (source_index != 0) stays
// in its shard's outbox until the leader's copy commits (a new leader
// resubmits what is left), and anything else (a tick, a timer's proposal) is
// dropped: the leader makes its own. Entries proposed elsewhere arrive with
// cookie 0 and are decoded and dispatched as `foreign` (their ops live in
// another process: no reply is delivered here); their time keeps this node's
// cluster time from going back when it leads next.
//
// Threading: Submit and Flush from any thread; Open and Close from the thread
// that owns the server. Dispatch and Reject run on the log's thread (or, in
// memory, on the submitter's thread), one at a time, in log order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "runtime/clock.h"
#include "service/apply/command.h"
#include "service/apply/result.h"
#include "storage/consensus_log.h"

namespace baton::log {

// The payload (absl::Status::SetPayload) of a follower's UNAVAILABLE: the
// leader's API address, which the RPC layer turns into a
// google.rpc.ErrorInfo naming it.
inline constexpr char kLeaderPayload[] = "type.baton.dev/leader-address";

// One command on its way through the log.
struct Entry {
  uint32_t shard = 0;  // the shard that applies it
  apply::Command command;
  apply::OpRef origin;  // the op waiting for its reply; id 0: nobody
  // For a command derived from another entry's effects: that entry's index
  // and the effect's ordinal (1-based) among its derived commands.
  uint64_t source_index = 0;
  uint32_t source_ordinal = 0;
  // ... and the shard that applied that entry (and keeps this command in
  // its outbox until the log holds it: Shard::DerivedCommitted).
  uint32_t source_shard = 0;
  // Not in the log: proposed by another node (or given up here as outcome
  // unknown). Its origin names an op of the process that proposed it, so
  // this node applies it with that origin (every replica's state must be
  // the same) but delivers none of its replies.
  bool foreign = false;
  // A query that may be answered from this node's state as it is (the
  // caller asked for a serializable read): no read index, and on a
  // follower too. Never logged.
  bool serializable = false;
};

// The log's stored form of an entry (baton.internal.v1.LogEntry), stamped
// with cluster time `now`. Thread-safe.
std::string EncodeEntry(Time now, const Entry& e);
// Errors: DATA_LOSS naming `index` when `data` is not an entry this build
// can apply.
absl::StatusOr<std::pair<Time, Entry>> DecodeEntry(uint64_t index, std::string_view data);

class Sequencer {
 public:
  // A committed entry, to be applied by entry.shard.
  using Dispatch = std::function<void(uint64_t index, Time now, Entry entry)>;
  // An entry that will never be committed (the disk is full).
  using Reject = std::function<void(Entry entry, absl::Status why)>;
  // An entry already in the log when it was opened.
  using Replay = std::function<absl::Status(uint64_t index, Time now, Entry entry)>;
  // The log failed in a way that must stop the server.
  using Fatal = std::function<void(absl::Status why)>;

  // `log` null: in memory. `clock` outlives the sequencer.
  Sequencer(std::unique_ptr<storage::ConsensusLog> log, const Clock* clock);
  ~Sequencer();

  // Replays every entry in the log after `after_index` through `replay`
  // (on the calling thread), then starts committing new ones. `after_index`
  // and `after_now`: the last index a snapshot covers and its cluster time
  // (0, 0 without one); time never goes back past `after_now`. Errors:
  // DATA_LOSS for a corrupt log (naming the file and offset), an undecodable
  // entry, or a log that does not continue from after_index.
  absl::Status Open(const Replay& replay, Dispatch dispatch, Dispatch dispatch_query, Reject reject,
                    Fatal fatal, uint64_t after_index = 0, Time after_now = 0);

  // Lets the log drop entries up to `through` (a snapshot covers them).
  // Any thread.
  void Compact(uint64_t through);

  // Stamps `entry` with cluster time and appends it to the log. Any thread.
  void Submit(Entry entry);

  // A query (apply::IsQuery): not logged, but handed to `dispatch_query`
  // only once every entry submitted before it was dispatched, so a client
  // reads its own writes (and everything committed before it asked). With
  // UseReadIndex, also only once the log confirmed that this node still
  // led after the query arrived (linearizable; refused UNAVAILABLE if not).
  // A serializable query (Entry::serializable) skips both: it follows this
  // node's own earlier proposals and is answered from its state, leader or
  // not. Any thread.
  void SubmitQuery(Entry entry);

  // Replicated log, before Open: reads wait for a read index (raft's
  // ReadIndex, ReadOnlySafe: a heartbeat round to a majority). `ask(ctx)`
  // asks for one; the log answers OnReadIndex(ctx, ...) once every entry up
  // to that index was committed to the dispatcher. One question serves every
  // read that arrived before it was asked; reads arriving meanwhile wait for
  // the next. `ask` may answer inline (on failure).
  void UseReadIndex(std::function<void(uint64_t ctx)> ask) { ask_read_index_ = std::move(ask); }
  // The log's answer to ask(ctx): OK (the reads it covers may be served), or
  // why not (this node does not lead, or could not confirm it). Any thread.
  void OnReadIndex(uint64_t ctx, absl::Status status);

  // Blocks until every entry submitted before the call was dispatched or
  // rejected. Any thread but the log's.
  void Flush();

  // Commits what was submitted, then stops. Later submits are dropped.
  void Close();

  // Replicated log: call before Open. Until SetLeadership(true, ...) the
  // sequencer proposes nothing.
  void StartAsFollower();
  // Replicated log: whether this node leads now and, if not, the address of
  // the leader's API ("" when none is known), which refusals name. Any
  // thread.
  void SetLeadership(bool leader, std::string leader_address);
  // Replicated log: this node leads now. `first` is proposed before anything
  // submitted after the call. Any thread.
  void BecomeLeader(std::vector<Entry> first);
  // Cluster time is at least `now` from here on (an installed snapshot's).
  void SeeTime(Time now);
  bool leader() const { return leader_.load(std::memory_order_acquire); }
  std::string leader_address() const;
  // Entries proposed by other nodes and applied here.
  uint64_t foreign() const { return foreign_.load(std::memory_order_relaxed); }
  // Read-index rounds asked so far (UseReadIndex). Any thread.
  uint64_t read_rounds() const { return read_rounds_.load(std::memory_order_relaxed); }

  bool durable() const { return log_ != nullptr; }
  // Entries submitted so far (changes, not queries). Any thread.
  uint64_t submitted() const { return submitted_.load(); }
  // What opening the log repaired or noticed (a torn tail it cut), to log.
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  struct Pending;
  void OnCommitted(uint64_t index, Pending* p);
  // An entry proposed by another node (or given up as outcome unknown).
  void OnForeign(uint64_t index, std::string_view data);
  // A follower's answer to Submit. REQUIRES: mu_ held.
  void Refuse(Entry entry);
  // Submit's work. REQUIRES: mu_ held (`lock`), this node leads.
  void SubmitLocked(Entry entry);
  // Counts `p` as dispatched or rejected and releases the queries that
  // waited for it.
  void Finished(const Pending* p);

  std::unique_ptr<storage::ConsensusLog> log_;
  const Clock* const clock_;
  Dispatch dispatch_;
  Dispatch dispatch_query_;
  Reject reject_;
  std::vector<std::string> notes_;

  // Orders submissions: stamping, encoding and proposing happen under it.
  mutable std::mutex mu_;
  Time last_now_ = 0;        // guarded by mu_
  uint64_t next_index_ = 1;  // in memory only; guarded by mu_
  bool closed_ = false;      // guarded by mu_
  uint64_t proposed_ = 0;    // proposals so far; guarded by mu_
  std::atomic<uint64_t> submitted_{0};
  // Replicated log: whether this node leads (always true otherwise), and the
  // leader's address for refusals (guarded by mu_).
  std::atomic<bool> leader_{true};
  std::string leader_address_;
  // The latest cluster time of an entry proposed elsewhere.
  std::atomic<Time> foreign_now_{0};
  std::atomic<uint64_t> foreign_{0};
  Fatal fatal_;

  // Queries waiting for the proposal with that sequence number to finish.
  // Lock order: mu_, then queries_mu_ (the log's thread takes only the
  // latter).
  std::mutex queries_mu_;
  uint64_t done_ = 0;  // proposals finished, in order; guarded by queries_mu_
  std::vector<std::pair<uint64_t, Entry>> queries_;  // guarded by queries_mu_
  // Replicated reads (UseReadIndex), each with the proposal it must follow:
  // waiting for a read index to be asked, and covered by the one asked
  // (read_ctx_, while reading_). Guarded by queries_mu_.
  std::function<void(uint64_t ctx)> ask_read_index_;
  std::vector<std::pair<uint64_t, Entry>> unconfirmed_;
  std::vector<std::pair<uint64_t, Entry>> confirming_;
  uint64_t read_ctx_ = 0;
  bool reading_ = false;
  std::atomic<uint64_t> read_rounds_{0};

  // Hands `read` (after proposal `seq`) on once that proposal finished.
  // REQUIRES: queries_mu_ held.
  void ReleaseReadLocked(uint64_t seq, Entry read, Time now);

  // Flush waits here for entries to be dispatched or rejected.
  std::mutex flush_mu_;
  std::condition_variable finished_cv_;
  uint64_t finished_ = 0;  // guarded by flush_mu_
};

}  // namespace baton::log
