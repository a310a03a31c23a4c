#include "service/event_log.h"

#include <chrono>

#include "baton/internal/v1/command.pb.h"
#include "service/apply/codec.h"
#include "service/logging.h"

namespace baton {

void EventLog::SessionOpened(uint64_t session, Duration ttl, const std::string& label) {
  logging::Info("session opened").Uint("session", session).Dur("ttl", ttl).Str("label", label);
}

void EventLog::SessionEnded(uint64_t session, apply::SessionEnd why, Duration lived) {
  if (why == apply::SessionEnd::kExpired) {
    // The client stopped keeping it alive: what it held is released now.
    logging::Info("session expired").Uint("session", session).Dur("lived", lived);
  } else {
    logging::Info("session closed").Uint("session", session).Dur("lived", lived);
  }
}

void EventLog::Granted(apply::Kind kind, const std::string& name, uint64_t token, uint64_t session,
                       int64_t count) {
  if (!logging::Enabled(logging::Level::kDebug)) return;
  logging::Debug("granted")
      .Str("kind", apply::KindName(kind))
      .Str("name", name)
      .Uint("token", token)
      .Uint("session", session)
      .Int("count", count);
}

void EventLog::HoldingEnded(const std::string& name, uint64_t token, Time since) {
  if (!logging::Enabled(logging::Level::kDebug)) return;
  Time now = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  logging::Debug("released").Str("name", name).Uint("token", token).Dur("held", now - since);
}

void EventLog::LeaseExpired(const std::string& name, uint64_t token, uint64_t session) {
  logging::Info("lease expired").Str("name", name).Uint("token", token).Uint("session", session);
}

void EventLog::SlowApply(uint64_t index, const apply::Command& command, Duration took) {
  internal::v1::Command encoded;
  apply::Encode(command, &encoded);
  const auto* field =
      internal::v1::Command::descriptor()->FindFieldByNumber(encoded.command_case());
  logging::Warn("slow apply: the shard served nothing else meanwhile")
      .Uint("index", index)
      .Str("command", field != nullptr ? field->name() : "unknown")
      .Dur("took", took);
}

}  // namespace baton
