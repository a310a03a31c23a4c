// Errors of the Baton client: the one place where a grpc::Status becomes an
// absl::Status.
//
// Every call returns absl::Status or absl::StatusOr<T>. The code is the
// server's gRPC code, mapped one to one (the two share canonical numbers, but
// the mapping is explicit so that a code unknown to absl becomes UNKNOWN
// rather than an invalid value); the message is passed through. What each code
// means for Baton (see proto/baton/v1/common.proto):
//
//   kDeadlineExceeded   not granted in time (a zero timeout: "busy", "empty")
//   kCancelled          cancelled by this client (Call::Cancel, CancelToken)
//   kAborted            the owning session ended while waiting (or was lost
//                       locally, see Client::session_lost), a queue deleted,
//                       a barrier broken
//   kFailedPrecondition releasing what you do not hold; a name used as another
//                       kind; a future already set
//   kNotFound           unknown session, task or resource (Describe)
//   kInvalidArgument    a bad name, TTL, timeout or count
//   kResourceExhausted  a server limit; Put with a zero timeout on a full queue
//   kUnavailable        the server is shutting down or cannot be reached
//
// Thread safety: pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace baton {

// Maps a gRPC status to an absl::Status with the same code and message.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace baton
