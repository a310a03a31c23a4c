// Observer: what the state machine tells an operator as it applies commands,
// for the server's log (one line per event). Output only: it never changes
// what is applied. Not called while a log is replayed (Shard unsets it
// then), so a restart does not report old events again.
//
// Threading: called on the applying shard's loop thread; an implementation
// shared by shards must be thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/clock.h"
#include "service/apply/command.h"

namespace baton::apply {

enum class SessionEnd { kClosed, kExpired };

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void SessionOpened(uint64_t session, Duration ttl, const std::string& label) = 0;
  virtual void SessionEnded(uint64_t session, SessionEnd why, Duration lived) = 0;
  // A lock or semaphore holding was granted, and later ended (released,
  // expired, or its session ended: LeaseExpired and SessionEnded say why).
  virtual void Granted(Kind kind, const std::string& name, uint64_t token, uint64_t session,
                       int64_t count) = 0;
  // `since`: when it was granted (cluster time).
  virtual void HoldingEnded(const std::string& name, uint64_t token, Time since) = 0;
  virtual void LeaseExpired(const std::string& name, uint64_t token, uint64_t session) = 0;
  // Applying log entry `index` took `took` (over the slow threshold: the
  // shard served nothing else meanwhile).
  virtual void SlowApply(uint64_t index, const Command& command, Duration took) = 0;
};

}  // namespace baton::apply
