// cuDNN fallback for the activations cuDNN offers, ReLU and sigmoid: the same functions as
// kernels/cuda/activation.cuh (flat arrays of n fp32 values in device memory; backward from the
// forward output y), through cudnnActivationForward/Backward.
//
// The backward passes y where cuDNN also takes the forward input x: both derivatives are
// functions of y (ReLU's is y > 0, which is x > 0; sigmoid's y (1 - y)), and the engine keeps y
// only. cuDNN has no leaky ReLU (its ReLU has no negative slope) and its dropout draws a mask of
// its own, not kernels/philox.h's that CPU and GPU share by seed: those stay on cu3d.
// Arrays of more than 2^30 values run as several calls (cuDNN's extents are ints).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace cu3d::cudnn {

void relu_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
void relu_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);
void sigmoid_fwd(int64_t n, const float* x, float* y, cudaStream_t stream);
void sigmoid_bwd(int64_t n, const float* y, const float* dy, float* dx, cudaStream_t stream);

}  // namespace cu3d::cudnn
