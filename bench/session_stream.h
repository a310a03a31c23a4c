// Clients of the session stream (baton.v1.Stream/Connect, see
// proto/baton/v1/stream.proto) for baton-bench: operations travel as
// `Operation`s on one bidirectional stream and come back as
// `OperationResult`s matched by id.
//
//   OpChannel           what a blocking user needs: send some operations in
//                       one message, wait for their answers
//   SingleUserStream    a stream of its own for one user thread: it writes
//                       and reads in the caller's thread, nothing else runs
//   SharedStream        one stream for any number of users: a reader thread
//                       dispatches each answer to the Waiter of its
//                       operation; operations started while a write is in
//                       flight (or while the reader dispatches a message)
//                       go out together in the next message. The reader
//                       writes what its waiters started itself, so it does
//                       not read while it writes: fine for the benchmark's
//                       small messages, but a client that may write more
//                       than the server buffers (8 MB of unsent answers
//                       stop the server reading) needs a writer thread
//
// Every stream is opened with a deadline that bounds its whole life, so a
// stuck server cannot hold the tool forever.
#ifndef BATON_BENCH_SESSION_STREAM_H_
#define BATON_BENCH_SESSION_STREAM_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "baton/v1/stream.grpc.pb.h"

namespace baton::bench {

// The status of an answer: OK for code 0, else its code and message,
// prefixed with `what`.
absl::Status ResultStatus(const baton::v1::OperationResult& result, absl::string_view what);

// Blocking operations for one user at a time.
class OpChannel {
 public:
  virtual ~OpChannel() = default;

  // Sends `ops[0..n)` in one message (their ids are chosen here; the
  // caller's copies are left as they are, ids aside) and waits for all their
  // answers: results[i] answers ops[i]. Errors of single operations are in
  // their results (see ResultStatus). Fails if the stream has ended; then
  // every result not answered carries the stream's end as its code.
  // REQUIRES: no other call on this channel by the same user is running.
  [[nodiscard]] virtual absl::Status Exchange(baton::v1::Operation* ops, int n,
                                              baton::v1::OperationResult* results) = 0;

  // The session the stream acts for.
  virtual uint64_t session_id() const = 0;
};

// A session stream owned by one thread.
//
// Thread-safety: an instance is used by one thread only.
class SingleUserStream final : public OpChannel {
 public:
  // Opens a stream on `channel` with a new session of TTL `ttl` labelled
  // `label`, and waits for its welcome. The stream ends at `deadline` at the
  // latest. Errors: those of the hello, or UNAVAILABLE if the stream broke.
  static absl::StatusOr<std::unique_ptr<SingleUserStream>> Open(
      const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
      std::chrono::seconds ttl, std::chrono::system_clock::time_point deadline);

  ~SingleUserStream() override;

  absl::Status Exchange(baton::v1::Operation* ops, int n,
                        baton::v1::OperationResult* results) override;
  uint64_t session_id() const override { return session_id_; }

  // Half-closes and waits for the server to end the stream (nothing should
  // be pending). Returns the stream's final status. Called at most once;
  // the destructor cancels a stream that was not closed.
  absl::Status Close();

 private:
  SingleUserStream() = default;

  grpc::ClientContext context_;
  std::unique_ptr<baton::v1::Stream::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<baton::v1::StreamRequest, baton::v1::StreamResponse>>
      stream_;
  uint64_t session_id_ = 0;
  uint64_t next_id_ = 1;
  bool ended_ = false;
  // Reused across exchanges to keep allocation out of the loop.
  baton::v1::StreamRequest request_;
  baton::v1::StreamResponse response_;
};

// A session stream shared by many users.
//
// Thread-safety: Start, Exchange and Flush may be called from any thread;
// Waiter::OnResult runs on the reader thread (or on the caller's, when the
// stream has already ended).
class SharedStream final : public OpChannel {
 public:
  // Receives the answer to one operation, exactly once.
  class Waiter {
   public:
    virtual ~Waiter() = default;
    // `result` is the server's answer, or, if the stream ended before one
    // came, a result with the stream's final code (UNAVAILABLE if it ended
    // OK) and message. The callee may take what it wants of `result` and may
    // Start further operations (they are sent once the reader has dispatched
    // every answer of the message at hand).
    virtual void OnResult(baton::v1::OperationResult& result) = 0;
  };

