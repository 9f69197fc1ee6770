// Element-wise arithmetic on the GPU: the CUDA twins of kernels/cpu/elementwise.h (n contiguous
// floats in device memory), plus in-place accumulation for the autograd tape.
// Cost: memory-bound; add/mul 12 bytes per element, scale and accumulate 8 and 12, sum 4.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cu3d::cuda {

void add(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
void mul(int64_t n, const float* a, const float* b, float* y, cudaStream_t stream);
void scale(int64_t n, float alpha, const float* x, float* y, cudaStream_t stream);
// y += x.
void accumulate(int64_t n, const float* x, float* y, cudaStream_t stream);
// *result = sum(x), accumulated in double in a fixed order (deterministic run to run).
void sum(int64_t n, const float* x, float* result, cudaStream_t stream);

}  // namespace cu3d::cuda
