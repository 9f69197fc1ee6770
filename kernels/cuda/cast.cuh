// Conversions between fp32 and bf16 (or tf32-rounded fp32) arrays in device memory, for the
// library fallbacks and the cp.async-fed kernels that need the compute type in memory
// (kernels/precision.h: cu3d's other kernels round on the fly).
// Memory-bound: 6 bytes moved per element, coalesced across each warp.
#pragma once

#include <cstdint>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"
#include "kernels/precision.h"

namespace cu3d::cuda {

// dst[i] = bf16(src[i]), round to nearest even.
void fp32_to_bf16(const float* src, __nv_bfloat16* dst, int64_t count, cudaStream_t stream);

// dst[i] = float(src[i]), exact.
void bf16_to_fp32(const __nv_bfloat16* src, float* dst, int64_t count, cudaStream_t stream);

// dst[i] = src[i] rounded to tf32 (10 mantissa bits, to nearest, ties away from zero: cvt.rna,
// as the mma kernels round in registers), stored as fp32; for kernels whose tensor cores read
// fp32 operands from shared memory and would truncate them. 8 bytes moved per element.
void fp32_to_tf32(const float* src, float* dst, int64_t count, cudaStream_t stream);

// The type a cp.async-fed kernel of precision P (bf16 or tf32) reads its operands in: bf16, or
// fp32 values rounded to tf32.
template <Precision P>
using ComputeValue = std::conditional_t<P == Precision::bf16, __nv_bfloat16, float>;

// A copy of `count` fp32 values in precision P's ComputeValue (fp32_to_bf16 or fp32_to_tf32), in
// stream-ordered workspace the caller frees (free_async): cp.async copies bytes as they are, and
// tensor cores reading fp32 from shared memory would truncate it to tf32, not round.
template <Precision P>
ComputeValue<P>* compute_copy(const float* src, int64_t count, cudaStream_t stream) {
  static_assert(P == Precision::bf16 || P == Precision::tf32);
  auto* dst = static_cast<ComputeValue<P>*>(malloc_async(sizeof(ComputeValue<P>) * count, stream));
  if constexpr (P == Precision::bf16)
    fp32_to_bf16(src, dst, count, stream);
  else
    fp32_to_tf32(src, dst, count, stream);
  return dst;
}

// How fp32_to_tf32_split lays out a row's three copies: heads, tails, heads (activations) or
// heads, heads, tails (filters). A conv of the two, channel against channel, sums head * head +
// tail * head + head * tail: fp32 products from tf32 tensor cores ("3xTF32", conv3d_fwd.cu).
enum class Tf32Split { head_tail_head, head_head_tail };

// Each row of `c` values of src (rows * c in all) becomes a row of 3c in dst, the row's heads
// and tails in the order `order` gives: head = tf32(v) as fp32_to_tf32 rounds it, tail =
// tf32(v - head) (the difference is exact in fp32), so head + tail is v within 2^-22 |v| for
// v of normal size; a non-finite v has a NaN tail. c a multiple of 4, rows * c / 4 below 2^31,
// both arrays 16-byte aligned.
// 16 bytes moved per element of src.
void fp32_to_tf32_split(const float* src, float* dst, int64_t rows, int c, Tf32Split order,
                        cudaStream_t stream);

}  // namespace cu3d::cuda
