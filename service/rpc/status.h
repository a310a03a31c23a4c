// The one place where Baton's internal absl::Status becomes a grpc::Status.
// absl and gRPC share canonical code numbers; the message passes through
// unchanged, so write messages a person can act on where the error arises.
// A follower's refusal (an UNAVAILABLE carrying log::kLeaderPayload) also
// gets a google.rpc.ErrorInfo naming the leader in the status details.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace baton::rpc {

// The type URL of the payload the sequencer puts on a follower's refusal
// (log::kLeaderPayload; repeated here so this header stays light).
inline constexpr char kLeaderAddressPayload[] = "type.baton.dev/leader-address";

// `s` with a google.rpc.Status in its details holding ErrorInfo{reason
// "NOT_LEADER", domain "baton.dev", metadata {"leader": address}}.
grpc::Status NotLeaderStatus(const absl::Status& s, const std::string& leader_address);

inline grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  if (s.code() == absl::StatusCode::kUnavailable) {
    if (auto leader = s.GetPayload(kLeaderAddressPayload)) {
      return NotLeaderStatus(s, std::string(*leader));
    }
  }
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace baton::rpc
