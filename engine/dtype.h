// Element types of a Tensor. bf16 and f16 are storage types on the host (converted to and from
// float with round-to-nearest-even); their bit layout matches CUDA's __nv_bfloat16 and __half.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cu3d {

enum class DType : uint8_t { f32, f64, bf16, f16, u8, i32, i64 };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);  // "f32", "bf16", ...
DType dtype_from_name(std::string_view name);
bool is_floating(DType dtype);

struct bf16 {
  uint16_t bits;
};
struct f16 {
  uint16_t bits;
};

bf16 float_to_bf16(float value);
float bf16_to_float(bf16 value);
f16 float_to_f16(float value);
float f16_to_float(f16 value);

// The DType of a C++ element type, for typed access checks (`Tensor::data<T>()`).
template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<bf16>() {
  return DType::bf16;
}
template <>
constexpr DType dtype_of<f16>() {
  return DType::f16;
}
template <>
constexpr DType dtype_of<uint8_t>() {
  return DType::u8;
}
template <>
constexpr DType dtype_of<int32_t>() {
  return DType::i32;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}

}  // namespace cu3d
