// cuDNN fallback for 3D max pooling: the same functions as kernels/cuda/pool3d.cuh (NDHWC fp32
// in device memory, padded positions never win), through cudnnPoolingForward/Backward with
// CUDNN_POOLING_MAX_DETERMINISTIC and NaN propagation.
//
// Limits: cuDNN has one padding per axis and floor rounding, so asymmetric padding ("same"
// with an even total) and Caffe's ceil mode are refused with a message naming the shape; use
// the cu3d backend for those. Ties go to the element cuDNN picks (the CPU and cu3d rule is the
// first in (d, h, w) order); with real-valued activations ties do not occur.
#pragma once

#include <cuda_runtime.h>

#include "kernels/shapes.h"

namespace cu3d::cudnn {

// True when cuDNN can compute this pooling (symmetric padding, floor rounding).
bool maxpool3d_supported(const Pool3dShape& s);

void maxpool3d_fwd(const Pool3dShape& s, const float* x, float* y, cudaStream_t stream);

void maxpool3d_bwd(const Pool3dShape& s, const float* x, const float* y, const float* dy, float* dx,
                   cudaStream_t stream);

}  // namespace cu3d::cudnn
