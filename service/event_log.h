// EventLog: the state machine's events (apply::Observer) as log lines.
// Sessions opened, closed and expired, and leases expired, at info; lock
// and semaphore grants and their end at debug; an entry slow to apply at
// warn, naming its command.
//
// Threading: any shard's thread (logging is thread-safe).
#pragma once

#include "service/apply/observer.h"

namespace baton {

class EventLog final : public apply::Observer {
 public:
  void SessionOpened(uint64_t session, Duration ttl, const std::string& label) override;
  void SessionEnded(uint64_t session, apply::SessionEnd why, Duration lived) override;
  void Granted(apply::Kind kind, const std::string& name, uint64_t token, uint64_t session,
               int64_t count) override;
  void HoldingEnded(const std::string& name, uint64_t token, Time since) override;
  void LeaseExpired(const std::string& name, uint64_t token, uint64_t session) override;
  void SlowApply(uint64_t index, const apply::Command& command, Duration took) override;
};

}  // namespace baton
