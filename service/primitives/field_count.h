// FieldCount<T>() is the number of data members of the aggregate T, counted
// at compile time. The stored forms of the state (the command codec,
// apply/codec.cc, and the snapshot archive, archive.h) check each struct's
// count against the fields they write, so a field added later is a compile
// error there until it is stored too.
#pragma once

#include <cstddef>
#include <type_traits>

namespace baton::primitives {
namespace field_count_internal {

// Converts to any type; used to count an aggregate's members.
struct AnyField {
  template <class T>
  operator T() const;  // never defined: only used in unevaluated context
};

template <class T, class... Fields>
consteval size_t CountFields() {
  if constexpr (requires { T{Fields{}..., AnyField{}}; }) {
    return CountFields<T, Fields..., AnyField>();
  } else {
    return sizeof...(Fields);
  }
}

}  // namespace field_count_internal

// The largest n for which T{x1, ..., xn} compiles.
template <class T>
consteval size_t FieldCount() {
  static_assert(std::is_aggregate_v<T>, "FieldCount needs an aggregate");
  return field_count_internal::CountFields<T>();
}

}  // namespace baton::primitives
