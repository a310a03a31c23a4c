// Core: what every handle of one Client shares: the channel, a stub per
// service, the options, the transport (the session stream, or unary calls
// with a keep-alive thread), the session, and the lost signals of the
// holdings of each session. Handles (Lock, Queue, guards...) hold a shared_ptr to it, so a guard
// that outlives its Client can still release what it holds.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "baton/client_options.h"
#include "baton/v1/admin.grpc.pb.h"
#include "baton/v1/barrier.grpc.pb.h"
#include "baton/v1/condition.grpc.pb.h"
#include "baton/v1/event.grpc.pb.h"
#include "baton/v1/future.grpc.pb.h"
#include "baton/v1/lock.grpc.pb.h"
#include "baton/v1/queue.grpc.pb.h"
#include "baton/v1/semaphore.grpc.pb.h"
#include "baton/v1/session.grpc.pb.h"
#include "baton/v1/task.grpc.pb.h"
#include "baton/v1/timer.grpc.pb.h"
#include "lost_signal.h"
#include "session_keeper.h"
#include "session_stream.h"

namespace baton::internal {

class Core {
 public:
  // Creates the channel and opens the session (waiting up to
  // options.connect_timeout for the server).
  static absl::StatusOr<std::shared_ptr<Core>> Connect(const std::string& target,
                                                       ClientOptions options);
  ~Core();
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  const ClientOptions& options() const { return options_; }
  // The gRPC deadline of a call that does not wait.
  absl::Time RpcDeadline() const { return absl::Now() + options_.rpc_timeout; }
  // The gRPC deadline of a call that waits until `wait_deadline`.
  absl::Time WaitDeadline(absl::Time wait_deadline) const;

  v1::Sessions::Stub& sessions() const { return *sessions_; }
  v1::Locks::Stub& locks() const { return *locks_; }
  v1::Semaphores::Stub& semaphores() const { return *semaphores_; }
  v1::Events::Stub& events() const { return *events_; }
  v1::Conditions::Stub& conditions() const { return *conditions_; }
  v1::Barriers::Stub& barriers() const { return *barriers_; }
  v1::Queues::Stub& queues() const { return *queues_; }
  v1::Futures::Stub& futures() const { return *futures_; }
  v1::Tasks::Stub& tasks() const { return *tasks_; }
  v1::Timers::Stub& timers() const { return *timers_; }
  v1::Admin::Stub& admin() const { return *admin_; }
  // The session stream; nullptr on the unary transport.
  SessionStream* stream() const { return stream_.get(); }

  // The session to own a new holding or wait: ABORTED once it is lost,
  // FAILED_PRECONDITION once the client is closed.
  absl::StatusOr<uint64_t> SessionForCall() const;
  uint64_t session_id() const;
  // OK while the session is alive; why it ended otherwise.
  absl::Status session_status() const;
  // True when session `id` is known to be over (lost, closed, or replaced by
  // RenewSession): what it held is released already.
  bool SessionOver(uint64_t id) const;
  int keepalive_streams_opened() const;
  // A lost signal for a holding of session `session_id` (0: lease-only,
  // fired only by the holding itself).
  std::shared_ptr<LostSignal> NewLostSignal(uint64_t session_id);
  // A request_id unique to this client process (a random prefix, a counter).
  std::string NewRequestId();

  void AddLostCallback(std::function<void(absl::Status)> callback);
  // Opens a new session if the current one was lost. OK and no change if it
  // is alive. FAILED_PRECONDITION once closed. (Done by the client itself
  // after a loss; on the stream the next stream opens it.)
  absl::Status RenewSession();
  // Stops the keeper and closes the session on the server. Idempotent.
  absl::Status Close();

 private:
  Core(std::shared_ptr<grpc::Channel> channel, ClientOptions options);
  absl::StatusOr<uint64_t> OpenSession(absl::Duration wait);
  void StartKeeper(uint64_t session_id);  // REQUIRES: mu_ held
  void OnLost(uint64_t session_id, absl::Status why);

  const ClientOptions options_;
  const std::string request_id_prefix_;
  std::atomic<uint64_t> request_ids_{0};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Sessions::Stub> sessions_;
  std::unique_ptr<v1::Locks::Stub> locks_;
  std::unique_ptr<v1::Semaphores::Stub> semaphores_;
  std::unique_ptr<v1::Events::Stub> events_;
  std::unique_ptr<v1::Conditions::Stub> conditions_;
  std::unique_ptr<v1::Barriers::Stub> barriers_;
  std::unique_ptr<v1::Queues::Stub> queues_;
  std::unique_ptr<v1::Futures::Stub> futures_;
  std::unique_ptr<v1::Tasks::Stub> tasks_;
  std::unique_ptr<v1::Timers::Stub> timers_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<SessionStream> stream_;

  mutable std::mutex mu_;
  bool closed_ = false;
  std::unique_ptr<SessionKeeper> keeper_;
  // Keepers of lost sessions: their threads end on their own; joined here at
  // destruction so that RenewSession may run inside a lost callback.
  std::vector<std::unique_ptr<SessionKeeper>> retired_;
  std::vector<std::function<void(absl::Status)>> lost_callbacks_;
  // Lost signals of live holdings, by session (pruned as they expire).
  std::map<uint64_t, std::vector<std::weak_ptr<LostSignal>>> lost_signals_;
};

}  // namespace baton::internal
