// LockClient for the echo ceiling: "acquire" and "release" are one Echo call
// each, so a cycle costs two bare unary calls, as a Baton cycle does.
#include <chrono>
#include <memory>
#include <string>

#include "bench/lock_client.h"
#include "echo.grpc.pb.h"

namespace baton::bench {
namespace {

class EchoLockClient : public LockClient {
 public:
  EchoLockClient(std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds call_timeout)
      : stub_(baton::bench::Echo::NewStub(channel)), call_timeout_(call_timeout) {}

  absl::Status Open() override { return absl::OkStatus(); }

  absl::Status Acquire(const std::string& name) override {
    // Carry the name, as an Acquire request would.
    request_.set_payload(name);
    return Call("Echo (acquire)");
  }

  absl::Status Release() override { return Call("Echo (release)"); }

  void Close() override {}

 private:
  absl::Status Call(absl::string_view what) {
    baton::bench::EchoMessage response;
    grpc::ClientContext context;
    SetDeadline(context, call_timeout_);
    absl::Status status = FromGrpc(stub_->Echo(&context, request_, &response), what);
    if (status.ok() && response.payload() != request_.payload()) {
      return absl::DataLossError(absl::StrCat(what, ": reply differs from request"));
    }
    return status;
  }

  std::unique_ptr<baton::bench::Echo::Stub> stub_;
  const std::chrono::milliseconds call_timeout_;
  baton::bench::EchoMessage request_;
};

}  // namespace

std::unique_ptr<LockClient> NewEchoLockClient(std::shared_ptr<grpc::Channel> channel,
                                              std::chrono::milliseconds call_timeout) {
  return std::make_unique<EchoLockClient>(std::move(channel), call_timeout);
}

}  // namespace baton::bench
