// Conversions between internal results and proto messages that more than one
// handler needs.
#pragma once

#include "baton/v1/common.pb.h"
#include "service/apply/command.h"
#include "service/apply/result.h"

namespace baton::rpc {

inline v1::GrantOutcome ToProto(apply::GrantHow how) {
  switch (how) {
    case apply::GrantHow::kImmediate:
      return v1::GRANT_OUTCOME_IMMEDIATE;
    case apply::GrantHow::kAfterWait:
      return v1::GRANT_OUTCOME_AFTER_WAIT;
    case apply::GrantHow::kReplayed:
      return v1::GRANT_OUTCOME_REPLAYED;
  }
  return v1::GRANT_OUTCOME_UNSPECIFIED;
}

inline v1::ResourceKind ToProto(apply::Kind kind) {
  switch (kind) {
    case apply::Kind::kLock:
      return v1::RESOURCE_KIND_LOCK;
    case apply::Kind::kSemaphore:
      return v1::RESOURCE_KIND_SEMAPHORE;
    case apply::Kind::kEvent:
      return v1::RESOURCE_KIND_EVENT;
  }
  return v1::RESOURCE_KIND_UNSPECIFIED;
}

}  // namespace baton::rpc
