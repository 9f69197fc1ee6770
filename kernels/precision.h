// Compute precision of the matrix ops (conv3d, dense), chosen at run time (DESIGN.md):
//   fp32  exact fp32 fused multiply-adds (CUDA cores); the reference-quality path.
//   tf32  tensor cores with tf32 operands (10-bit mantissa, rounded to nearest), fp32 accumulation.
//   bf16  tensor cores with bf16 operands (7-bit mantissa, round-to-nearest-even), fp32
//         accumulation.
//
// How bf16 data is typed: tensors stay fp32 in memory for every precision; a kernel rounds
// its operands to tf32 or bf16 as it stages them into shared memory, and writes fp32 results.
// So parameters, activations and gradients are always `float*`, the engine needs no second
// dtype, and the precision is one enum argument. The price is that a bf16 conv reads fp32
// activations (twice the bytes of bf16 storage); the C3D layers are compute-bound (>100
// FLOP/byte), so this costs little except on conv1a. Where a bf16 array is needed in memory
// (the cuDNN bf16 fallback) it is typed __nv_bfloat16 (cuda_bf16.h) and lives only inside
// that kernel's workspace.
#pragma once

#include <string_view>

#include "kernels/error.h"

namespace cu3d {

enum class Precision { fp32, tf32, bf16 };

inline const char* to_string(Precision p) {
  switch (p) {
    case Precision::fp32:
      return "fp32";
    case Precision::tf32:
      return "tf32";
    case Precision::bf16:
      return "bf16";
  }
  return "?";
}

inline Precision parse_precision(std::string_view name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "tf32") return Precision::tf32;
  if (name == "bf16") return Precision::bf16;
  throw Error(fmt::format("unknown precision '{}': use fp32, tf32 or bf16", name));
}

}  // namespace cu3d
