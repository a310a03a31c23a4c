// Consumer::GetLoop: the consumer on the session stream. Next takes items
// from a buffer; when it is empty, Next sends a Get of up to `prefetch` items
// that carries the receipts acknowledged since the last Get (GetRequest.ack).
// A thread sends acknowledgements that waited 10 ms with no Get to ride on
// as one Queues/Ack.
//
// A server that predates GetRequest.ack ignores the field (its answer
// confirms none of them): the loop then acknowledges them with Ack, and
// from then on always.
//
// Thread safety: every method may be called from any thread; Close not from
// a completion callback.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "baton/consumer.h"
#include "core.h"

namespace baton {

class Consumer::GetLoop {
 public:
  GetLoop(std::shared_ptr<internal::Core> core, std::string name, std::optional<QueueConfig> config,
          ConsumeOptions options, Queue queue);
  ~GetLoop();

  absl::StatusOr<Delivery> Next(absl::Duration timeout);
  void Ack(uint64_t receipt);
  void Close();
  ConsumerStats stats() const;

 private:
  // Sends `receipts` as Acks of up to 1000, without waiting. `again`: they
  // rode on a Get that failed, and may have been applied by it.
  void SendAck(std::vector<uint64_t> receipts, bool again);
  // Applies what a Get said about the acks it carried. REQUIRES: mu_ held.
  void NoteAcks(const std::vector<uint64_t>& sent, const v1::GetResponse& response,
                std::vector<uint64_t>* resend);
  void Flusher();

  const std::shared_ptr<internal::Core> core_;
  const std::string name_;
  const std::optional<QueueConfig> config_;
  const ConsumeOptions options_;
  const Queue queue_;
  CancelToken cancel_;  // ends a Get in flight at Close

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delivery> items_;
  std::vector<uint64_t> acks_;
  absl::Time first_ack_ = absl::InfiniteFuture();
  bool getting_ = false;
  bool ride_ = true;
  bool closed_ = false;
  absl::Status error_;
  ConsumerStats stats_;
  int acks_in_flight_ = 0;  // plain Acks sent and not yet answered
  std::thread flusher_;
};

}  // namespace baton
