// The command codec: every command survives Encode, serialisation, parsing
// and Decode unchanged, each member lands in the proto field of the same
// position and type, and malformed entries are DATA_LOSS naming the field.
//
// Completeness does not rest on remembering to add a case: every
// alternative of CommandVariant must have a "full" sample whose every
// member (recursively, through nested structs) differs from its default, so
// a member added to command.h fails EveryAlternativeHasAFullSample until it
// is set here, and then fails the round trip until codec.cc maps it. (The
// member counts in codec.cc fail even earlier, at compile time.) Struct
// members are reached generically through structured bindings (Fields).
#include "service/apply/codec.h"

#include <cxxabi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/unknown_field_set.h"

// The samples name only the members they set, leaving the rest at their
// defaults on purpose; GCC 12 would flag every designated initializer.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace baton::apply {
namespace {

namespace pb = ::baton::internal::v1;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;
using primitives::FutureState;
using primitives::FutureValue;
using primitives::QueueOptions;
using primitives::QueueOrder;

constexpr size_t kAlternatives = std::variant_size_v<CommandVariant>;

// --- generic access to a struct's members ------------------------------------------

template <class T>
constexpr bool kIsStruct = std::is_class_v<T>&& std::is_aggregate_v<T>;
template <class T>
constexpr bool kIsVector = false;
template <class T>
constexpr bool kIsVector<std::vector<T>> = true;
template <class T>
constexpr bool kIsOptional = false;
template <class T>
constexpr bool kIsOptional<std::optional<T>> = true;
template <class>
constexpr bool kAlwaysFalse = false;

// A tuple of references to the members of `t`, in declaration order.
template <class T>
auto Fields(const T& t) {
  constexpr size_t n = codec_internal::FieldCount<T>();
  static_assert(n <= 10, "a struct with more than 10 members: extend Fields");
  if constexpr (n == 0) {
    return std::tie();
  } else if constexpr (n == 1) {
    const auto& [a] = t;
    return std::tie(a);
  } else if constexpr (n == 2) {
    const auto& [a, b] = t;
    return std::tie(a, b);
  } else if constexpr (n == 3) {
    const auto& [a, b, c] = t;
    return std::tie(a, b, c);
  } else if constexpr (n == 4) {
    const auto& [a, b, c, d] = t;
    return std::tie(a, b, c, d);
  } else if constexpr (n == 5) {
    const auto& [a, b, c, d, e] = t;
    return std::tie(a, b, c, d, e);
  } else if constexpr (n == 6) {
    const auto& [a, b, c, d, e, f] = t;
    return std::tie(a, b, c, d, e, f);
  } else if constexpr (n == 7) {
    const auto& [a, b, c, d, e, f, g] = t;
    return std::tie(a, b, c, d, e, f, g);
  } else if constexpr (n == 8) {
    const auto& [a, b, c, d, e, f, g, h] = t;
    return std::tie(a, b, c, d, e, f, g, h);
  } else if constexpr (n == 9) {
    const auto& [a, b, c, d, e, f, g, h, i] = t;
    return std::tie(a, b, c, d, e, f, g, h, i);
  } else {
    const auto& [a, b, c, d, e, f, g, h, i, j] = t;
    return std::tie(a, b, c, d, e, f, g, h, i, j);
  }
}

// Calls fn(index, member of a, member of b) for each member of two T.
template <class T, class Fn>
void ForEachField(const T& a, const T& b, Fn&& fn) {
  auto fa = Fields(a);
  auto fb = Fields(b);
  [&]<size_t... I>(std::index_sequence<I...>) { (fn(I, std::get<I>(fa), std::get<I>(fb)), ...); }
  (std::make_index_sequence<codec_internal::FieldCount<T>()>());
}

// "AcquirePermits" for baton::apply::AcquirePermits.
template <class T>
std::string TypeName() {
  int status = 0;
  char* full = abi::__cxa_demangle(typeid(T).name(), nullptr, nullptr, &status);
  std::string name = status == 0 ? full : typeid(T).name();
  std::free(full);
  return name.substr(name.rfind(':') + 1);
}

// --- deep equality (the structs have no operator==) ----------------------------------

template <class T>
bool Same(const T& a, const T& b);
bool Same(const Command& a, const Command& b);
bool Same(const std::shared_ptr<const Command>& a, const std::shared_ptr<const Command>& b);
template <class T>
bool Same(const std::vector<T>& a, const std::vector<T>& b);
template <class T>
bool Same(const std::optional<T>& a, const std::optional<T>& b);

template <class T>
bool Same(const T& a, const T& b) {
  if constexpr (kIsStruct<T>) {
    bool same = true;
    ForEachField(a, b, [&](size_t, const auto& x, const auto& y) { same = same && Same(x, y); });
    return same;
  } else {
    return a == b;
  }
}

bool Same(const Command& a, const Command& b) {
  if (a.index() != b.index()) return false;
  return std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        return Same(x, std::get<T>(static_cast<const CommandVariant&>(b)));
      },
      static_cast<const CommandVariant&>(a));
}

