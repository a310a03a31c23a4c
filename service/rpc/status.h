// The one place where Baton's internal absl::Status becomes a grpc::Status.
// absl and gRPC share canonical code numbers; the message passes through
// unchanged, so write messages a person can act on where the error arises.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace baton::rpc {

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace baton::rpc