  // As SingleUserStream::Open, then starts the reader thread.
  static absl::StatusOr<std::unique_ptr<SharedStream>> Open(
      const std::shared_ptr<grpc::Channel>& channel, absl::string_view label,
      std::chrono::seconds ttl, std::chrono::system_clock::time_point deadline);

  // Cancels the stream unless Close() ended it, and joins the reader.
  ~SharedStream() override;

  // Starts `op` (its id is set here; the contents are taken, `op` is left
  // empty); `waiter` gets its answer and must live until then. With `flush`
  // false the operation waits for a later Start or Flush to be written
  // (batching); on the reader thread, while it dispatches, nothing is written
  // before the whole message is dispatched whatever `flush` says.
  void Start(baton::v1::Operation& op, Waiter* waiter, bool flush = true);

  // Asks the server to cancel the pending operation `id` (sent with the
  // next write; see stream.proto for what a cancelled operation answers).
  void Cancel(uint64_t id, bool flush = true);

  // Writes everything started and not written yet, unless another thread is
  // writing (it then writes it).
  void Flush();

  absl::Status Exchange(baton::v1::Operation* ops, int n,
                        baton::v1::OperationResult* results) override;
  uint64_t session_id() const override { return session_id_; }

  // The id the next Start will give its operation.
  uint64_t next_id() const;

  // Operations started and not answered yet.
  size_t pending() const;

  // Traffic so far: messages written and the operations they carried,
  // messages read and the answers they carried.
  struct Stats {
    int64_t messages_sent = 0;
    int64_t ops_sent = 0;
    int64_t messages_received = 0;
    int64_t answers_received = 0;
  };
  Stats stats() const;

  // Half-closes, waits until the server ended the stream (it does once every
  // pending operation is answered) and joins the reader. Returns the final
  // status. With `cancel`, cancels the stream instead: pending operations
  // end with CANCELLED. Called at most once.
  absl::Status Close(bool cancel = false);

 private:
  SharedStream() = default;

  void ReadLoop();
  // Writes out_ until it stays empty. REQUIRES: mu_ held by `lock`.
  void WriteLocked(std::unique_lock<std::mutex>& lock);

  grpc::ClientContext context_;
  std::unique_ptr<baton::v1::Stream::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<baton::v1::StreamRequest, baton::v1::StreamResponse>>
      stream_;
  uint64_t session_id_ = 0;
  std::thread reader_;
  std::thread::id reader_id_;  // guarded by mu_

  mutable std::mutex mu_;
  std::condition_variable idle_;                    // signalled when writing_ turns false
  uint64_t next_id_ = 1;                            // guarded by mu_
  absl::flat_hash_map<uint64_t, Waiter*> waiters_;  // pending, by id; guarded by mu_
  baton::v1::StreamRequest out_;                    // started, not written; guarded by mu_
  bool writing_ = false;                            // some thread is in WriteLocked; guarded by mu_
  bool half_closed_ = false;                        // guarded by mu_
  bool read_done_ = false;                          // no more writes; guarded by mu_
  bool ended_ = false;                              // Finish returned; guarded by mu_
  bool ended_ok_ = false;                           // ... with OK; guarded by mu_
  absl::Status end_status_;                         // what pending operations get; guarded by mu_
  Stats stats_;                                     // guarded by mu_
  baton::v1::StreamRequest sending_;                // owned by the thread in WriteLocked
};

}  // namespace baton::bench

#endif  // BATON_BENCH_SESSION_STREAM_H_