bool Same(const std::shared_ptr<const Command>& a, const std::shared_ptr<const Command>& b) {
  if (a == nullptr || b == nullptr) return a == b;
  return Same(*a, *b);
}

template <class T>
bool Same(const std::vector<T>& a, const std::vector<T>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!Same(a[i], b[i])) return false;
  }
  return true;
}

template <class T>
bool Same(const std::optional<T>& a, const std::optional<T>& b) {
  if (!a.has_value() || !b.has_value()) return a.has_value() == b.has_value();
  return Same(*a, *b);
}

// --- helpers -----------------------------------------------------------------------

pb::Command Encoded(const Command& c) {
  pb::Command m;
  Encode(c, &m);
  return m;
}

// What the log would hold: deterministic bytes.
std::string Serialized(const Message& m) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(m.SerializeToCodedStream(&coded));
  }
  return bytes;
}

// The message field of `Command` that holds `c`.
const FieldDescriptor* CaseOf(const pb::Command& m) {
  return pb::Command::descriptor()->FindFieldByNumber(m.command_case());
}

// What a newer build's field looks like to this one.
void AddUnknownVarint(Message* m, int number) {
  m->GetReflection()->MutableUnknownFields(m)->AddVarint(number, 1);
}

// "acquire_permits", the name of alternative `index` in the stored form.
std::string AlternativeName(size_t index) {
  static const std::array<std::string, kAlternatives> names =
      []<size_t... I>(std::index_sequence<I...>) {
    return std::array<std::string, kAlternatives>{
        CaseOf(Encoded(Command(std::in_place_index<I>)))->name()...};
  }
  (std::make_index_sequence<kAlternatives>());
  return names[index];
}

// Encode -> bytes -> parse -> Decode gives back `c`, and re-encoding the
// result gives the same bytes.
void ExpectRoundTrip(const Command& c) {
  pb::Command encoded = Encoded(c);
  std::string bytes = Serialized(encoded);
  pb::Command parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  absl::StatusOr<Command> decoded = Decode(parsed);
  ASSERT_TRUE(decoded.ok()) << decoded.status() << "\n  for " << encoded.ShortDebugString();
  EXPECT_TRUE(Same(*decoded, c)) << "\n  encoded " << encoded.ShortDebugString() << "\n  decoded "
                                 << Encoded(*decoded).ShortDebugString();
  EXPECT_EQ(Serialized(Encoded(*decoded)), bytes) << encoded.ShortDebugString();
}

std::string_view ProtoName(Kind k) {
  switch (k) {
    case Kind::kLock:
      return "KIND_LOCK";
    case Kind::kSemaphore:
      return "KIND_SEMAPHORE";
    case Kind::kEvent:
      return "KIND_EVENT";
    case Kind::kQueue:
      return "KIND_QUEUE";
    case Kind::kFuture:
      return "KIND_FUTURE";
    case Kind::kBarrier:
      return "KIND_BARRIER";
    case Kind::kTimer:
      return "KIND_TIMER";
    case Kind::kTasks:
      return "KIND_TASKS";
  }
  return "?";
}

std::string_view ProtoName(QueueOrder o) {
  switch (o) {
    case QueueOrder::kFifo:
      return "QUEUE_ORDER_FIFO";
    case QueueOrder::kLifo:
      return "QUEUE_ORDER_LIFO";
    case QueueOrder::kPriority:
      return "QUEUE_ORDER_PRIORITY";
  }
  return "?";
}

std::string_view ProtoName(FutureState s) {
  switch (s) {
    case FutureState::kPending:
      return "FUTURE_STATE_PENDING";
    case FutureState::kResult:
      return "FUTURE_STATE_RESULT";
    case FutureState::kException:
      return "FUTURE_STATE_EXCEPTION";
    case FutureState::kCancelled:
      return "FUTURE_STATE_CANCELLED";
  }
  return "?";
}

// --- "each member is stored in its own field" -----------------------------------------
//
// command.proto declares each message's fields in the struct's order, so the
// i-th member must be in the i-th declared field, of a matching type. This
// catches what a round trip cannot: two members swapped symmetrically in
// Encode and Decode (or two oneof cases), which would silently give the log
// a different meaning from its schema.

template <class T>
void ExpectStoredInPlace(const T& x, const Message& m, const std::string& path);
void ExpectCommandStoredInPlace(const Command& c, const pb::Command& m, const std::string& path);

