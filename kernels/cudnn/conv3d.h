// cuDNN fallback for conv3d: the same functions as kernels/cuda/conv3d.cuh (NDHWC activations,
// (k, kd, kh, kw, c) filters, fp32 tensors in memory, outputs overwritten), computed by
// cuDNN's legacy convolution API with 5-D descriptors: activations described by strides as
// NDHWC, filters as CUDNN_TENSOR_NHWC. The algorithm of each (pass, shape, precision) is chosen
// once by cudnnFind* (which times them all) and remembered for the process.
//
// Precision: fp32 restricts cuDNN to FMA kernels (CUDNN_FMA_MATH, no TF32); tf32 allows tensor
// cores on fp32 data; bf16 converts the operands to bf16 in a workspace, runs cuDNN in bf16
// with fp32 accumulation and converts the result back (so the output is also rounded to bf16,
// which cu3d's own bf16 kernels do not do).
//
// Limits: symmetric padding only (cuDNN has one pad per axis): a "same" conv with an even
// kernel is refused with a message. Every cuDNN status is checked and names the op and shape.
#pragma once

#include <cuda_runtime.h>

#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::cudnn {

void conv3d_fwd(const Conv3dShape& s, const float* x, const float* w, const float* bias, float* y,
                Precision precision, cudaStream_t stream);

// The forward alone on operands already in the type cuDNN computes on (bf16 arrays for bf16, fp32
// otherwise; y too), without the conversions and the bias conv3d_fwd adds around it: cuDNN as a
// program that keeps its tensors in that type would call it (the benchmark's kernel-to-kernel
// rows).
void conv3d_fwd_prepared(const Conv3dShape& s, const void* x, const void* w, void* y,
                         Precision precision, cudaStream_t stream);

// y = relu(conv(x, w) + bias): one cudnnConvolutionBiasActivationForward in fp32 and tf32 (the
// conv's algorithm as conv3d_fwd's); in bf16 (where the operands are converted for cuDNN and the
// bias is fp32), without a bias, and where the fused call refuses the algorithm
// (CUDNN_STATUS_NOT_SUPPORTED), conv3d_fwd and cuDNN's ReLU.
void conv3d_fwd_bias_relu(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                          float* y, Precision precision, cudaStream_t stream);

void conv3d_bwd_data(const Conv3dShape& s, const float* dy, const float* w, float* dx,
                     Precision precision, cudaStream_t stream);

void conv3d_bwd_filter(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                       float* dbias, Precision precision, cudaStream_t stream);

// The algorithm (cuDNN's enum value) that cudnnFind* chose for a pass ("fwd", "bwd_data",
// "bwd_filter"), shape and precision, or -1 if that pass has not run yet: for benchmark logs.
int conv3d_algorithm(const char* pass, const Conv3dShape& s, Precision precision);

}  // namespace cu3d::cudnn
