// Conversions between fp32 and bf16 (or tf32-rounded fp32) arrays in device memory, for the
// library fallbacks and the cp.async-fed kernels that need the compute type in memory
// (kernels/precision.h: cu3d's other kernels round on the fly).
// Memory-bound: 6 bytes moved per element, coalesced across each warp.
#pragma once

#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace cu3d::cuda {

// dst[i] = bf16(src[i]), round to nearest even.
void fp32_to_bf16(const float* src, __nv_bfloat16* dst, int64_t count, cudaStream_t stream);

// dst[i] = float(src[i]), exact.
void bf16_to_fp32(const __nv_bfloat16* src, float* dst, int64_t count, cudaStream_t stream);

// dst[i] = src[i] rounded to tf32 (10 mantissa bits, to nearest, ties away from zero: cvt.rna,
// as the mma kernels round in registers), stored as fp32; for kernels whose tensor cores read
// fp32 operands from shared memory and would truncate them. 8 bytes moved per element.
void fp32_to_tf32(const float* src, float* dst, int64_t count, cudaStream_t stream);

}  // namespace cu3d::cuda
