// Element-wise ops on tensors of identical shape (no broadcasting: a shape mismatch is an error).
#pragma once

#include "engine/tensor.h"

namespace cu3d {

Tensor add(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, double alpha);
Tensor sum(const Tensor& x);   // one-element tensor of shape []
Tensor mean(const Tensor& x);  // one-element tensor of shape []
// dst += src in place, not recorded on the tape (gradient accumulation, optimizers).
void accumulate_(const Tensor& dst, const Tensor& src);

}  // namespace cu3d
