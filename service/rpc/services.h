// The gRPC services Baton serves, and how their listeners are started on a
// shard. One Listen* function per service file.
#pragma once

#include <memory>
#include <vector>

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
#include "service/rpc/call.h"
#include "service/rpc/session_stream.h"

namespace baton::rpc {

struct Services {
  v1::Sessions::AsyncService sessions;
  v1::Locks::AsyncService locks;
  v1::Semaphores::AsyncService semaphores;
  v1::Events::AsyncService events;
  v1::Queues::AsyncService queues;
  v1::Futures::AsyncService futures;
  v1::Barriers::AsyncService barriers;
  v1::Conditions::AsyncService conditions;
  v1::Timers::AsyncService timers;
  v1::Tasks::AsyncService tasks;
  v1::Admin::AsyncService admin;
  v1::Stream::AsyncService stream;
};

using Listeners = std::vector<std::unique_ptr<ListenerBase>>;

// Creates a listener for a unary method on `shard` and posts its first
// requests. A non-zero `stream_field` (an Operation.op field number) also
// makes `handler` run that operation on session streams.
template <class Req, class Resp, class Service, class RequestMethod>
void Listen(Env& env, apply::Shard& shard, Listeners& out, RequestMethod method, Service* service,
            runtime::Task<void> (*handler)(Env&, Op<Req, Resp>&), int stream_field = 0) {
  using CallT = UnaryCall<Req, Resp>;
  auto listener = std::make_unique<Listener<CallT, Op<Req, Resp>>>(
      &env, &shard,
      [service, method](CallT& call, grpc::ServerCompletionQueue* cq, void* tag) {
        (service->*method)(&call.ctx, &call.request, &call.writer, cq, cq, tag);
      },
      handler);
  for (int i = 0; i < env.requests_per_method; ++i) listener->Post();
  out.push_back(std::move(listener));
  if (stream_field != 0 && env.stream_ops != nullptr) {
    env.stream_ops->Register<Req, Resp>(stream_field, handler);
  }
}

// Creates a listener for a server-streaming method on `shard` and posts its
// first requests (a few: streams are long-lived and few).
template <class CallT, class Service, class RequestMethod>
void ListenStream(Env& env, apply::Shard& shard, Listeners& out, RequestMethod method,
                  Service* service, runtime::Task<void> (*handler)(Env&, CallT&)) {
  auto listener = std::make_unique<Listener<CallT>>(
      &env, &shard,
      [service, method](CallT& call, grpc::ServerCompletionQueue* cq, void* tag) {
        (service->*method)(&call.ctx, &call.request, &call.writer, cq, cq, tag);
      },
      handler);
  for (int i = 0; i < 4; ++i) listener->Post();
  out.push_back(std::move(listener));
}

void ListenSessions(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenPermits(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenEvents(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenQueues(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenFutures(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenBarriers(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenConditions(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenTimers(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenTasks(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
void ListenAdmin(Env& env, apply::Shard& shard, Services& svc, Listeners& out);
// Last: runs the operations the other Listen* functions registered.
void ListenSessionStream(Env& env, apply::Shard& shard, Services& svc, Listeners& out);

}  // namespace baton::rpc
