// A small symmetric archive: Writer turns state into bytes, Reader turns the
// bytes back into the same state. Both are called the same way, so a type
// lists its fields once, in one member template used for both directions:
//
//   template <class Ar>
//   void Serialize(Ar& ar) { ar(id_, name_, archive::Enum(kind_, Kind::kA, Kind::kZ)); }
//
// Encoding: unsigned integers and bool as varints, signed ones zigzagged;
// strings and sequences as a length then the elements; std::optional as a
// bool then the value; std::pair as its two members; maps and sets as a count
// then the entries in increasing key order (hash containers are sorted first,
// so equal contents give equal bytes). There are no tags: the reader must read
// exactly what the writer wrote, which the shared field list guarantees.
//
// Reader is safe on any input: every read is bounds-checked, a length is
// checked against the bytes left before anything is allocated, integers are
// checked against their C++ type's range and enums against the range given at
// the field, map and set keys must strictly increase (no duplicates), and the
// first failure stops the reading and is kept (Reader::Finish). A type whose
// Serialize needs more (an index to rebuild, an invariant to check) tests
// `Ar::kLoading` and reports with `ar.Check(condition, "what")`.
//
// A type that cannot have a Serialize member (a private type of a class that
// befriends the codec) is handled by `Hooks`, the archive's template argument:
// `Hooks::Serialize(ar, value)` for such values, and `Hooks::Blank(
// std::type_identity<T>{})` to make a value to read into when T has no
// default constructor.
//
// Versions: a Writer or Reader carries the format version it writes or reads
// (`version()`, kLatest unless set), so that a type which gained a field
// writes it always and reads it only from versions that have it:
//   if (ar.version() >= 4) ar(owner);
//
// Thread-safety: a Writer or Reader is used by one thread at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace baton::primitives::archive {

// An enum field with its valid range [lo, hi]: ar(Enum(kind_, Kind::kA, Kind::kZ)).
template <class E>
struct EnumField {
  E& value;
  E lo;
  E hi;
};
template <class E>
EnumField<E> Enum(E& value, E lo, E hi) {
  static_assert(std::is_enum_v<E>);
  return {value, lo, hi};
}

// An integer field that must lie in [lo, hi] (narrower than its type).
template <class I>
struct RangedField {
  I& value;
  I lo;
  I hi;
};
template <class I>
RangedField<I> Ranged(I& value, I lo, I hi) {
  static_assert(std::is_integral_v<I>);
  return {value, lo, hi};
}

// A field with a name, used in the reader's error messages.
template <class T>
struct NamedField {
  const char* name;
  T& value;
};
template <class T>
NamedField<T> Named(const char* name, T& value) {
  return {name, value};
}

struct NoHooks {};

namespace archive_internal {

template <class T, template <class...> class Template>
inline constexpr bool kIsA = false;
template <template <class...> class Template, class... Args>
inline constexpr bool kIsA<Template<Args...>, Template> = true;

template <class T>
inline constexpr bool kIsEnumField = false;
template <class E>
inline constexpr bool kIsEnumField<EnumField<E>> = true;
template <class T>
inline constexpr bool kIsRangedField = false;
template <class I>
inline constexpr bool kIsRangedField<RangedField<I>> = true;
template <class T>
inline constexpr bool kIsNamedField = false;
template <class T>
inline constexpr bool kIsNamedField<NamedField<T>> = true;

template <class T>
inline constexpr bool kIsOrdered = kIsA<T, absl::btree_map> || kIsA<T, absl::btree_set>;
template <class T>
inline constexpr bool kIsHashed = kIsA<T, absl::flat_hash_map> || kIsA<T, absl::flat_hash_set>;
template <class T>
inline constexpr bool kIsMap = kIsA<T, absl::btree_map> || kIsA<T, absl::flat_hash_map>;

template <class>
inline constexpr bool kUnsupported = false;

// The key of a map or set element.
template <class V>
const auto& KeyOf(const V& v) {
  if constexpr (kIsA<V, std::pair>) {
    return v.first;
  } else {
    return v;
  }
}

inline uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t UnZigZag(uint64_t v) {
  return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

}  // namespace archive_internal

// The version of an archive that does not say: every field is present.
inline constexpr uint64_t kLatest = std::numeric_limits<uint64_t>::max();

template <class Hooks = NoHooks>
class Writer {
 public:
  static constexpr bool kLoading = false;

  uint64_t version() const { return version_; }
  void set_version(uint64_t v) { version_ = v; }

