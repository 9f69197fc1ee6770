// Typed reads of JSON fields from files we did not write (manifests, shard indexes, recipes).
// nlohmann's get<int>() on a floating-point number is a static_cast, undefined when the value is
// out of range (the fuzzer found 3.2e+14 as a frame width); these reads refuse anything but an
// integer that fits the target type, naming the file and the field.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "kernels/error.h"

namespace cu3d::data {

template <typename Int>
Int get_integer(const nlohmann::json& object, const char* key, const std::string& where) {
  const nlohmann::json& value = object.at(key);
  CU3D_CHECK(value.is_number_integer(), "{}: '{}' must be an integer, got {}", where, key,
             value.dump());
  constexpr auto lowest = std::numeric_limits<Int>::lowest();
  constexpr auto highest = std::numeric_limits<Int>::max();
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    CU3D_CHECK(u <= uint64_t(highest), "{}: '{}' = {} is too large", where, key, u);
    return Int(u);
  }
  const int64_t s = value.get<int64_t>();
  if constexpr (std::is_unsigned_v<Int>) {
    CU3D_CHECK(s >= 0, "{}: '{}' = {} must not be negative", where, key, s);
    return Int(s);
  } else {
    CU3D_CHECK(s >= int64_t(lowest) && s <= int64_t(highest), "{}: '{}' = {} is out of range",
               where, key, s);
    return Int(s);
  }
}

}  // namespace cu3d::data
