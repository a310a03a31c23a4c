// Request validation shared by every handler: names, durations, deadlines.
// Every function returns INVALID_ARGUMENT with the field and the reason.
#pragma once

#include <google/protobuf/timestamp.pb.h>
#include <grpcpp/server_context.h>

#include <chrono>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/duration.pb.h"
#include "runtime/clock.h"
#include "service/apply/limits.h"

namespace baton::rpc {

inline constexpr size_t kMaxNameBytes = 256;
inline constexpr size_t kMaxRequestIdBytes = 128;
inline constexpr size_t kMaxLabelBytes = 256;

// A resource name: 1..256 bytes, each printable ASCII without space.
absl::Status ValidateName(const std::string& name, const char* field = "name");

// Free text limited in length (request ids, labels).
absl::Status ValidateLength(const std::string& value, size_t max, const char* field);

// Converts a proto Duration to microseconds. Rejects malformed values
// (nanos out of range or of the other sign), negatives, and values over
// `max`; zero only when `allow_zero`.
absl::StatusOr<Duration> ToMicros(const google::protobuf::Duration& d, const char* field,
                                  Duration max, bool allow_zero);

// When a wait started now must end: the earlier of `timeout` (if the request
// has one; zero means now, i.e. try once) and the requester's gRPC deadline
// (`rpc_deadline`, max() for none) less a small margin, so that the server
// answers DEADLINE_EXCEEDED itself before the client gives up. kForever when
// neither is set.
absl::StatusOr<Time> WaitDeadline(std::chrono::system_clock::time_point rpc_deadline,
                                  bool has_timeout, const google::protobuf::Duration& timeout,
                                  Time now);

// Whether a request asked not to wait: a `timeout` given and zero (what a
// client's recovery sends; apply::AcquirePermits::nowait).
inline bool NoWait(bool has_timeout, const google::protobuf::Duration& timeout) {
  return has_timeout && timeout.seconds() == 0 && timeout.nanos() == 0;
}

// A new session's TTL (Sessions/Open, the session stream's hello): required,
// from the limits' minimum to their maximum.
absl::StatusOr<Duration> SessionTtl(const apply::Limits& limits, bool has_ttl,
                                    const google::protobuf::Duration& ttl);

void ToProto(Duration micros, google::protobuf::Duration* out);

// The delay from now until wall-clock time `at` (0 if it is past), as a
// Duration on the server's clock; INVALID_ARGUMENT (naming `field`) past
// `max`.
absl::StatusOr<Duration> DelayUntil(const google::protobuf::Timestamp& at, const char* field,
                                    Duration max);

// True if `s` is well-formed UTF-8, so that it may go into a proto3 string
// field (a `text` convenience field mirroring a bytes payload).
bool IsValidUtf8(std::string_view s);

}  // namespace baton::rpc
