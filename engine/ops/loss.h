// Loss ops. CPU only so far (kernels/cpu/softmax_xent.h).
#pragma once

#include "engine/tensor.h"

namespace cu3d {

// Mean softmax cross-entropy of logits (rows, classes) against int32 class labels (rows), fused
// so that logits of any magnitude give a finite loss. Returns a one-element tensor of shape []
// in the logits' dtype. A label outside [0, classes) is an error naming its row.
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels);

}  // namespace cu3d