template <class F>
constexpr FieldDescriptor::CppType ExpectedCppType() {
  if constexpr (std::is_signed_v<F>) {
    return sizeof(F) <= 4 ? FieldDescriptor::CPPTYPE_INT32 : FieldDescriptor::CPPTYPE_INT64;
  } else {
    return sizeof(F) <= 4 ? FieldDescriptor::CPPTYPE_UINT32 : FieldDescriptor::CPPTYPE_UINT64;
  }
}

template <class F>
bool HoldsInteger(const Message& m, const FieldDescriptor* fd, F v) {
  const Reflection* r = m.GetReflection();
  switch (fd->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return std::cmp_equal(r->GetInt32(m, fd), v);
    case FieldDescriptor::CPPTYPE_INT64:
      return std::cmp_equal(r->GetInt64(m, fd), v);
    case FieldDescriptor::CPPTYPE_UINT32:
      return std::cmp_equal(r->GetUInt32(m, fd), v);
    case FieldDescriptor::CPPTYPE_UINT64:
      return std::cmp_equal(r->GetUInt64(m, fd), v);
    default:
      return false;
  }
}

template <class F>
void ExpectFieldStored(const F& v, const Message& m, const FieldDescriptor* fd,
                       const std::string& path) {
  const Reflection* r = m.GetReflection();
  const std::string p = absl::StrCat(path, ".", fd->name());
  if constexpr (std::is_same_v<F, std::string>) {
    EXPECT_EQ(fd->type(), FieldDescriptor::TYPE_BYTES) << p << ": strings are stored as bytes";
    EXPECT_EQ(r->GetString(m, fd), v) << p;
  } else if constexpr (std::is_same_v<F, bool>) {
    EXPECT_EQ(fd->cpp_type(), FieldDescriptor::CPPTYPE_BOOL) << p;
    EXPECT_EQ(r->GetBool(m, fd), v) << p;
  } else if constexpr (std::is_integral_v<F>) {
    EXPECT_EQ(fd->cpp_type(), ExpectedCppType<F>()) << p << ": wrong width or signedness";
    EXPECT_TRUE(HoldsInteger(m, fd, v)) << p << " should hold " << +v;
  } else if constexpr (std::is_enum_v<F>) {
    EXPECT_EQ(r->GetEnum(m, fd)->name(), ProtoName(v)) << p;
  } else if constexpr (std::is_same_v<F, std::optional<Kind>>) {
    EXPECT_EQ(r->GetEnum(m, fd)->name(), v.has_value() ? ProtoName(*v) : "KIND_UNSPECIFIED") << p;
  } else if constexpr (kIsOptional<F>) {
    ASSERT_EQ(r->HasField(m, fd), v.has_value()) << p << ": presence";
    if (v.has_value()) ExpectFieldStored(*v, m, fd, path);
  } else if constexpr (kIsVector<F>) {
    ASSERT_EQ(r->FieldSize(m, fd), static_cast<int>(v.size())) << p;
    for (size_t i = 0; i < v.size(); ++i) {
      const std::string pi = absl::StrCat(p, "[", i, "]");
      if constexpr (kIsStruct<typename F::value_type>) {
        EXPECT_EQ(fd->message_type()->name(), TypeName<typename F::value_type>()) << pi;
        ExpectStoredInPlace(v[i], r->GetRepeatedMessage(m, fd, static_cast<int>(i)), pi);
      } else {
        static_assert(std::is_same_v<typename F::value_type, uint64_t>,
                      "teach ExpectFieldStored this element type");
        EXPECT_EQ(r->GetRepeatedUInt64(m, fd, static_cast<int>(i)), v[i]) << pi;
      }
    }
  } else if constexpr (std::is_same_v<F, std::shared_ptr<const Command>>) {
    ASSERT_EQ(r->HasField(m, fd), v != nullptr) << p << ": presence";
    if (v != nullptr) {
      ExpectCommandStoredInPlace(*v, static_cast<const pb::Command&>(r->GetMessage(m, fd)), p);
    }
  } else if constexpr (kIsStruct<F>) {
    EXPECT_TRUE(r->HasField(m, fd)) << p;
    EXPECT_EQ(fd->message_type()->name(), TypeName<F>()) << p;
    ExpectStoredInPlace(v, r->GetMessage(m, fd), p);
  } else {
    static_assert(kAlwaysFalse<F>, "a member type this test does not know: teach it here");
  }
}

template <class T>
void ExpectStoredInPlace(const T& x, const Message& m, const std::string& path) {
  const Descriptor* d = m.GetDescriptor();
  ASSERT_EQ(d->field_count(), static_cast<int>(codec_internal::FieldCount<T>()))
      << path << ": " << d->full_name() << " and " << TypeName<T>()
      << " should have the same fields";
  ForEachField(x, x, [&](size_t i, const auto& v, const auto&) {
    ExpectFieldStored(v, m, d->field(static_cast<int>(i)), path);
  });
}