  template <class... Ts>
  void operator()(Ts&&... fields) {
    (Put(fields), ...);
  }
  // Writing never fails.
  bool ok() const { return true; }
  void Check(bool, absl::string_view) {}

  void PutVarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }

  std::string Finish() && { return std::move(out_); }

 private:
  template <class T>
  void Put(const T& v) {
    using namespace archive_internal;
    if constexpr (std::is_same_v<T, bool>) {
      PutVarint(v ? 1 : 0);
    } else if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) {
      PutVarint(ZigZag(v));
    } else if constexpr (std::is_integral_v<T>) {
      PutVarint(v);
    } else if constexpr (kIsEnumField<T>) {
      PutVarint(ZigZag(static_cast<int64_t>(v.value)));
    } else if constexpr (kIsRangedField<T> || kIsNamedField<T>) {
      Put(v.value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      PutVarint(v.size());
      out_.append(v);
    } else if constexpr (kIsA<T, std::vector>) {
      PutVarint(v.size());
      for (const auto& e : v) Put(e);
    } else if constexpr (kIsA<T, std::pair>) {
      Put(v.first);
      Put(v.second);
    } else if constexpr (kIsA<T, std::optional>) {
      Put(v.has_value());
      if (v) Put(*v);
    } else if constexpr (kIsOrdered<T>) {
      PutVarint(v.size());
      for (const auto& e : v) Put(e);
    } else if constexpr (kIsHashed<T>) {
      // Sorted by key: the same contents always give the same bytes.
      std::vector<const typename T::value_type*> sorted;
      sorted.reserve(v.size());
      for (const auto& e : v) sorted.push_back(&e);
      std::sort(sorted.begin(), sorted.end(),
                [](const auto* a, const auto* b) { return KeyOf(*a) < KeyOf(*b); });
      PutVarint(sorted.size());
      for (const auto* e : sorted) Put(*e);
    } else if constexpr (std::is_enum_v<T>) {
      static_assert(kUnsupported<T>, "wrap enum fields in archive::Enum(field, lo, hi)");
    } else if constexpr (requires(T & t, Writer & w) { t.Serialize(w); }) {
      // Serialize is shared with the Reader, hence not const; the Writer
      // only reads through it.
      const_cast<T&>(v).Serialize(*this);
    } else {
      Hooks::Serialize(*this, const_cast<T&>(v));
    }
  }

  std::string out_;
  uint64_t version_ = kLatest;
};

template <class Hooks = NoHooks>
class Reader {
 public:
  static constexpr bool kLoading = true;

  explicit Reader(std::string_view in) : in_(in) {}

  uint64_t version() const { return version_; }
  void set_version(uint64_t v) { version_ = v; }

  // Reads each field in turn; after the first failure reads nothing more.
  template <class... Ts>
  void operator()(Ts&&... fields) {
    (Get(fields), ...);
  }
  bool ok() const { return error_.empty(); }
  // Fails the read with `what` (a broken invariant) unless `condition`.
  void Check(bool condition, absl::string_view what) {
    if (!condition) Fail(what);
  }
  void Fail(absl::string_view what) {
    if (!ok()) return;
    error_ = absl::StrCat(what, " (at byte ", pos_, " of ", in_.size());
    if (!field_.empty()) absl::StrAppend(&error_, ", in ", field_);
    error_ += ")";
  }
  size_t remaining() const { return in_.size() - pos_; }

