// cuDNN fallback for the softmax over the last axis: the same functions as
// kernels/cuda/softmax.cuh ((rows, cols) fp32 arrays in device memory), through
// cudnnSoftmaxForward/Backward with CUDNN_SOFTMAX_ACCURATE (the row maximum subtracted, as
// cu3d's) over each row as one instance. cuDNN has no cross-entropy: the classifier's fused
// softmax + cross-entropy stays cu3d's (kernels/cuda/softmax_xent.cuh).
#pragma once

#include <cuda_runtime.h>

#include "kernels/cpu/softmax.h"

namespace cu3d::cudnn {

using cpu::SoftmaxShape;

// False where the array exceeds cuDNN's int extents.
bool softmax_supported(const SoftmaxShape& s);

void softmax_fwd(const SoftmaxShape& s, const float* x, float* y, cudaStream_t stream);
void softmax_bwd(const SoftmaxShape& s, const float* y, const float* dy, float* dx,
                 cudaStream_t stream);

}  // namespace cu3d::cudnn