void ExpectCommandStoredInPlace(const Command& c, const pb::Command& m, const std::string& path) {
  const FieldDescriptor* fd = CaseOf(m);
  ASSERT_NE(fd, nullptr) << path << ": no case set";
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        EXPECT_EQ(fd->message_type()->name(), TypeName<T>())
            << path << ": stored as the wrong case";
        ExpectStoredInPlace(x, m.GetReflection()->GetMessage(m, fd),
                            absl::StrCat(path, ".", fd->name()));
      },
      static_cast<const CommandVariant&>(c));
}

// --- "every member differs from its default" -------------------------------------------

template <class T>
void ExpectEveryFieldSet(const T& x, const Descriptor* d, const std::string& path) {
  const T defaults{};
  ForEachField(x, defaults, [&](size_t i, const auto& v, const auto& def) {
    using F = std::decay_t<decltype(v)>;
    const FieldDescriptor* fd =
        static_cast<int>(i) < d->field_count() ? d->field(static_cast<int>(i)) : nullptr;
    const std::string p = absl::StrCat(path, ".", fd != nullptr ? fd->name() : absl::StrCat(i));
    EXPECT_FALSE(Same(v, def)) << p << " keeps its default value in the full sample";
    if (fd == nullptr) return;
    if constexpr (kIsStruct<F>) {
      ExpectEveryFieldSet(v, fd->message_type(), p);
    } else if constexpr (kIsOptional<F>) {
      if constexpr (kIsStruct<typename F::value_type>) {
        if (v.has_value()) ExpectEveryFieldSet(*v, fd->message_type(), p);
      }
    } else if constexpr (kIsVector<F>) {
      if constexpr (kIsStruct<typename F::value_type>) {
        for (size_t k = 0; k < v.size(); ++k) {
          ExpectEveryFieldSet(v[k], fd->message_type(), absl::StrCat(p, "[", k, "]"));
        }
      }
    }
    // A timer's action is a whole command; the other samples cover it.
  });
}

// --- samples -----------------------------------------------------------------------

// Byte strings that text handling would damage: NUL, invalid UTF-8, and
// valid non-ASCII UTF-8.
const std::string kNul("billing\0nightly", 15);
const std::string kHighBytes("\xff\xfe\x80\x00q", 5);
const std::string kUtf8 = "r\xc3\xa9sum\xc3\xa9/\xe9\x8c\xa0";  // "résumé/錠"

constexpr Time kNow = 1'748'736'000'000'000;  // 2025-06-01 in cluster time (Unix microseconds)

QueueOptions FullOptions() {
  return QueueOptions{.order = QueueOrder::kPriority,
                      .maxsize = 5000,
                      .max_item_bytes = 65536,
                      .max_deliveries = 3};
}

std::vector<NewQueueItem> FullItems() {
  return {NewQueueItem{.data = kNul, .priority = -7, .delay = 250 * kMillisecond},
          NewQueueItem{.data = kHighBytes, .priority = 9, .delay = kSecond},
          NewQueueItem{.data = "plain", .priority = 1, .delay = 1}};
}

std::shared_ptr<const Command> Action(Command c) {
  return std::make_shared<const Command>(std::move(c));
}