  bool GetVarint(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= in_.size()) {
        Fail("truncated");
        return false;
      }
      uint8_t byte = static_cast<uint8_t>(in_[pos_++]);
      if (shift == 63 && byte > 1) break;
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    Fail("varint out of range");
    return false;
  }

  // OK if every byte was read into a valid state; else DATA_LOSS saying what
  // failed and where.
  absl::Status Finish() {
    if (ok() && pos_ != in_.size()) Fail(absl::StrCat(in_.size() - pos_, " trailing bytes"));
    return ok() ? absl::OkStatus() : absl::DataLossError(error_);
  }

 private:
  template <class T>
  static T Blank() {
    if constexpr (requires { Hooks::Blank(std::type_identity<T>{}); }) {
      return Hooks::Blank(std::type_identity<T>{});
    } else {
      return T{};
    }
  }

  // A count of elements (each at least one byte) or of bytes.
  bool GetLength(uint64_t& n) {
    if (!GetVarint(n)) return false;
    if (n > remaining()) {
      Fail(absl::StrCat("length ", n, " exceeds the ", remaining(), " bytes left"));
      return false;
    }
    return true;
  }

  template <class I>
  bool GetInt(I& out) {
    uint64_t raw;
    if (!GetVarint(raw)) return false;
    if constexpr (std::is_signed_v<I>) {
      int64_t v = archive_internal::UnZigZag(raw);
      if (v < std::numeric_limits<I>::min() || v > std::numeric_limits<I>::max()) {
        Fail(absl::StrCat("value ", v, " out of range"));
        return false;
      }
      out = static_cast<I>(v);
    } else {
      if (raw > std::numeric_limits<I>::max()) {
        Fail(absl::StrCat("value ", raw, " out of range"));
        return false;
      }
      out = static_cast<I>(raw);
    }
    return true;
  }

  template <class T>
  void Get(T& v) {
    using namespace archive_internal;
    if (!ok()) return;
    if constexpr (std::is_same_v<T, bool>) {
      uint64_t raw;
      if (!GetVarint(raw)) return;
      if (raw > 1) return Fail(absl::StrCat("bool value ", raw, " out of range"));
      v = raw == 1;
    } else if constexpr (std::is_integral_v<T>) {
      GetInt(v);
    } else if constexpr (kIsEnumField<T>) {
      using U = std::underlying_type_t<std::remove_reference_t<decltype(v.value)>>;
      int64_t raw;
      if (!GetInt(raw)) return;
      if (raw < static_cast<int64_t>(static_cast<U>(v.lo)) ||
          raw > static_cast<int64_t>(static_cast<U>(v.hi))) {
        return Fail(absl::StrCat("enum value ", raw, " out of range"));
      }
      v.value = static_cast<std::remove_reference_t<decltype(v.value)>>(raw);
    } else if constexpr (kIsRangedField<T>) {
      if (!GetInt(v.value)) return;
      if (v.value < v.lo || v.value > v.hi) {
        Fail(absl::StrCat("value ", v.value, " out of range [", v.lo, ", ", v.hi, "]"));
      }
    } else if constexpr (kIsNamedField<T>) {
      field_ = v.name;
      Get(v.value);
    } else if constexpr (std::is_same_v<T, std::string>) {
      uint64_t n;
      if (!GetLength(n)) return;
      v.assign(in_.data() + pos_, n);
      pos_ += n;
    } else if constexpr (kIsA<T, std::vector>) {
      uint64_t n;
      if (!GetLength(n)) return;
      // No reserve: the elements grow only as fast as they are read.
      v.clear();
      for (uint64_t i = 0; i < n && ok(); ++i) {
        v.push_back(Blank<typename T::value_type>());
        Get(v.back());
      }
    } else if constexpr (kIsA<T, std::pair>) {
      Get(v.first);
      Get(v.second);
    } else if constexpr (kIsA<T, std::optional>) {
      bool present = false;
      Get(present);
      if (!ok() || !present) {
        v.reset();
        return;
      }
      v.emplace(Blank<typename T::value_type>());
      Get(*v);
    } else if constexpr (kIsOrdered<T> || kIsHashed<T>) {
      GetSorted(v);
    } else if constexpr (std::is_enum_v<T>) {
      static_assert(kUnsupported<T>, "wrap enum fields in archive::Enum(field, lo, hi)");
    } else if constexpr (requires(T & t, Reader & r) { t.Serialize(r); }) {
      v.Serialize(*this);
    } else {
      Hooks::Serialize(*this, v);
    }
  }

  // Maps and sets: a count, then entries in strictly increasing key order.
  template <class C>
  void GetSorted(C& c) {
    using namespace archive_internal;
    uint64_t n;
    if (!GetLength(n)) return;
    c.clear();
    std::optional<typename C::key_type> last;
    for (uint64_t i = 0; i < n && ok(); ++i) {
      auto key = Blank<typename C::key_type>();
      Get(key);
      if (!ok()) return;
      if (last && !(*last < key)) return Fail("keys out of order or repeated");
      if constexpr (kIsMap<C>) {
        auto value = Blank<typename C::mapped_type>();
        Get(value);
        if (!ok()) return;
        c.emplace_hint(c.end(), key, std::move(value));
      } else {
        c.emplace_hint(c.end(), key);
      }
      last = std::move(key);
    }
  }

  std::string_view in_;
  size_t pos_ = 0;
  std::string error_;
  absl::string_view field_;  // the last Named field entered
  uint64_t version_ = kLatest;
};

}  // namespace baton::primitives::archive
