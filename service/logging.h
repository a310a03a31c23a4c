// logging: batond's log. One line per event, to stderr: a UTC timestamp, a
// level, a message and key=value fields; or, with --log_format=json, one
// JSON object per line with the same content ("ts", "level", "msg", then
// the fields). Written through spdlog. Never a secret: no field carries
// payloads, tokens of other principals' credentials or file contents.
//
//   logging::Info("session opened").Uint("session", id).Dur("ttl", ttl);
//
// Threading: Init once on the main thread before any line; lines from any
// thread (each is written whole).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "runtime/clock.h"

namespace baton::logging {

enum class Level { kDebug, kInfo, kWarn, kError };

// Parses "debug", "info", "warn" or "error" (config.h checked it).
Level ParseLevel(std::string_view name);
void Init(Level least, bool json);
bool Enabled(Level level);

// One log line; written when it goes out of scope, if its level is on.
class Line {
 public:
  Line(Level level, std::string_view message);
  ~Line();
  Line(const Line&) = delete;
  Line& operator=(const Line&) = delete;

  Line& Str(std::string_view key, std::string_view value);
  Line& Int(std::string_view key, int64_t value);
  Line& Uint(std::string_view key, uint64_t value);
  // A duration, as "1.5s" / "250ms" / "40us".
  Line& Dur(std::string_view key, Duration micros);

 private:
  void Key(std::string_view key);
  const bool on_;
  const Level level_;
  std::string text_;
};

inline Line Debug(std::string_view m) { return Line(Level::kDebug, m); }
inline Line Info(std::string_view m) { return Line(Level::kInfo, m); }
inline Line Warn(std::string_view m) { return Line(Level::kWarn, m); }
inline Line Error(std::string_view m) { return Line(Level::kError, m); }

}  // namespace baton::logging