// One sample per alternative with every member (and every member of a
// nested struct) away from its default. Distinct members get distinct
// values, so that a swapped pair shows.
std::vector<Command> FullSamples() {
  return {
      AcquirePermits{.kind = Kind::kSemaphore,
                     .name = kNul,
                     .capacity = 5,
                     .count = 3,
                     .session = 101,
                     .lease = 30 * kSecond,
                     .deadline = kNow + 5 * kSecond,
                     .request_id = kHighBytes,
                     .nowait = true},
      ReleasePermits{
          .kind = Kind::kSemaphore, .name = kUtf8, .token = 11, .session = 12, .count = 2},
      RefreshPermits{
          .kind = Kind::kSemaphore, .name = "r", .token = 21, .session = 22, .lease = 23},
      Undeliver{.kind = Kind::kSemaphore, .name = "u", .token = 31, .delivery = 32},
      SetEvent{.name = kNul},
      ClearEvent{.name = kHighBytes},
      WaitEvent{.name = kUtf8, .session = 41, .deadline = kNow},
      WatchEvent{.name = "w"},
      UnwatchEvent{.name = "uw"},
      CancelWait{},
      OpenSession{.ttl = 10 * kSecond,
                  .label = kUtf8,
                  .owner = "team-a/worker",
                  .nonce = ~uint64_t{0} - 5,
                  .max_sessions = 3},
      KeepAlive{.session = 51},
      AttachStream{.session = 52},
      DetachStream{.session = 53},
      CloseSession{.session = 54},
      DescribeSession{.session = 55},
      SessionStarted{.session = 56, .owner = kUtf8},
      SessionEnded{.session = 57},
      ListResources{.kind = Kind::kTasks, .prefix = "jobs/", .after = kNul, .limit = 7},
      DescribeResource{.name = kHighBytes},
      BeginShutdown{},
      PutItems{.name = "q",
               .options = FullOptions(),
               .items = FullItems(),
               .deadline = kNow + 1,
               .nowait = true},
      GetItems{.name = "q",
               .options = FullOptions(),
               .max_items = 7,
               .session = 61,
               .lease = 62,
               .deadline = kNow + 63,
               .dead_letters = true,
               .request_id = "get-1",
               .ack = {64, 65},
               .nowait = true},
      AckItems{.name = "q", .receipts = {71, 72, 73}},
      NackItems{.name = "q", .receipts = {74, 75}, .delay = 76},
      JoinQueue{.name = "q", .deadline = 0},
      PurgeQueue{.name = "q", .dead_letters = true},
      DeleteQueue{.name = "q"},
      UndeliverItems{.name = "q", .receipts = {81, 82, 83, 84}},
      UndeliverPut{.name = "q", .item_ids = {85, 86}},
      CompleteFuture{.name = "f",
                     .value = FutureValue{.state = FutureState::kException,
                                          .value = kNul,
                                          .error_code = -13,
                                          .error_message = kUtf8},
                     .retention = 91},
      AwaitFuture{.name = "f", .session = 92, .deadline = kNow + 93},
      BarrierWait{.name = "b", .parties = 4, .session = 94, .deadline = kNow + 95},
      AbortBarrier{.name = "b"},
      ResetBarrier{.name = "b2"},
      ConditionWait{.lock = "l",
                    .condition = kNul,
                    .token = 101,
                    .session = 102,
                    .lease = 103,
                    .deadline = kNow + 104,
                    .rpc_deadline = kNow + 105},
      Notify{.lock = "l", .condition = "c", .token = 111, .session = 112, .n = 3, .all = true},
      ScheduleTimer{.name = "t",
                    .due = kNow + 121,
                    .every = 122,
                    .replace = true,
                    .target = "e",
                    .action = Action(SetEvent{.name = "e"})},
      CancelTimer{.name = "t"},
      SubmitTask{.queue = "w",
                 .payload = kHighBytes,
                 .delay = 131,
                 .max_attempts = 5,
                 .group = "g",
                 .shielded = true,
                 .run_timeout = 132},
      TakeTask{.queue = "w",
               .session = 141,
               .lease = 142,
               .deadline = kNow + 143,
               .request_id = kNul,
               .nowait = true},
      UndeliverTask{.queue = "w", .seq = 151, .attempt = 152},
      HeartbeatTask{.queue = "w", .seq = 153, .attempt = 154},
      CompleteTask{.queue = "w",
                   .seq = 161,
                   .attempt = 162,
                   .failed = true,
                   .result = kNul,
                   .error_code = 163,
                   .error_message = kUtf8,
                   .final = true,
                   .give_back = true},
      AwaitTask{.queue = "w", .seq = 171, .deadline = kNow + 172},
      CancelTask{.queue = "w", .seq = 173},
      WaitTasks{
          .queue = "w", .seqs = {181, 182, 183}, .group = "g", .mode = 2, .deadline = kNow + 184},
      ConsumeQueue{
          .name = "q", .options = FullOptions(), .session = 191, .lease = 192, .prefetch = 4},
      StopConsuming{.name = "q"},
      Tick{},
      Recover{.orphan_grace = 193},
      DeleteSemaphore{.name = "sem"},
  };
}

// Every alternative as default-constructed: kForever deadlines, empty
// strings, and the C++ defaults that are not the proto zero (capacity 1,
// max_items 1, prefetch 16, mode 3, limit 100...). A timer gets an action.
std::vector<Command> DefaultSamples() {
  std::vector<Command> out = []<size_t... I>(std::index_sequence<I...>) {
    return std::vector<Command>{Command(std::in_place_index<I>)...};
  }
  (std::make_index_sequence<kAlternatives>());
  for (Command& c : out) {
    if (auto* timer = std::get_if<ScheduleTimer>(&static_cast<CommandVariant&>(c))) {
      timer->action = Action(CancelWait{});
    }
  }
  return out;
}

