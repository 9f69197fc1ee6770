// 3D convolution on the GPU: the CUDA twins of kernels/cpu/conv3d.h (same shapes, same
// semantics: cross-correlation, zero padding, NDHWC activations, (k, kd, kh, kw, c) filters,
// outputs overwritten), with the compute precision and a stream as trailing arguments. All
// tensors are fp32 in device memory (kernels/precision.h says why); calls are asynchronous on
// `stream`. Host-callable from plain C++.
//
// Two versions of each pass, the study area of docs/kernels/conv3d_cuda.md:
//   version 1, `_naive`: one thread per output element, a direct loop; the simplest correct
//              kernel, for reading and for checking version 2 on odd shapes.
//   version 2 (no suffix): implicit GEMM, 128 x 64 tiles in shared memory, FFMA for fp32,
//              mma.sync tensor cores for tf32 and bf16; any kernel size, stride and padding,
//              any channel count (16-byte loads where the channels allow, scalar gathers
//              otherwise, e.g. conv1a's c = 3), so no shape needs another path.
//
// Cost per pass: 2 * Conv3dShape::macs() FLOPs; bytes as in kernels/cpu/conv3d.h. Tensors up
// to 2^31 elements (checked). bwd-filter may take device workspace from the stream-ordered
// pool (split-K partials, at most ~4 * #SM tiles of 128 x 64 floats).
#pragma once

#include <cuda_runtime.h>

#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::cuda {

// y = conv(x, w) + bias. `bias` may be null.
void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream);

// Fused block: y = relu(conv(x, w) + bias) in one pass over y (the epilogue applies bias and
// ReLU before the only store), saving a read and a write of y against the unfused pair.
void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream);

// dx = dL/dx from dy.
void conv3d_bwd_data(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                     Precision precision, cudaStream_t stream);

// dw = dL/dw and, unless null, dbias = dL/dbias (always summed in fp32).
void conv3d_bwd_filter(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias, Precision precision, cudaStream_t stream);

// Version 1: operands rounded to `precision` like version 2, fp32 accumulation.
void conv3d_fwd_naive(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                      float* y, Precision precision, cudaStream_t stream);
void conv3d_bwd_data_naive(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                           Precision precision, cudaStream_t stream);
void conv3d_bwd_filter_naive(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                             float* dbias, Precision precision, cudaStream_t stream);

}  // namespace cu3d::cuda
