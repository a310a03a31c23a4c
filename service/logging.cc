#include "service/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <memory>

namespace baton::logging {
namespace {

std::atomic<int> least_level{static_cast<int>(Level::kInfo)};
std::atomic<bool> json_format{false};
std::shared_ptr<spdlog::logger>& TheLogger() {
  static auto* logger = new std::shared_ptr<spdlog::logger>();
  return *logger;
}

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

// Text values with spaces, quotes or '=' are quoted.
void AppendTextValue(std::string& out, std::string_view s) {
  bool plain = !s.empty() && s.find_first_of(" \"=\n\t") == std::string_view::npos;
  if (plain) {
    out += s;
  } else {
    AppendJsonString(out, s);
  }
}

}  // namespace

Level ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  return Level::kInfo;
}

void Init(Level least, bool json) {
  least_level = static_cast<int>(least);
  json_format = json;
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("batond", sink);
  // UTC, microseconds.
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      json ? R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l",%v})" : "%Y-%m-%dT%H:%M:%S.%fZ %l %v",
      spdlog::pattern_time_type::utc));
  logger->set_level(ToSpd(least));
  logger->flush_on(spdlog::level::debug);
  TheLogger() = logger;
}

bool Enabled(Level level) {
  return static_cast<int>(level) >= least_level.load(std::memory_order_relaxed);
}

Line::Line(Level level, std::string_view message) : on_(Enabled(level)), level_(level) {
  if (!on_) return;
  if (json_format.load(std::memory_order_relaxed)) {
    text_ = "\"msg\":";
    AppendJsonString(text_, message);
  } else {
    text_ = message;
  }
}

Line::~Line() {
  if (!on_) return;
  std::shared_ptr<spdlog::logger> logger = TheLogger();
  if (logger == nullptr) {
    std::fprintf(stderr, "%s\n", text_.c_str());
    return;
  }
  logger->log(ToSpd(level_), "{}", text_);
}

void Line::Key(std::string_view key) {
  if (json_format.load(std::memory_order_relaxed)) {
    text_ += ',';
    AppendJsonString(text_, key);
    text_ += ':';
  } else {
    text_ += ' ';
    text_ += key;
    text_ += '=';
  }
}

Line& Line::Str(std::string_view key, std::string_view value) {
  if (!on_) return *this;
  Key(key);
  if (json_format.load(std::memory_order_relaxed)) {
    AppendJsonString(text_, value);
  } else {
    AppendTextValue(text_, value);
  }
  return *this;
}

Line& Line::Int(std::string_view key, int64_t value) {
  if (!on_) return *this;
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

Line& Line::Uint(std::string_view key, uint64_t value) {
  if (!on_) return *this;
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

Line& Line::Dur(std::string_view key, Duration micros) {
  if (!on_) return *this;
  char buf[32];
  if (micros >= kSecond) {
    std::snprintf(buf, sizeof buf, "%.3gs", static_cast<double>(micros) / kSecond);
  } else if (micros >= kMillisecond) {
    std::snprintf(buf, sizeof buf, "%.3gms", static_cast<double>(micros) / kMillisecond);
  } else {
    std::snprintf(buf, sizeof buf, "%lldus", static_cast<long long>(micros));
  }
  return Str(key, buf);
}

}  // namespace baton::logging
