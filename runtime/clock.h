// Time as Baton's state machines see it.
//
// `Time` is cluster time: wall-clock microseconds since the Unix epoch, never
// decreasing (DESIGN.md §4.3). State machines never read a clock: time
// enters every command as an argument, stamped by the sequencer. The Clock
// interface is what the runtime reads; tests substitute ManualClock so no
// unit test sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>

namespace baton {

using Time = int64_t;      // microseconds of cluster time
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

// system_clock in microseconds, clamped so that it never goes back: a step
// back of the machine's clock stalls time until the clock catches up, and
// never reorders deadlines. Thread-safe.
class WallClock final : public Clock {
 public:
  Time Now() const override {
    Time wall = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
    Time last = last_.load(std::memory_order_relaxed);
    while (wall > last && !last_.compare_exchange_weak(last, wall, std::memory_order_relaxed)) {
    }
    return wall > last ? wall : last;
  }

 private:
  mutable std::atomic<Time> last_{0};
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
