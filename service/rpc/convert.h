// Conversions between internal results and proto messages that more than one
// handler needs.
#pragma once

#include "baton/v1/common.pb.h"
#include "baton/v1/future.pb.h"
#include "baton/v1/queue.pb.h"
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
    case apply::Kind::kQueue:
      return v1::RESOURCE_KIND_QUEUE;
    case apply::Kind::kFuture:
      return v1::RESOURCE_KIND_FUTURE;
    case apply::Kind::kBarrier:
      return v1::RESOURCE_KIND_BARRIER;
    case apply::Kind::kTimer:
      return v1::RESOURCE_KIND_TIMER;
    case apply::Kind::kTasks:
      return v1::RESOURCE_KIND_TASKS;
  }
  return v1::RESOURCE_KIND_UNSPECIFIED;
}

inline v1::QueueOrder ToProto(primitives::QueueOrder o) {
  switch (o) {
    case primitives::QueueOrder::kFifo:
      return v1::QUEUE_ORDER_FIFO;
    case primitives::QueueOrder::kLifo:
      return v1::QUEUE_ORDER_LIFO;
    case primitives::QueueOrder::kPriority:
      return v1::QUEUE_ORDER_PRIORITY;
  }
  return v1::QUEUE_ORDER_UNSPECIFIED;
}

inline v1::FutureState ToProto(primitives::FutureState s) {
  switch (s) {
    case primitives::FutureState::kPending:
      return v1::FUTURE_STATE_PENDING;
    case primitives::FutureState::kResult:
      return v1::FUTURE_STATE_RESULT;
    case primitives::FutureState::kException:
      return v1::FUTURE_STATE_EXCEPTION;
    case primitives::FutureState::kCancelled:
      return v1::FUTURE_STATE_CANCELLED;
  }
  return v1::FUTURE_STATE_UNSPECIFIED;
}

}  // namespace baton::rpc
