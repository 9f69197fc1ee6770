// Elementwise activations on the GPU: the CUDA twins of kernels/cpu/activation.h and
// kernels/cpu/dropout.h, flat arrays of n floats. Backward passes take the forward output y
// (as the CPU versions do), so the forward input need not be kept.
//
// Cost: memory-bound, 8 bytes per element forward (read x, write y), 12 backward (y, dy, dx);
// the floor on an H100 at ~3 TB/s is ~2.7 ns per thousand elements forward.
// Dropout draws its mask from kernels/philox.h exactly as the CPU does (one Philox block per
// four consecutive elements), so CPU and GPU masks are bit-identical for a (seed, offset).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cu3d::cuda {

void relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
void relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
void leaky_relu_fwd(int64_t n, const float* x, float alpha, float* y, cudaStream_t stream);
void leaky_relu_bwd(int64_t n, const float* y, float alpha, const float* dy, float* dx,
                    cudaStream_t stream);
void sigmoid_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
void sigmoid_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);

// Inverted dropout with rate p (0 <= p < 1): y = keep ? x / (1 - p) : 0; backward the same
// mask on dy.
void dropout_fwd(int64_t n, const float* x, double p, uint64_t seed, uint64_t offset, float* y,
                 cudaStream_t stream);
void dropout_bwd(int64_t n, const float* dy, double p, uint64_t seed, uint64_t offset, float* dx,
                 cudaStream_t stream);

}  // namespace cu3d::cuda
