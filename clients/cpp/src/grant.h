// Conversions of the wire enums shared by several primitives. Pure functions.
#pragma once

#include "baton/v1/common.pb.h"
#include "baton/wait_options.h"

namespace baton::internal {

inline GrantOutcome FromProto(v1::GrantOutcome outcome) {
  switch (outcome) {
    case v1::GRANT_OUTCOME_IMMEDIATE:
      return GrantOutcome::kImmediate;
    case v1::GRANT_OUTCOME_AFTER_WAIT:
      return GrantOutcome::kAfterWait;
    case v1::GRANT_OUTCOME_REPLAYED:
      return GrantOutcome::kReplayed;
    default:
      return GrantOutcome::kUnspecified;
  }
}

}  // namespace baton::internal
