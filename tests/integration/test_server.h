// TestServer: a real Baton server on 127.0.0.1 (a free port), in process,
// with stubs for every service. For integration and race tests.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

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
#include "service/rpc/server.h"

namespace baton::testing {

// Durable by default, in a fresh data directory of its own (removed by the
// destructor); BATON_DURABILITY=none in the environment runs the same tests
// in memory.
class TestServer {
 public:
  explicit TestServer(rpc::ServerOptions options = DefaultOptions());
  ~TestServer();

  static rpc::ServerOptions DefaultOptions();

  // Stops the server gracefully and starts it again on the same data
  // directory (and a new port); channel and stubs follow it.
  void Restart();
  // The same, with another shard count (the data directory is re-sharded).
  void RestartWithShards(int shards) {
    options_.shards = shards;
    Restart();
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(server_->port()); }
  // A new channel (its own connection) to the server.
  std::shared_ptr<grpc::Channel> NewChannel() const;
  rpc::Server& server() { return *server_; }
  const std::string& data_dir() const { return options_.data_dir; }
  void Shutdown() { server_->Shutdown(); }

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Sessions::Stub> sessions;
  std::unique_ptr<v1::Locks::Stub> locks;
  std::unique_ptr<v1::Semaphores::Stub> semaphores;
  std::unique_ptr<v1::Events::Stub> events;
  std::unique_ptr<v1::Queues::Stub> queues;
  std::unique_ptr<v1::Futures::Stub> futures;
  std::unique_ptr<v1::Barriers::Stub> barriers;
  std::unique_ptr<v1::Conditions::Stub> conditions;
  std::unique_ptr<v1::Timers::Stub> timers;
  std::unique_ptr<v1::Tasks::Stub> tasks;
  std::unique_ptr<v1::Admin::Stub> admin;

 private:
  void Connect();

  rpc::ServerOptions options_;
  std::string own_data_dir_;  // created here: removed by the destructor
  std::unique_ptr<rpc::Server> server_;
};

// Helpers for writing requests tersely.
google::protobuf::Duration Millis(int64_t ms);
std::unique_ptr<grpc::ClientContext> Context(int64_t deadline_ms = 10'000);
uint64_t OpenSession(TestServer& t, int64_t ttl_ms = 30'000);

}  // namespace baton::testing
