// QueueClient: the one interface through which baton-bench's queue workload
// drives every queue server (Baton's Queues, Redis lists, beanstalkd tubes),
// so that all of them see the same producer and consumer loops, threads and
// connections, and their rates can be compared.
//
// Every client speaks to one queue, kQueueName, in one role: a producer only
// puts, a consumer gets and acknowledges.
//
// Thread-safety: an instance is used by one thread only.
#ifndef BATON_BENCH_QUEUE_CLIENT_H_
#define BATON_BENCH_QUEUE_CLIENT_H_

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/options.h"

namespace baton::bench {

class OpChannel;

// The queue (Baton), list key (Redis) or tube (beanstalkd) every client uses.
inline constexpr absl::string_view kQueueName = "bench/q";

// How long one Get waits on an empty queue before it returns with nothing.
inline constexpr std::chrono::seconds kGetTimeout(1);

enum class QueueRole { kProducer, kConsumer };

class QueueClient {
 public:
  virtual ~QueueClient() = default;

  // Connects (waiting at most `connect_timeout`) and takes what the role
  // needs: a session, the tube to use or to watch. Called once, first.
  [[nodiscard]] virtual absl::Status Open(std::chrono::milliseconds connect_timeout) = 0;

  // Removes every item waiting in the queue, e.g. left over by an earlier
  // run that failed. REQUIRES: Open() succeeded; role is kConsumer (a
  // beanstalkd producer cannot take jobs).
  [[nodiscard]] virtual absl::Status Purge() = 0;

  // Puts one item. REQUIRES: Open() succeeded; role is kProducer.
  [[nodiscard]] virtual absl::Status Put(absl::string_view data) = 0;

  // Puts `items` together, as the server allows (--batch): one request
  // where the protocol has one, else pipelined. This default puts them one
  // by one. REQUIRES: as Put.
  [[nodiscard]] virtual absl::Status PutMany(const std::vector<std::string>& items) {
    for (const std::string& item : items) {
      if (absl::Status s = Put(item); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // Waits at most kGetTimeout for one item. Returns true with the item's
  // payload in `*data`, or false when the queue stayed empty.
  // REQUIRES: Open() succeeded; role is kConsumer; the last item got was
  // acknowledged.
  [[nodiscard]] virtual absl::StatusOr<bool> Get(std::string* data) = 0;

  // Acknowledges the last item got: it is finished and gone. A no-op where
  // getting already removed it (Redis).
  // REQUIRES: the last Get returned true and was not acknowledged yet.
  [[nodiscard]] virtual absl::Status Ack() = 0;

  // Gives back what Open took, best effort. Called once, last.
  virtual void Close() = 0;
};

// Returns a client of `target` for the server at `addr`; each one makes a
// connection of its own, `index` telling the gRPC channels apart. Every call
// it makes is bounded by `call_timeout`, a Get by kGetTimeout + `call_timeout`.
// Returns null for a target that has no queue (echo, etcd).
// `batch` (--batch): most items a consumer takes per request (Baton; the
// others take one per request and pipeline their acknowledgements).
std::unique_ptr<QueueClient> NewQueueClient(Target target, QueueRole role, int index,
                                            const std::string& addr,
                                            std::chrono::milliseconds call_timeout,
                                            bool stream = false, int batch = 1);

// The per-target constructors behind NewQueueClient.
// `stream`: a consumer reads a Queues/Consume stream and acknowledges in
// batches (the fast path), rather than one Get and one Ack per item.
std::unique_ptr<QueueClient> NewBatonQueueClient(QueueRole role, int index, const std::string& addr,
                                                 std::chrono::milliseconds call_timeout,
                                                 bool stream, int batch);
// Over session streams: `shared` is the stream every client of the process
// uses (--session-stream shared), or null for one stream of its own per
// client (a channel told apart by `index`, the stream open until
// `stream_deadline` at most). Put and Get are one operation each; an Ack is
// sent with the next Get, in the same message (or by Close).
std::unique_ptr<QueueClient> NewStreamQueueClient(
    QueueRole role, int index, const std::string& addr,
    std::chrono::system_clock::time_point stream_deadline, OpChannel* shared, int batch = 1);
// Redis needs no role: the same connection could LPUSH and BRPOP.
std::unique_ptr<QueueClient> NewRedisQueueClient(const std::string& addr,
                                                 std::chrono::milliseconds call_timeout);
std::unique_ptr<QueueClient> NewBeanstalkQueueClient(QueueRole role, const std::string& addr,
                                                     std::chrono::milliseconds call_timeout,
                                                     int batch = 1);

}  // namespace baton::bench

#endif  // BATON_BENCH_QUEUE_CLIENT_H_
