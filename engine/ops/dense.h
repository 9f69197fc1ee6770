// The fully connected op on tensors, recorded on the tape; CPU only for now.
//   dense: x (m, in), w (out, in), b (out) or undefined -> y (m, out) = x * w^T + b
// A conv net's features reach it through Tensor::flatten(). Cost: kernels/cpu/dense.h.
#pragma once

#include "engine/tensor.h"

namespace cu3d {

Tensor dense(const Tensor& x, const Tensor& w, const Tensor& b);

}  // namespace cu3d
