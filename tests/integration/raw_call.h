// Calls any method with a request given as bytes, through gRPC's generic
// stub: for tests that go over every method of the API by its descriptor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

namespace baton::testing {

// Calls unary `method` ("/baton.v1.Locks/Acquire") with `bytes` as the
// request, in `ctx`; the call's status.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes, grpc::ClientContext* ctx);

// Calls server-streaming `method` with `bytes` as the request, in `ctx`; the
// call's final status (answers, if any, are not read: give `ctx` a deadline).
grpc::Status RawServerStream(const std::shared_ptr<grpc::Channel>& channel,
                             const std::string& method, const std::string& bytes,
                             grpc::ClientContext* ctx);

}  // namespace baton::testing
