#include "service/rpc/validate.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace baton::rpc {

absl::Status ValidateName(const std::string& name, const char* field) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is empty: name the resource, e.g. \"billing/migrate\""));
  }
  if (name.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", name.size(), " bytes long; the limit is ", kMaxNameBytes));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s has byte 0x%02x at offset %d; names are printable ASCII without spaces", field, c,
          i));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLength(const std::string& value, size_t max, const char* field) {
  if (value.size() <= max) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(field, " is ", value.size(), " bytes long; the limit is ", max));
}

absl::StatusOr<Duration> ToMicros(const google::protobuf::Duration& d, const char* field,
                                  Duration max, bool allow_zero) {
  int64_t s = d.seconds();
  int32_t n = d.nanos();
  if (n <= -1'000'000'000 || n >= 1'000'000'000 || (s > 0 && n < 0) || (s < 0 && n > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is not a valid duration"));
  }
  if (s < 0 || n < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is negative"));
  }
  if (s > max / kSecond) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is ", s, "s; the limit is ", max / kSecond, "s"));
  }
  Duration us = s * kSecond + n / 1000;
  if (us > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " exceeds the limit of ", max / kSecond, "s"));
  }
  if (!allow_zero && us < kMillisecond) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " must be positive (at least 1ms), e.g. \"30s\""));
  }
  return us;
}

absl::StatusOr<Time> WaitDeadline(std::chrono::system_clock::time_point rpc_deadline,
                                  bool has_timeout, const google::protobuf::Duration& timeout,
                                  Time now) {
  Time deadline = kForever;
  if (has_timeout) {
    auto t = ToMicros(timeout, "timeout", 365LL * 24 * 3600 * kSecond, /*allow_zero=*/true);
    if (!t.ok()) return t.status();
    deadline = AddSaturating(now, *t);
  }
  auto grpc_deadline = rpc_deadline;
  if (grpc_deadline != std::chrono::system_clock::time_point::max()) {
    auto remaining = std::chrono::duration_cast<std::chrono::microseconds>(
                         grpc_deadline - std::chrono::system_clock::now())
                         .count();
    // Answer a little before the client's deadline, so a timed-out wait is
    // reported by us rather than cut off: 5% of the time left, at most 20ms.
    Duration margin = std::min<Duration>(remaining / 20, 20 * kMillisecond);
    Time by_grpc = remaining <= 0 ? now : now + remaining - margin;
    deadline = std::min(deadline, by_grpc);
  }
  return deadline;
}

void ToProto(Duration micros, google::protobuf::Duration* out) {
  if (micros < 0) micros = 0;
  out->set_seconds(micros / kSecond);
  out->set_nanos(static_cast<int32_t>((micros % kSecond) * 1000));
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? c : c & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n;
  }
  return true;
}

}  // namespace baton::rpc

namespace baton::rpc {

absl::StatusOr<Duration> DelayUntil(const google::protobuf::Timestamp& at, const char* field,
                                    Duration max) {
  int64_t at_us = at.seconds() * kSecond + at.nanos() / 1000;
  int64_t wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  Duration in = std::max<int64_t>(0, at_us - wall_us);
  if (in > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is more than ", max / kSecond, "s away; that is the limit"));
  }
  return in;
}

}  // namespace baton::rpc

namespace baton::rpc {

absl::StatusOr<Duration> SessionTtl(const apply::Limits& limits, bool has_ttl,
                                    const google::protobuf::Duration& ttl) {
  if (!has_ttl) {
    return absl::InvalidArgumentError(
        "ttl is required: how long the session lives without a keep-alive, e.g. \"30s\"");
  }
  auto micros = ToMicros(ttl, "ttl", limits.max_session_ttl, /*allow_zero=*/false);
  if (micros.ok() && *micros < limits.min_session_ttl) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl must be at least ", limits.min_session_ttl / kMillisecond, "ms"));
  }
  return micros;
}

}  // namespace baton::rpc