// The cases between the two: presence and absence, each enum value, nested
// actions of several kinds, extremes.
std::vector<Command> EdgeSamples() {
  std::vector<Command> out;
  // Try-once and forever deadlines, no session, no lease.
  out.push_back(AcquirePermits{.name = "l", .deadline = 0});
  out.push_back(AcquirePermits{.name = "l", .deadline = kForever});
  out.push_back(GetItems{.name = "q", .deadline = 0});
  out.push_back(ConditionWait{.lock = "l", .condition = "c", .rpc_deadline = 0});
  // Queue options absent and present with each order.
  for (QueueOrder order : {QueueOrder::kFifo, QueueOrder::kLifo, QueueOrder::kPriority}) {
    QueueOptions o{.order = order, .maxsize = 1};
    out.push_back(PutItems{.name = "q", .options = o, .items = {{.data = "x"}}});
    out.push_back(GetItems{.name = "q", .options = o});
    out.push_back(ConsumeQueue{.name = "q", .options = o});
  }
  out.push_back(PutItems{.name = "q", .options = std::nullopt, .items = FullItems()});
  out.push_back(PutItems{.name = "q", .items = {NewQueueItem{}}});  // an empty item
  // A future completed in each state (and pending, which Complete refuses).
  out.push_back(CompleteFuture{.name = "f", .value = {.state = FutureState::kPending}});
  out.push_back(CompleteFuture{
      .name = "f", .value = {.state = FutureState::kResult, .value = kNul}, .retention = 0});
  out.push_back(CompleteFuture{
      .name = "f",
      .value = {.state = FutureState::kException, .error_code = 2, .error_message = "boom"}});
  out.push_back(CompleteFuture{.name = "f", .value = {.state = FutureState::kCancelled}});
  // Every kind, and no kind.
  for (Kind k : {Kind::kLock, Kind::kSemaphore, Kind::kEvent, Kind::kQueue, Kind::kFuture,
                 Kind::kBarrier, Kind::kTimer, Kind::kTasks}) {
    out.push_back(ListResources{.kind = k});
    out.push_back(ReleasePermits{.kind = k, .name = "x"});
  }
  out.push_back(ListResources{.kind = std::nullopt, .prefix = "a", .limit = 0});
  // Timer actions of every kind the RPC layer builds, and then some.
  out.push_back(ScheduleTimer{.name = "t", .target = "e", .action = Action(SetEvent{"e"})});
  out.push_back(ScheduleTimer{.name = "t", .target = "e", .action = Action(ClearEvent{"e"})});
  out.push_back(ScheduleTimer{
      .name = "t",
      .target = "q",
      .action = Action(PutItems{.name = "q", .options = FullOptions(), .items = FullItems()})});
  out.push_back(
      ScheduleTimer{.name = "t",
                    .target = "f",
                    .action = Action(CompleteFuture{
                        .name = "f", .value = {.state = FutureState::kResult, .value = "v"}})});
  out.push_back(ScheduleTimer{
      .name = "t",
      .every = kSecond,
      .target = "w",
      .action = Action(SubmitTask{.queue = "w", .payload = kHighBytes, .max_attempts = 3})});
  out.push_back(ScheduleTimer{
      .name = "t", .target = "l", .action = Action(FullSamples().front())});  // AcquirePermits
  out.push_back(ScheduleTimer{
      .name = "outer",
      .target = "inner",
      .action = Action(ScheduleTimer{
          .name = "inner", .due = 5, .target = "e", .action = Action(SetEvent{.name = "e"})})});
  // Extremes of every integer width.
  constexpr uint64_t kMaxU64 = std::numeric_limits<uint64_t>::max();
  constexpr uint32_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  constexpr int64_t kMinI64 = std::numeric_limits<int64_t>::min();
  out.push_back(AcquirePermits{.name = "x",
                               .capacity = std::numeric_limits<int64_t>::max(),
                               .count = kMinI64,
                               .session = kMaxU64,
                               .lease = kMinI64,
                               .deadline = kMinI64});
  out.push_back(CompleteTask{.queue = "w",
                             .seq = kMaxU64,
                             .attempt = kMaxU32,
                             .error_code = std::numeric_limits<int32_t>::min()});
  out.push_back(WaitTasks{.queue = "w", .mode = 255});
  out.push_back(WaitTasks{.queue = "w", .mode = 0});
  out.push_back(BarrierWait{.name = "b", .parties = kMaxU32});
  // Long vectors and strings.
  AckItems many{.name = "q"};
  for (uint64_t i = 0; i < 1000; ++i) many.receipts.push_back(i * 0x9E3779B97F4A7C15ull);
  out.push_back(std::move(many));
  std::string big(64 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 31);
  out.push_back(SubmitTask{.queue = "w", .payload = big});
  return out;
}

// --- completeness ----------------------------------------------------------------------

