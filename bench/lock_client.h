// LockClient: the one interface through which baton-bench drives every target
// (Baton, the echo ceiling, etcd, Redis), so that all of them see the same client
// loop, threads and channels and their rates can be compared.
//
// Thread-safety: an instance is used by one thread only.
#ifndef BATON_BENCH_LOCK_CLIENT_H_
#define BATON_BENCH_LOCK_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "bench/options.h"

namespace baton::bench {

// The lock names of the workloads: one shared name (contended), or one name
// per client (uncontended).
inline constexpr absl::string_view kContendedLock = "bench/contended";
std::string UncontendedLock(int index);

class LockClient {
 public:
  virtual ~LockClient() = default;

  // Takes what every later Acquire needs (a session, a lease). Called once,
  // before the first Acquire.
  [[nodiscard]] virtual absl::Status Open() = 0;

  // Blocks until the lock `name` is held by this client.
  // REQUIRES: Open() succeeded; nothing is held.
  [[nodiscard]] virtual absl::Status Acquire(const std::string& name) = 0;

  // Releases what the last Acquire took.
  // REQUIRES: the last Acquire succeeded and was not released yet.
  [[nodiscard]] virtual absl::Status Release() = 0;

  // Gives back what Open took, best effort (the server would expire it
  // anyway). Called once, last.
  virtual void Close() = 0;
};

// Returns a client of `target` speaking over `channel`; every RPC it makes
// has a deadline of `call_timeout` from its start.
std::unique_ptr<LockClient> NewLockClient(Target target, int index,
                                          std::shared_ptr<grpc::Channel> channel,
                                          std::chrono::milliseconds call_timeout);

// The per-target constructors behind NewLockClient.
std::unique_ptr<LockClient> NewBatonLockClient(int index, std::shared_ptr<grpc::Channel> channel,
                                               std::chrono::milliseconds call_timeout);
std::unique_ptr<LockClient> NewEchoLockClient(std::shared_ptr<grpc::Channel> channel,
                                              std::chrono::milliseconds call_timeout);
std::unique_ptr<LockClient> NewEtcdLockClient(std::shared_ptr<grpc::Channel> channel,
                                              std::chrono::milliseconds call_timeout);

// Lock users over a session stream of their own (baton.v1.Stream/Connect on
// `channel`, open until `stream_deadline` at most): acquire_lock (waiting at
// most `call_timeout` in line) and release_lock operations, each answered
// before the next is sent.
std::unique_ptr<LockClient> NewStreamLockClient(
    int index, std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds call_timeout,
    std::chrono::system_clock::time_point stream_deadline);
// The standard single-instance Redis lock over a TCP connection of its own
// to `addr`, made by Open (within `connect_timeout`): SET NX PX to acquire,
// a compare-and-delete script to release; a held lock is polled for every
// millisecond, for `call_timeout` at most.
std::unique_ptr<LockClient> NewRedisLockClient(const std::string& addr, int index,
                                               std::chrono::milliseconds connect_timeout,
                                               std::chrono::milliseconds call_timeout);

// Returns a channel to `addr` that shares no connection with any other
// channel of this process: client `index` gets a TCP connection of its own.
std::shared_ptr<grpc::Channel> NewClientChannel(const std::string& addr, int index);

// Waits at most `timeout` for `channel` to connect. Errors: UNAVAILABLE.
[[nodiscard]] absl::Status WaitForConnected(grpc::Channel& channel,
                                            std::chrono::milliseconds timeout);

// Converts the outcome of an RPC named `what` into an absl::Status.
absl::Status FromGrpc(const grpc::Status& status, absl::string_view what);

// Sets the deadline of `context` to `timeout` from now.
void SetDeadline(grpc::ClientContext& context, std::chrono::milliseconds timeout);

}  // namespace baton::bench

#endif  // BATON_BENCH_LOCK_CLIENT_H_
