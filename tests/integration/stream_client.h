// StreamClient: a minimal blocking client of baton.v1.Stream/Connect for
// tests. A reader thread collects answers by operation id; tests send
// operations and cancellations and wait for answers.
//
// Threading: Send/Cancel/HalfClose from one test thread at a time; Await and
// the counters from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "baton/v1/stream.grpc.pb.h"

namespace baton::testing {

class StreamClient {
 public:
  // Opens the stream and sends `hello`; Welcome() then waits for the answer.
  StreamClient(const std::shared_ptr<grpc::Channel>& channel, const v1::StreamHello& hello)
      : stub_(v1::Stream::NewStub(channel)), stream_(stub_->Connect(&ctx_)) {
    v1::StreamRequest first;
    *first.mutable_hello() = hello;
    stream_->Write(first);
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~StreamClient() {
    ctx_.TryCancel();
    reader_.join();
  }

  // The welcome, or nullopt if the stream ended first (see Finish()).
  std::optional<v1::StreamWelcome> Welcome() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return welcome_.has_value() || ended_; });
    return welcome_;
  }

  bool Send(std::vector<v1::Operation> ops, std::vector<uint64_t> cancel = {}) {
    v1::StreamRequest req;
    for (auto& op : ops) *req.add_ops() = std::move(op);
    for (uint64_t id : cancel) req.add_cancel(id);
    std::lock_guard write_lock(write_mu_);
    return stream_->Write(req);
  }
  bool Send(v1::Operation op) { return Send(std::vector<v1::Operation>{std::move(op)}); }
  bool Cancel(uint64_t id) { return Send(std::vector<v1::Operation>{}, {id}); }
  bool HalfClose() {
    std::lock_guard write_lock(write_mu_);
    return stream_->WritesDone();
  }
  // Breaks the stream as a crashing client would.
  void Break() { ctx_.TryCancel(); }

  // The answer to operation `id`, waiting up to `timeout` for it.
  std::optional<v1::OperationResult> Await(
      uint64_t id, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return results_.contains(id) || ended_; });
    auto it = results_.find(id);
    if (it == results_.end()) return std::nullopt;
    return it->second;
  }
  // How many answers to `id` arrived (must be at most one).
  int AnswersTo(uint64_t id) {
    std::lock_guard lock(mu_);
    return static_cast<int>(counts_[id]);
  }
  int messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  // The stream's final status, once it ended.
  grpc::Status Finish(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return ended_; });
    return status_;
  }

 private:
  void ReadLoop() {
    v1::StreamResponse resp;
    while (stream_->Read(&resp)) {
      std::lock_guard lock(mu_);
      ++messages_;
      if (resp.has_welcome()) welcome_ = resp.welcome();
      for (const auto& r : resp.results()) {
        ++counts_[r.id()];
        results_[r.id()] = r;
      }
      cv_.notify_all();
    }
    grpc::Status status = stream_->Finish();
    std::lock_guard lock(mu_);
    status_ = status;
    ended_ = true;
    cv_.notify_all();
  }

  grpc::ClientContext ctx_;
  std::unique_ptr<v1::Stream::Stub> stub_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::StreamRequest, v1::StreamResponse>> stream_;
  std::thread reader_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<v1::StreamWelcome> welcome_;
  std::map<uint64_t, v1::OperationResult> results_;
  std::map<uint64_t, int> counts_;
  int messages_ = 0;
  bool ended_ = false;
  grpc::Status status_;
};

// Operation builders.
inline v1::Operation AcquireOp(uint64_t id, const std::string& name, int64_t timeout_ms = -1) {
  v1::Operation op;
  op.set_id(id);
  op.mutable_acquire_lock()->set_name(name);
  if (timeout_ms >= 0) {
    op.mutable_acquire_lock()->mutable_timeout()->set_seconds(timeout_ms / 1000);
    op.mutable_acquire_lock()->mutable_timeout()->set_nanos((timeout_ms % 1000) * 1'000'000);
  }
  return op;
}
inline v1::Operation ReleaseOp(uint64_t id, const std::string& name, uint64_t token) {
  v1::Operation op;
  op.set_id(id);
  op.mutable_release_lock()->set_name(name);
  op.mutable_release_lock()->set_token(token);
  return op;
}
inline v1::Operation WaitEventOp(uint64_t id, const std::string& name) {
  v1::Operation op;
  op.set_id(id);
  op.mutable_wait_event()->set_name(name);
  return op;
}

}  // namespace baton::testing
