// Helpers that ops use to check their arguments and to pick the kernel instantiation for a dtype.
// Every failed check throws cu3d::Error naming the op, the tensors and what was expected.
#pragma once

#include <initializer_list>

#include "engine/tensor.h"

namespace cu3d {

// Calls `body.template operator()<T>()` with T = float or double (the CPU compute types).
template <typename Body>
void dispatch_float(DType dtype, const char* op, Body&& body) {
  switch (dtype) {
    case DType::f32:
      body.template operator()<float>();
      return;
    case DType::f64:
      body.template operator()<double>();
      return;
    default:
      throw Error(
          fmt::format("{}: dtype {} is not supported here; use f32 or f64 (convert with "
                      ".to(DType::f32))",
                      op, dtype_name(dtype)));
  }
}

// Calls `body.template operator()<T>()` with T the element type of any dtype.
template <typename Body>
void dispatch_any(DType dtype, Body&& body) {
  switch (dtype) {
    case DType::f32:
      body.template operator()<float>();
      return;
    case DType::f64:
      body.template operator()<double>();
      return;
    case DType::bf16:
      body.template operator()<bf16>();
      return;
    case DType::f16:
      body.template operator()<f16>();
      return;
    case DType::u8:
      body.template operator()<uint8_t>();
      return;
    case DType::i32:
      body.template operator()<int32_t>();
      return;
    case DType::i64:
      body.template operator()<int64_t>();
      return;
  }
}

// `op: <what> must be defined`.
void check_defined(const char* op, const char* what, const Tensor& t);
// The tensor has exactly `dims` axes.
void check_dims(const char* op, const char* what, const Tensor& t, int dims);
// The tensor has exactly this shape.
void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected);
// All defined tensors share the dtype and device of the first.
void check_same_dtype_device(const char* op, std::initializer_list<Tensor> tensors);
// The op has only a CPU implementation so far: a CUDA tensor gets a clear error.
void check_cpu(const char* op, const Tensor& t);
// The tensor's dtype is one the op computes in on its device: f32 or f64 on the CPU, f32 on CUDA.
void check_compute_dtype(const char* op, const Tensor& t);

[[noreturn]] void throw_no_cuda(const char* op);

// `CU3D_CUDA_CALL(op, expr)` evaluates the CUDA kernel call `expr` in a build with the CUDA
// backend and throws otherwise (a CUDA tensor cannot exist there, so that throw is unreachable
// in practice; it keeps each op's device branch one line).
#ifdef CU3D_CUDA
#define CU3D_CUDA_CALL(op, ...) (__VA_ARGS__)
#else
#define CU3D_CUDA_CALL(op, ...) ::cu3d::throw_no_cuda(op)
#endif

}  // namespace cu3d
