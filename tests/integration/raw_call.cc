#include "integration/raw_call.h"

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

namespace baton::testing {

namespace {

// Drains `cq` after its last operation.
void Drain(grpc::CompletionQueue& cq) {
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes, grpc::ClientContext* ctx) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto call = stub.PrepareUnaryCall(ctx, method, request, &cq);
  call->StartCall();
  grpc::ByteBuffer response;
  grpc::Status status;
  call->Finish(&response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  EXPECT_TRUE(cq.Next(&tag, &ok));
  Drain(cq);
  return status;
}

grpc::Status RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::vector<std::string>& messages, grpc::ClientContext* ctx) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(ctx, method, &cq);
  auto next = [&cq] {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  next();
  for (const std::string& bytes : messages) {
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, reinterpret_cast<void*>(2));
    if (!next()) break;  // the server ended the call
  }
  call->WritesDone(reinterpret_cast<void*>(3));
  next();
  grpc::ByteBuffer answer;
  do {
    call->Read(&answer, reinterpret_cast<void*>(5));
  } while (next());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  next();
  Drain(cq);
  return status;
}

}  // namespace baton::testing
