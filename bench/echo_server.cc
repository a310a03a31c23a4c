// baton-echo: a bare gRPC echo server, the ceiling that Baton's unary rates
// are compared with. It does the least a gRPC server can do: the async
// completion-queue API, one completion queue and one polling thread per core,
// many requests posted in advance, and an immediate reply.
//
//   baton-echo --listen 127.0.0.1:0 [--threads N] [--prepost N]
//
// Prints "listening on HOST:PORT" (the port actually bound) once it serves,
// and shuts down cleanly on SIGINT or SIGTERM.
#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "echo.grpc.pb.h"

namespace baton::bench {
namespace {

struct EchoOptions {
  std::string listen = "127.0.0.1:0";
  // Completion queues, one polling thread each.
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Requests kept posted on each queue: the calls that can start without
  // waiting for a thread to post one.
  int prepost = 128;
};

// One completion queue, the thread that polls it and the guard that keeps
// anything from being posted to it after shutdown has begun.
struct Queue {
  std::unique_ptr<grpc::ServerCompletionQueue> cq;
  std::mutex mu;
  bool shutting_down = false;  // Guarded by mu.
};

// One Echo call, from the posted request to the sent reply. Owns itself: it
// is deleted by the completion that ends it.
class EchoCall {
 public:
  // Posts a request for the next Echo call on `queue`, unless the queue is
  // shutting down.
  static void Post(Echo::AsyncService& service, Queue& queue) {
    std::lock_guard<std::mutex> lock(queue.mu);
    if (queue.shutting_down) return;
    auto* call = new EchoCall(service, queue);
    service.RequestEcho(&call->context_, &call->request_, &call->responder_, queue.cq.get(),
                        queue.cq.get(), call);
  }

  // Advances the call on the completion of its pending operation.
  void Proceed(bool ok) {
    if (state_ == State::kReplying || !ok) {
      delete this;  // Reply sent, or the request ended by shutdown.
      return;
    }
    // Keep the number of posted requests constant.
    Post(service_, queue_);
    std::lock_guard<std::mutex> lock(queue_.mu);
    if (queue_.shutting_down) {
      delete this;
      return;
    }
    state_ = State::kReplying;
    responder_.Finish(request_, grpc::Status::OK, this);
  }

 private:
  enum class State { kWaiting, kReplying };

  EchoCall(Echo::AsyncService& service, Queue& queue)
      : service_(service), queue_(queue), responder_(&context_) {}

  Echo::AsyncService& service_;
  Queue& queue_;
  State state_ = State::kWaiting;
  grpc::ServerContext context_;
  EchoMessage request_;
  grpc::ServerAsyncResponseWriter<EchoMessage> responder_;
};

void Poll(Queue& queue) {
  void* tag = nullptr;
  bool ok = false;
  while (queue.cq->Next(&tag, &ok)) static_cast<EchoCall*>(tag)->Proceed(ok);
}

bool ParseInt(absl::string_view value, int min, int max, int* out) {
  return absl::SimpleAtoi(value, out) && *out >= min && *out <= max;
}

// Returns false on a bad command line.
bool ParseFlags(int argc, char** argv, EchoOptions& options) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view flag = argv[i];
    absl::string_view value;
    if (size_t eq = flag.find('='); eq != absl::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return false;
    }
    if (flag == "--listen" && !value.empty()) {
      options.listen = std::string(value);
    } else if (flag == "--threads") {
      if (!ParseInt(value, 1, 64, &options.threads)) return false;
    } else if (flag == "--prepost") {
      if (!ParseInt(value, 1, 100000, &options.prepost)) return false;
    } else {
      return false;
    }
  }
  return true;
}

int Serve(const EchoOptions& options) {
  // Block the stop signals in this thread before any other thread exists, so
  // that every thread inherits the mask and only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Echo::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<Queue> queues(options.threads);
  for (Queue& queue : queues) queue.cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "baton-echo: cannot listen on %s\n", options.listen.c_str());
    return 1;
  }

  for (Queue& queue : queues) {
    for (int i = 0; i < options.prepost; ++i) EchoCall::Post(service, queue);
  }
  std::vector<std::thread> pollers;
  for (Queue& queue : queues) pollers.emplace_back(Poll, std::ref(queue));

  const std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::printf("listening on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  // Order matters: stop the server (cancelling calls in flight), then stop
  // posting, then shut the queues and let the pollers drain them.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (Queue& queue : queues) {
    {
      std::lock_guard<std::mutex> lock(queue.mu);
      queue.shutting_down = true;
    }
    queue.cq->Shutdown();
  }
  for (std::thread& poller : pollers) poller.join();
  return 0;
}

}  // namespace
}  // namespace baton::bench

int main(int argc, char** argv) {
  baton::bench::EchoOptions options;
  if (!baton::bench::ParseFlags(argc, argv, options)) {
    std::fprintf(stderr,
                 "usage: baton-echo [--listen HOST:PORT] [--threads N] [--prepost N]\n"
                 "  defaults: --listen 127.0.0.1:0 --threads <cores> --prepost 128\n");
    return 2;
  }
  return baton::bench::Serve(options);
}
