// Test helpers shared by the snapshot and re-sharding tests: a canonical
// text of effects (to compare two runs field by field), applying a command
// with the commands it forwards, and a seeded random workload over every
// command. Test-only; single-threaded.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/apply/shard_state_test_util.h"
#include "service/primitives/field_count.h"

namespace baton::apply {
// A timer's action.
inline std::shared_ptr<const Command> Action(Command c) {
  return std::make_shared<const Command>(c);
}

// --- A canonical text of effects, to compare two runs field by field. ---

template <class T>
void Dump(std::ostream& o, const T& v);

template <class... Ts>
void DumpAll(std::ostream& o, const Ts&... vs) {
  o << '{';
  ((Dump(o, vs), o << ','), ...);
  o << '}';
}

template <class T>
inline constexpr bool kIsVector = false;
template <class T>
inline constexpr bool kIsVector<std::vector<T>> = true;
template <class T>
inline constexpr bool kIsOptional = false;
template <class T>
inline constexpr bool kIsOptional<std::optional<T>> = true;
template <class T>
inline constexpr bool kIsBoxed = false;
template <class T>
inline constexpr bool kIsBoxed<Boxed<T>> = true;
template <class T>
inline constexpr bool kIsVariant = false;
template <class... Ts>
inline constexpr bool kIsVariant<std::variant<Ts...>> = true;

// Members of an aggregate, by structured binding (up to 30).
#define BATON_DUMP_N(n, ...)       \
  if constexpr (kCount == n) {     \
    const auto& [__VA_ARGS__] = v; \
    DumpAll(o, __VA_ARGS__);       \
    return;                        \
  }
template <class T>
void DumpAggregate(std::ostream& o, const T& v) {
  constexpr size_t kCount = primitives::FieldCount<T>();
  if constexpr (kCount == 0) {
    o << "{}";
    return;
  }
  BATON_DUMP_N(1, a1)
  BATON_DUMP_N(2, a1, a2)
  BATON_DUMP_N(3, a1, a2, a3)
  BATON_DUMP_N(4, a1, a2, a3, a4)
  BATON_DUMP_N(5, a1, a2, a3, a4, a5)
  BATON_DUMP_N(6, a1, a2, a3, a4, a5, a6)
  BATON_DUMP_N(7, a1, a2, a3, a4, a5, a6, a7)
  BATON_DUMP_N(8, a1, a2, a3, a4, a5, a6, a7, a8)
  BATON_DUMP_N(9, a1, a2, a3, a4, a5, a6, a7, a8, a9)
  BATON_DUMP_N(10, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10)
  BATON_DUMP_N(11, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11)
  BATON_DUMP_N(12, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12)
  BATON_DUMP_N(13, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13)
  BATON_DUMP_N(14, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14)
  BATON_DUMP_N(15, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15)
  BATON_DUMP_N(16, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16)
  BATON_DUMP_N(17, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17)
  BATON_DUMP_N(18, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18)
  BATON_DUMP_N(19, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19)
  BATON_DUMP_N(20, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20)
  BATON_DUMP_N(21, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21)
  BATON_DUMP_N(22, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22)
  BATON_DUMP_N(23, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23)
  BATON_DUMP_N(24, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24)
  BATON_DUMP_N(25, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25)
  BATON_DUMP_N(26, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26)
  BATON_DUMP_N(27, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26, a27)
  BATON_DUMP_N(28, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18,
               a19, a20, a21, a22, a23, a24, a25, a26, a27, a28)
  static_assert(kCount <= 28, "extend DumpAggregate");
}
#undef BATON_DUMP_N

template <class T>
void Dump(std::ostream& o, const T& v) {
  if constexpr (std::is_same_v<T, bool> || std::is_integral_v<T>) {
    o << static_cast<int64_t>(v);
  } else if constexpr (std::is_enum_v<T>) {
    o << static_cast<int64_t>(v);
  } else if constexpr (std::is_same_v<T, std::string>) {
    o << '"' << v << '"';
  } else if constexpr (std::is_same_v<T, absl::Status>) {
    o << v.ToString();
  } else if constexpr (std::is_same_v<T, Command>) {
    Dump(o, static_cast<const CommandVariant&>(v));
  } else if constexpr (std::is_same_v<T, std::shared_ptr<const Command>>) {
    if (v) Dump(o, *v);
  } else if constexpr (kIsVector<T>) {
    o << '[';
    for (const auto& e : v) Dump(o, e), o << ',';
    o << ']';
  } else if constexpr (kIsOptional<T>) {
    if (v) Dump(o, *v);
  } else if constexpr (kIsBoxed<T>) {
    Dump(o, *v);
  } else if constexpr (kIsVariant<T>) {
    o << v.index() << ':';
    std::visit([&](const auto& x) { Dump(o, x); }, v);
  } else if constexpr (std::is_same_v<T, Result>) {
    DumpAll(o, v.status, v.value);
  } else if constexpr (std::is_same_v<T, Reply>) {
    DumpAll(o, v.op, v.result);
  } else {
    DumpAggregate(o, v);
  }
}

inline std::string Text(const Effects& effects) {
  std::ostringstream o;
  Dump(o, effects);
  return o.str();
}

// Appends to `all` the effects of the commands it forwards (timers'
// actions), applied on `h` (this is the only shard), as the shard driver
// would apply them as derived entries; returns `all`.
inline Effects WithForwarded(Harness& h, Effects all) {
  for (size_t i = 0; i < all.size() && i < 1000; ++i) {
    if (auto* f = std::get_if<Forward>(&all[i])) {
      Command next = f->command;
      Effects more = h.Apply(std::move(next), 0);
      all.insert(all.end(), more.begin(), more.end());
    }
  }
  return all;
}

// Applies `c` for op `op`, with what it forwards.
inline Effects ApplyAll(Harness& h, Command c, uint64_t op) {
  return WithForwarded(h, h.Apply(std::move(c), op));
}

// Moves time forward, with what the timers that fire forward.
inline Effects AdvanceAll(Harness& h, Duration d) { return WithForwarded(h, h.Advance(d)); }

class Workload {
 public:
  explicit Workload(uint32_t seed) : rng_(seed) {}

