// Inverted dropout (kernels/cpu/dropout.h). CPU only so far.
#pragma once

#include <cstdint>

#include "engine/tensor.h"

namespace cu3d {

// In training, zeroes each element with probability p and scales the rest by 1 / (1 - p); the
// mask is a pure function of (seed, offset, element index) through Philox, so the backward pass
// recomputes it and a CUDA run draws the same one. Callers advance `offset` for every dropout
// call that shares a seed (e.g. the layer's index plus the step times the number of layers).
// Outside training, or with p = 0, returns x itself. Needs 0 <= p < 1.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset);

}  // namespace cu3d
