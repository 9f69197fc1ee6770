// Fused softmax + cross-entropy on the GPU: the CUDA twin of kernels/cpu/softmax_xent.h.
// logits and probs are (rows, classes) fp32, labels (rows) int32 class indices, all in device
// memory; loss and dloss point to one float in device memory (the mean loss over rows, and the
// gradient flowing into it).
//
// Forward: one warp per row (max, sum of exp, normalize: 3 reads of a row that stays in L1),
// then one block sums the per-row losses in a fixed order (deterministic); a batch of at most
// 256 rows and 64 Ki values (a classifier's) runs both in one block, one launch. A label outside
// [0, classes) cannot throw from the GPU: its row loss is NaN, so the mean loss is NaN and the
// divergence shows (the CPU version throws).
// Backward: dlogits = (probs - onehot(label)) * dloss / rows, elementwise.
// Cost: tiny next to the model (rows = batch): ~5 FLOPs and 12 bytes per element.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cpu/softmax_xent.h"

namespace cu3d::cuda {

using cpu::SoftmaxXentShape;

void softmax_xent_fwd(const SoftmaxXentShape& s, const float* logits, const int32_t* labels,
                      float* probs, float* loss, cudaStream_t stream);

void softmax_xent_bwd(const SoftmaxXentShape& s, const float* probs, const int32_t* labels,
                      const float* dloss, float* dlogits, cudaStream_t stream);

}  // namespace cu3d::cuda