  // One step: a command and its op, or a time advance (no command).
  struct Step {
    std::optional<Command> command;
    uint64_t op = 0;
    Duration advance = 0;
  };

  Step Next(Time now) {
    Step s;
    s.op = ++op_;
    if (Pick(8) == 0) {
      s.advance = Pick(3) == 0 ? Pick(5000) * kMillisecond : Pick(300) * kMillisecond;
      return s;
    }
    s.command = MakeCommand(now);
    return s;
  }

  // Learns ids from the effects of a step (tokens, sessions, receipts...).
  void Learn(const Effects& effects) {
    for (const Effect& e : effects) {
      const auto* r = std::get_if<Reply>(&e);
      if (r == nullptr || !r->result.ok()) continue;
      const ResultValue& v = r->result.value;
      if (auto* g = std::get_if<Granted>(&v)) {
        Remember(tokens_, g->token);
        Remember(deliveries_, g->delivery);
      } else if (auto* si = std::get_if<Boxed<SessionInfo>>(&v)) {
        Remember(sessions_, (*si)->session);
      } else if (auto* got = std::get_if<GotItems>(&v)) {
        for (const auto& item : got->items) {
          Remember(receipts_, item.receipt);
          Remember(item_ids_, item.item_id);
        }
      } else if (auto* put = std::get_if<PutDone>(&v)) {
        for (uint64_t id : put->item_ids) Remember(item_ids_, id);
      }
    }
  }

 private:
  uint64_t Pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  template <class T>
  const T& Of(const std::vector<T>& v) {
    return v[Pick(v.size())];
  }
  static void Remember(std::vector<uint64_t>& v, uint64_t x) {
    if (x == 0) return;
    v.push_back(x);
    if (v.size() > 32) v.erase(v.begin());
  }
  uint64_t Any(const std::vector<uint64_t>& v) { return v.empty() ? Pick(5) : Of(v); }
  uint64_t Session() { return Pick(3) == 0 || sessions_.empty() ? 0 : Of(sessions_); }
  Time Deadline(Time now) {
    switch (Pick(4)) {
      case 0:
        return now;  // try once
      case 1:
        return kForever;
      default:
        return now + static_cast<Duration>(Pick(4000)) * kMillisecond;
    }
  }
  std::string Name(const char* prefix, int n) { return prefix + std::to_string(Pick(n)); }
  std::string Data() { return std::string(Pick(6), static_cast<char>('a' + Pick(26))); }
  std::optional<primitives::QueueOptions> Options(const std::string& name) {
    if (Pick(2) == 0) return std::nullopt;
    // The order follows the name so that declarations mostly agree.
    auto order = static_cast<primitives::QueueOrder>(1 + (name.back() - '0') % 3);
    return primitives::QueueOptions{order, static_cast<uint32_t>(2 + Pick(4)), 64,
                                    static_cast<uint32_t>(Pick(3))};
  }

