// Time as Baton's state machines see it.
//
// `Time` is microseconds on the server's monotonic clock. State machines never
// read a clock: time enters every command as an argument (DESIGN.md §4.3).
// The Clock interface is what the runtime reads; tests substitute ManualClock
// so no unit test sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace baton {

using Time = int64_t;      // microseconds, monotonic
using Duration = int64_t;  // microseconds

inline constexpr Time kForever = std::numeric_limits<int64_t>::max();
inline constexpr Duration kMillisecond = 1000;
inline constexpr Duration kSecond = 1000 * kMillisecond;

// Adds without overflowing past kForever.
inline Time AddSaturating(Time t, Duration d) {
  if (t == kForever || d >= kForever - t) return kForever;
  return t + d;
}

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time Now() const = 0;
};

// steady_clock in microseconds. Thread-safe.
class SteadyClock final : public Clock {
 public:
  Time Now() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Time start = 1'000'000) : now_(start) {}
  Time Now() const override { return now_.load(); }
  void Advance(Duration d) { now_ += d; }

 private:
  std::atomic<Time> now_;
};

}  // namespace baton
