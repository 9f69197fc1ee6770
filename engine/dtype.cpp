#include "engine/dtype.h"

#include <bit>
#include <cmath>

#include "kernels/error.h"

namespace cu3d {

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::u8:
      return 1;
    case DType::i32:
      return 4;
    case DType::i64:
      return 8;
  }
  throw Error("dtype_size: unknown dtype");
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::u8:
      return "u8";
    case DType::i32:
      return "i32";
    case DType::i64:
      return "i64";
  }
  return "?";
}

DType dtype_from_name(std::string_view name) {
  for (DType d :
       {DType::f32, DType::f64, DType::bf16, DType::f16, DType::u8, DType::i32, DType::i64})
    if (dtype_name(d) == name) return d;
  throw Error(
      fmt::format("unknown dtype '{}'; expected one of f32, f64, bf16, f16, u8, i32, i64", name));
}

bool is_floating(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16 || dtype == DType::f16;
}

bf16 float_to_bf16(float value) {
  uint32_t bits = std::bit_cast<uint32_t>(value);
  if (std::isnan(value)) return bf16{uint16_t((bits >> 16) | 0x40)};  // keep NaN quiet
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest, ties to even
  return bf16{uint16_t(bits >> 16)};
}

float bf16_to_float(bf16 value) {
  return std::bit_cast<float>(uint32_t(value.bits) << 16);
}

// IEEE binary16 through the compiler's _Float16, which rounds to nearest even.
f16 float_to_f16(float value) {
  return std::bit_cast<f16>(static_cast<_Float16>(value));
}
float f16_to_float(f16 value) {
  return static_cast<float>(std::bit_cast<_Float16>(value));
}

}  // namespace cu3d
