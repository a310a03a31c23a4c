// The gRPC services Baton serves, and how their listeners are started on a
// shard. One Listen* function per service file.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
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

// A generated AsyncService whose every method takes its requests as bytes:
// Baton decodes them itself (Decode() of UnaryCall and ServerStreamCall,
// RawBidiStream), so that bytes that do not decode are answered
// INVALID_ARGUMENT. (The generated code answers them INTERNAL "Unable to
// parse request" and never shows the call, or, on a request stream, ends
// the reads as if the client had stopped sending.)
template <class AsyncService>
class RawRequests final : public AsyncService {
 public:
  explicit RawRequests(const char* full_name)
      : descriptor_(
            google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(full_name)) {
    if (descriptor_ == nullptr) DieAtStart("no service descriptor named ", full_name);
    for (int i = 0; i < descriptor_->method_count(); ++i) this->MarkMethodRaw(i);
  }

  // The index of method `name`, which must take one `request` and answer
  // once (streaming false) or with a stream; aborts at start otherwise.
  int Method(const char* name, const google::protobuf::Descriptor* request, bool streaming) const {
    const auto* m = descriptor_->FindMethodByName(name);
    if (m == nullptr || m->client_streaming() || m->server_streaming() != streaming) {
      DieAtStart(descriptor_->full_name(), " has no ", streaming ? "server-streaming" : "unary",
                 " method ", name);
    }
    if (m->input_type() != request) {
      DieAtStart(m->full_name(), " takes ", m->input_type()->full_name(), ", not ",
                 request->full_name());
    }
    return m->index();
  }

  // The path of method `name` on the wire: /baton.v1.Locks/Acquire.
  std::string Path(const char* name) const {
    return absl::StrCat("/", descriptor_->full_name(), "/", name);
  }

  // The index of bidirectional method `name` taking `request`; aborts at
  // start otherwise.
  int BidiMethod(const char* name, const google::protobuf::Descriptor* request) const {
    const auto* m = descriptor_->FindMethodByName(name);
    if (m == nullptr || !m->client_streaming() || !m->server_streaming() ||
        m->input_type() != request) {
      DieAtStart(descriptor_->full_name(), " has no bidirectional method ", name, " taking ",
                 request->full_name());
    }
    return m->index();
  }

  void RequestRawBidi(int method, grpc::ServerContext* ctx,
                      grpc::ServerAsyncReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>* stream,
                      grpc::ServerCompletionQueue* cq, void* tag) {
    this->RequestAsyncBidiStreaming(method, ctx, stream, cq, cq, tag);
  }

  void RequestRaw(int method, grpc::ServerContext* ctx, grpc::ByteBuffer* request,
                  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* writer,
                  grpc::ServerCompletionQueue* cq, void* tag) {
    this->RequestAsyncUnary(method, ctx, request, writer, cq, cq, tag);
  }
  void RequestRawStreaming(int method, grpc::ServerContext* ctx, grpc::ByteBuffer* request,
                           grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                           grpc::ServerCompletionQueue* cq, void* tag) {
    this->RequestAsyncServerStreaming(method, ctx, request, writer, cq, cq, tag);
  }

 private:
  template <class... Parts>
  [[noreturn]] static void DieAtStart(const Parts&... parts) {
    std::fprintf(stderr, "baton: %s\n", absl::StrCat(parts...).c_str());
    std::abort();
  }

  const google::protobuf::ServiceDescriptor* descriptor_;
};

struct Services {
  RawRequests<v1::Sessions::AsyncService> sessions{v1::Sessions::service_full_name()};
  RawRequests<v1::Locks::AsyncService> locks{v1::Locks::service_full_name()};
  RawRequests<v1::Semaphores::AsyncService> semaphores{v1::Semaphores::service_full_name()};
  RawRequests<v1::Events::AsyncService> events{v1::Events::service_full_name()};
  RawRequests<v1::Queues::AsyncService> queues{v1::Queues::service_full_name()};
  RawRequests<v1::Futures::AsyncService> futures{v1::Futures::service_full_name()};
  RawRequests<v1::Barriers::AsyncService> barriers{v1::Barriers::service_full_name()};
  RawRequests<v1::Conditions::AsyncService> conditions{v1::Conditions::service_full_name()};
  RawRequests<v1::Timers::AsyncService> timers{v1::Timers::service_full_name()};
  RawRequests<v1::Tasks::AsyncService> tasks{v1::Tasks::service_full_name()};
  RawRequests<v1::Admin::AsyncService> admin{v1::Admin::service_full_name()};
  RawRequests<v1::Stream::AsyncService> stream{v1::Stream::service_full_name()};
};

using Listeners = std::vector<std::unique_ptr<ListenerBase>>;

// Creates a listener for a unary method on `shard` and posts its first
// requests. A non-zero `stream_field` (an Operation.op field number) also
// makes `handler` run that operation on session streams.
// `method` is the name of the service's method ("Acquire"), which must
// take Req (checked at start).
template <class Req, class Resp, class Service>
void Listen(Env& env, apply::Shard& shard, Listeners& out, const char* method_name,
            RawRequests<Service>* service, runtime::Task<void> (*handler)(Env&, Op<Req, Resp>&),
            int stream_field = 0) {
  using CallT = UnaryCall<Req, Resp>;
  const int method = service->Method(method_name, Req::descriptor(), /*streaming=*/false);
  auto path = std::make_shared<const std::string>(service->Path(method_name));
  auto listener = std::make_unique<Listener<CallT, Op<Req, Resp>>>(
      &env, &shard,
      [service, method, path](CallT& call, grpc::ServerCompletionQueue* cq, void* tag) {
        call.method_path = path.get();
        service->RequestRaw(method, &call.ctx, &call.raw_request, &call.writer, cq, tag);
      },
      handler);
  for (int i = 0; i < env.requests_per_method; ++i) listener->Post();
  out.push_back(std::move(listener));
  if (stream_field != 0 && env.stream_ops != nullptr) {
    env.stream_ops->Register<Req, Resp>(stream_field, handler);
  }
}

// Creates a listener for server-streaming method `method_name` on `shard`
// and posts its first requests (a few: streams are long-lived and few).
// CallT is a ServerStreamCall.
template <class CallT, class Service>
void ListenStream(Env& env, apply::Shard& shard, Listeners& out, const char* method_name,
                  RawRequests<Service>* service, runtime::Task<void> (*handler)(Env&, CallT&)) {
  const int method = service->Method(method_name, CallT::Request::descriptor(), /*streaming=*/true);
  auto listener = std::make_unique<Listener<CallT>>(
      &env, &shard,
      [service, method](CallT& call, grpc::ServerCompletionQueue* cq, void* tag) {
        service->RequestRawStreaming(method, &call.ctx, &call.raw_request, call.writer.raw(), cq,
                                     tag);
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