  Command MakeCommand(Time now) {
    std::string lock = Name("lock", 3), queue = Name("q", 3), task = Name("work", 2);
    switch (Pick(52)) {
      case 0:
      case 1:
        return LockCmd(lock, Session(), Pick(2) ? kSecond : 3 * kSecond, Deadline(now),
                       Pick(3) == 0 ? absl::StrCat("r", Pick(3)) : "");
      case 2:
        return SemCmd(Name("sem", 2), 3, 1 + static_cast<int64_t>(Pick(3)), Deadline(now),
                      Session());
      case 3:
        return ReleasePermits{Pick(3) ? Kind::kLock : Kind::kSemaphore,
                              Pick(2) ? lock : Name("sem", 2), Any(tokens_), Session(),
                              static_cast<int64_t>(Pick(2))};
      case 4:
        return RefreshPermits{Kind::kLock, lock, Any(tokens_), Session(), 2 * kSecond};
      case 5:
        return Undeliver{Pick(2) ? Kind::kLock : Kind::kSemaphore, Pick(2) ? lock : Name("sem", 2),
                         Any(tokens_), Any(deliveries_)};
      case 6:
        return SetEvent{Name("ev", 2)};
      case 7:
        return ClearEvent{Name("ev", 2)};
      case 8:
        return WaitEvent{Name("ev", 2), Session(), Deadline(now)};
      case 9:
        return WatchEvent{Name("ev", 2)};
      case 10:
        return UnwatchEvent{Name("ev", 2)};
      case 11:
        return OpenSession{static_cast<Duration>(1 + Pick(5)) * kSecond, Data()};
      case 12:
        return KeepAlive{Any(sessions_)};
      case 13:
        return Pick(2) ? Command(AttachStream{Any(sessions_)})
                       : Command(DetachStream{Any(sessions_)});
      case 14:
        return CloseSession{Any(sessions_)};
      case 15:
        return DescribeSession{Any(sessions_)};
      case 16:
        return ListResources{std::nullopt, "", "", 100};
      case 17:
      case 18: {
        const char* kinds[] = {"lock", "sem", "ev", "q", "fut", "bar", "tm", "work"};
        return DescribeResource{Name(kinds[Pick(8)], 3)};
      }
      case 19:
      case 20: {
        PutItems c;
        c.name = queue;
        c.options = Options(queue);
        for (uint64_t i = 0, n = 1 + Pick(3); i < n; ++i) {
          c.items.push_back({Data(), static_cast<int64_t>(Pick(5)),
                             Pick(4) == 0 ? static_cast<Duration>(Pick(2000)) * kMillisecond : 0});
        }
        c.deadline = Deadline(now);
        c.nowait = c.deadline == now;
        return c;
      }
      case 21:
      case 22: {
        GetItems c;
        c.name = queue;
        c.options = Options(queue);
        c.max_items = static_cast<uint32_t>(1 + Pick(3));
        c.session = Session();
        c.lease = c.session == 0 || Pick(2) ? static_cast<Duration>(1 + Pick(3)) * kSecond : 0;
        c.deadline = Deadline(now);
        c.dead_letters = Pick(6) == 0;
        c.request_id = Pick(3) == 0 ? absl::StrCat("g", Pick(3)) : "";
        return c;
      }
      case 23:
        return AckItems{queue, {Any(receipts_), Any(receipts_)}};
      case 24:
        return NackItems{queue, {Any(receipts_)}, static_cast<Duration>(Pick(2)) * kSecond};
      case 25:
        return JoinQueue{queue, Deadline(now)};
      case 26:
        return Pick(4) ? Command(PurgeQueue{queue, Pick(2) == 0}) : Command(DeleteQueue{queue});
      case 27:
        return Pick(2) ? Command(UndeliverItems{queue, {Any(receipts_)}})
                       : Command(UndeliverPut{queue, {Any(item_ids_)}});
      case 28: {
        ConsumeQueue c;
        c.name = queue;
        c.options = Options(queue);
        c.session = Any(sessions_);
        c.lease = static_cast<Duration>(Pick(3)) * kSecond;
        c.prefetch = static_cast<uint32_t>(1 + Pick(3));
        return c;
      }
      case 29:
        return StopConsuming{queue};
      case 30: {
        auto state = static_cast<primitives::FutureState>(2 + Pick(3));
        return CompleteFuture{
            Name("fut", 3), {state, Data(), 5, "err"}, static_cast<Duration>(Pick(3)) * kSecond};
      }
      case 31:
        return AwaitFuture{Name("fut", 3), Session(), Deadline(now)};
      case 32:
        return BarrierWait{Name("bar", 2), static_cast<uint32_t>(Pick(2) ? 3 : 0), Session(),
                           Deadline(now)};
      case 33:
        return Pick(2) ? Command(AbortBarrier{Name("bar", 2)})
                       : Command(ResetBarrier{Name("bar", 2)});
      case 34:
        return ConditionWait{
            lock,         absl::StrCat("c", Pick(2)), Any(tokens_), Session(), 0, Deadline(now),
            Deadline(now)};
      case 35:
        return Notify{lock,      absl::StrCat("c", Pick(2)),         Any(tokens_),
                      Session(), static_cast<uint32_t>(1 + Pick(2)), Pick(3) == 0};
      case 36:
      case 37: {
        ScheduleTimer c;
        c.name = Name("tm", 3);
        c.due = now + static_cast<Duration>(Pick(3000)) * kMillisecond;
        c.every = Pick(3) == 0 ? static_cast<Duration>(1 + Pick(2)) * kSecond : 0;
        c.replace = Pick(2) == 0;
        switch (Pick(3)) {
          case 0:
            c.target = Name("ev", 2);
            c.action = Action(SetEvent{c.target});
            break;
          case 1:
            c.target = queue;
            c.action = Action(PutItems{queue, std::nullopt, {{"timer", 0, 0}}, kForever, true});
            break;
          default:
            c.target = Name("fut", 3);
            c.action = Action(
                CompleteFuture{c.target, {primitives::FutureState::kCancelled, "", 0, ""}, 0});
        }
        return c;
      }
      case 38:
        return CancelTimer{Name("tm", 3)};
      case 39:
      case 40:
        return SubmitTask{task,
                          Data(),
                          Pick(4) == 0 ? static_cast<Duration>(Pick(2000)) * kMillisecond : 0,
                          static_cast<uint32_t>(1 + Pick(3)),
                          Pick(2) ? "g" : "",
                          Pick(4) == 0,
                          Pick(4) == 0 ? 2 * kSecond : 0};
      case 41:
      case 42: {
        uint64_t session = Session();
        return TakeTask{task, session,
                        session == 0 || Pick(2) ? static_cast<Duration>(1 + Pick(3)) * kSecond : 0,
                        Deadline(now), Pick(3) == 0 ? absl::StrCat("t", Pick(3)) : ""};
      }
      case 43:
        return UndeliverTask{task, 1 + Pick(12), static_cast<uint32_t>(1 + Pick(2))};
      case 44:
        return HeartbeatTask{task, 1 + Pick(12), static_cast<uint32_t>(1 + Pick(2))};
      case 45:
      case 46:
        return CompleteTask{task,         1 + Pick(12), static_cast<uint32_t>(1 + Pick(2)),
                            Pick(3) == 0, Data(),       2,
                            "e",          Pick(4) == 0};
      case 47:
        return AwaitTask{task, 1 + Pick(12), Deadline(now)};
      case 48:
        return CancelTask{task, 1 + Pick(12)};
      case 49:
        return WaitTasks{task,
                         {1 + Pick(12), 1 + Pick(12)},
                         Pick(3) == 0 ? "g" : "",
                         static_cast<uint8_t>(1 + Pick(3)),
                         Deadline(now)};
      case 50:
        // Cancels an earlier op's wait (the command's origin is that op).
        return CancelWait{};
      default:
        switch (Pick(20)) {
          case 0:
            return BeginShutdown{};
          case 1:
          case 2:
          case 3:
          case 4:
          case 5:
            // Orphaned waits, claimed or rolled back, are state too.
            return Recover{.orphan_grace =
                               Pick(3) == 0 ? 0 : static_cast<Duration>(1 + Pick(3)) * kSecond};
          default:
            return Tick{};
        }
    }
  }

  std::mt19937 rng_;
  uint64_t op_ = 0;
  std::vector<uint64_t> tokens_, deliveries_, sessions_, receipts_, item_ids_;
};

// Runs one step on `h`; CancelWait goes to a random earlier op.
inline Effects RunStep(Harness& h, const Workload::Step& s, uint64_t cancel_op) {
  if (!s.command) return AdvanceAll(h, s.advance);
  uint64_t op = std::holds_alternative<CancelWait>(*s.command) ? cancel_op : s.op;
  return ApplyAll(h, *s.command, op);
}

}  // namespace baton::apply
