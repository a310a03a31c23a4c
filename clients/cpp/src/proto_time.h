// Conversions between absl time types, protobuf Duration/Timestamp and the
// std::chrono deadlines gRPC takes. Pure functions; any thread.
#pragma once

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <chrono>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace baton::internal {

google::protobuf::Duration ToProto(absl::Duration d);
// Unset fields (has_x() false) should be checked by the caller; this maps a
// present value.
absl::Duration FromProto(const google::protobuf::Duration& d);
google::protobuf::Timestamp ToProtoTime(absl::Time t);
std::chrono::system_clock::time_point ToChrono(absl::Time t);

// A deadline `d` from now; InfiniteFuture for an infinite duration.
absl::Time DeadlineIn(absl::Duration d);

}  // namespace baton::internal
