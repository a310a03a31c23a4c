// Calls any method with a request given as bytes, through gRPC's generic
// stub: for tests that go over every method of the API by its descriptor.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

namespace baton::testing {

// Calls unary `method` ("/baton.v1.Locks/Acquire") with `bytes` as the
// request, in `ctx`; the call's status.
grpc::Status RawUnary(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                      const std::string& bytes, grpc::ClientContext* ctx);

// Calls streaming `method` with `messages` as its requests (then closes
// its side), reads the answers until the server ends the call, and returns
// the call's final status (a stream the server does not end lasts until
// `ctx`'s deadline).
grpc::Status RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                       const std::vector<std::string>& messages, grpc::ClientContext* ctx);

// RawStream with one request: a server-streaming method.
inline grpc::Status RawServerStream(const std::shared_ptr<grpc::Channel>& channel,
                                    const std::string& method, const std::string& bytes,
                                    grpc::ClientContext* ctx) {
  return RawStream(channel, method, {bytes}, ctx);
}

}  // namespace baton::testing