TEST(CodecTest, EveryAlternativeHasAFullSample) {
  std::vector<Command> samples = FullSamples();
  for (size_t index = 0; index < kAlternatives; ++index) {
    bool found = false;
    for (const Command& c : samples) {
      if (c.index() != index) continue;
      found = true;
      pb::Command m = Encoded(c);
      std::visit(
          [&](const auto& x) {
            ExpectEveryFieldSet(x, CaseOf(m)->message_type(), CaseOf(m)->name());
          },
          static_cast<const CommandVariant&>(c));
    }
    EXPECT_TRUE(found) << "no full sample for alternative " << index << " ("
                       << AlternativeName(index) << "): add one to FullSamples()";
  }
}

TEST(CodecTest, EveryCommandMessageHasAnAlternative) {
  // The other direction: every case of the oneof is some alternative's.
  std::vector<std::string> names;
  for (size_t i = 0; i < kAlternatives; ++i) names.push_back(AlternativeName(i));
  const google::protobuf::OneofDescriptor* oneof = pb::Command::descriptor()->oneof_decl(0);
  ASSERT_EQ(oneof->field_count(), static_cast<int>(kAlternatives));
  for (int i = 0; i < oneof->field_count(); ++i) {
    EXPECT_NE(std::find(names.begin(), names.end(), oneof->field(i)->name()), names.end())
        << oneof->field(i)->name() << " is not any alternative's encoding";
  }
}

// --- round trips -----------------------------------------------------------------------

TEST(CodecTest, FullSamplesRoundTrip) {
  for (const Command& c : FullSamples()) ExpectRoundTrip(c);
}

TEST(CodecTest, DefaultCommandsRoundTrip) {
  for (const Command& c : DefaultSamples()) ExpectRoundTrip(c);
}

TEST(CodecTest, EdgeCasesRoundTrip) {
  for (const Command& c : EdgeSamples()) ExpectRoundTrip(c);
}

TEST(CodecTest, ThePrincipalRoundTripsAndCostsNothingWithout) {
  Command c(ReleasePermits{.name = "l", .token = 5});
  size_t without = Serialized(Encoded(c)).size();
  c.principal = 0xfedcba9876543210ull;
  c.admin = true;
  pb::Command m = Encoded(c);
  EXPECT_EQ(m.principal(), c.principal);
  EXPECT_TRUE(m.admin());
  EXPECT_EQ(Serialized(m).size(), without + 2 + 8 + 3);  // fixed64 field 100, bool field 101
  absl::StatusOr<Command> back = Decode(m);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->principal, c.principal);
  EXPECT_TRUE(back->admin);
  // A timer's action carries the principal of the command it is in.
  Command timer(ScheduleTimer{.name = "t", .due = 5, .target = "e", .action = Action(c)});
  absl::StatusOr<Command> timer_back = Decode(Encoded(timer));
  ASSERT_TRUE(timer_back.ok()) << timer_back.status();
  EXPECT_EQ(std::get<ScheduleTimer>(*timer_back).action->principal, c.principal);
}

TEST(CodecTest, EachMemberIsStoredInItsOwnField) {
  for (const std::vector<Command>& samples : {FullSamples(), DefaultSamples(), EdgeSamples()}) {
    for (const Command& c : samples) ExpectCommandStoredInPlace(c, Encoded(c), "Command");
  }
}

TEST(CodecTest, ForeverIsStoredAsInt64Max) {
  pb::Command m = Encoded(WaitEvent{.name = "e", .deadline = kForever});
  EXPECT_EQ(m.wait_event().deadline_us(), std::numeric_limits<int64_t>::max());
}

TEST(CodecTest, EncodeReplacesWhatItsOutputHeld) {
  pb::Command m = Encoded(FullSamples().front());
  AddUnknownVarint(&m, 999);
  Encode(SetEvent{.name = "e"}, &m);
  EXPECT_EQ(Serialized(m), Serialized(Encoded(SetEvent{.name = "e"})));
}

// --- malformed entries -------------------------------------------------------------------

void ExpectDataLoss(const pb::Command& m, absl::string_view field) {
  absl::StatusOr<Command> c = Decode(m);
  ASSERT_FALSE(c.ok()) << m.ShortDebugString();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), field))
      << c.status() << " should name " << field;
}

TEST(CodecTest, EmptyCommandIsDataLoss) {
  ExpectDataLoss(pb::Command(), "baton.internal.v1.Command: no command set");
}

TEST(CodecTest, UnknownOrUnspecifiedEnumIsDataLoss) {
  pb::Command m = Encoded(AcquirePermits{.name = "l"});
  m.mutable_acquire_permits()->set_kind(static_cast<pb::Kind>(42));
  ExpectDataLoss(m, "acquire_permits.kind: unknown Kind value 42");
  m.mutable_acquire_permits()->set_kind(pb::KIND_UNSPECIFIED);
  ExpectDataLoss(m, "acquire_permits.kind: KIND_UNSPECIFIED");

  pb::Command list = Encoded(ListResources{});
  list.mutable_list_resources()->set_kind(static_cast<pb::Kind>(9));
  ExpectDataLoss(list, "list_resources.kind");

  pb::Command put = Encoded(PutItems{.name = "q", .options = FullOptions()});
  put.mutable_put_items()->mutable_options()->set_order(static_cast<pb::QueueOrder>(7));
  ExpectDataLoss(put, "put_items.options.order: unknown QueueOrder value 7");

  pb::Command future = Encoded(CompleteFuture{.name = "f"});
  future.mutable_complete_future()->clear_value();  // state UNSPECIFIED
  ExpectDataLoss(future, "complete_future.value.state: FUTURE_STATE_UNSPECIFIED");
}

TEST(CodecTest, ScheduleTimerWithoutActionIsDataLoss) {
  pb::Command m = Encoded(ScheduleTimer{.name = "t", .action = nullptr});
  EXPECT_FALSE(m.schedule_timer().has_action());
  ExpectDataLoss(m, "schedule_timer.action: missing");
}

TEST(CodecTest, BadNestedActionNamesItsPath) {
  pb::Command m = Encoded(ScheduleTimer{.name = "t", .action = Action(ReleasePermits{})});
  m.mutable_schedule_timer()->mutable_action()->mutable_release_permits()->set_kind(
      pb::KIND_UNSPECIFIED);
  ExpectDataLoss(m, "baton.internal.v1.Command.schedule_timer.action.release_permits.kind");
  m.mutable_schedule_timer()->mutable_action()->Clear();
  ExpectDataLoss(m, "schedule_timer.action: no command set");
}

TEST(CodecTest, OutOfRangeModeIsDataLoss) {
  pb::Command m = Encoded(WaitTasks{.queue = "w"});
  m.mutable_wait_tasks()->set_mode(256);
  ExpectDataLoss(m, "wait_tasks.mode: 256 is out of range");
}

TEST(CodecTest, FieldsFromANewerBuildAreDataLoss) {
  // A field this build does not know, inside a command...
  pb::Command m = Encoded(SetEvent{.name = "e"});
  AddUnknownVarint(m.mutable_set_event(), 2);
  ExpectDataLoss(m, "set_event: unknown field number 2");
  // ... inside a nested struct ...
  pb::Command put = Encoded(PutItems{.name = "q", .items = {{.data = "x"}}});
  AddUnknownVarint(put.mutable_put_items()->mutable_items(0), 9);
  ExpectDataLoss(put, "put_items.items[0]: unknown field number 9");
  // ... or a whole command: a oneof case added later (field 200 here), read
  // from bytes as the log would hold them.
  pb::Command newer;
  ASSERT_TRUE(newer.ParseFromString(std::string("\xc2\x0c\x00", 3)));  // field 200, empty
  ExpectDataLoss(newer, "baton.internal.v1.Command: unknown field number 200");
}

// --- size ----------------------------------------------------------------------------

TEST(CodecTest, TypicalCommandsAreSmall) {
  const uint64_t session = kNow * 4 + 1;  // ids follow the clock, strided by shard count
  AcquirePermits acquire{.kind = Kind::kLock,
                         .name = "billing/nightly-migration",
                         .session = session,
                         .deadline = kNow + 30 * kSecond,
                         .request_id = "6f1c2a9e4b7d3e80"};
  size_t acquire_size = Serialized(Encoded(acquire)).size();
  EXPECT_LE(acquire_size, 80u);

  AcquirePermits acquire_forever = acquire;
  acquire_forever.deadline = kForever;
  const std::pair<std::string, Command> typical[] = {
      {"AcquirePermits (lock, 25-byte name, session, deadline, 16-byte request_id)", acquire},
      {"  same, deadline kForever", acquire_forever},
      {"ReleasePermits", ReleasePermits{.name = acquire.name, .token = 123456, .session = session}},
      {"GetItems (session, lease, deadline)", GetItems{.name = "jobs/resize",
                                                       .session = session,
                                                       .lease = 60 * kSecond,
                                                       .deadline = kNow + 30 * kSecond}},
      {"PutItems (one 100-byte item)",
       PutItems{.name = "jobs/resize", .items = {{.data = std::string(100, 'x')}}}},
      {"AckItems (one receipt)", AckItems{.name = "jobs/resize", .receipts = {987654}}},
      {"SessionStarted", SessionStarted{.session = session}},
      {"CancelWait", CancelWait{}},
  };
  std::printf("encoded sizes (bytes, deterministic serialisation):\n");
  for (const auto& [what, command] : typical) {
    std::printf("  %4zu  %s\n", Serialized(Encoded(command)).size(), what.c_str());
  }
}

}  // namespace
}  // namespace baton::apply
