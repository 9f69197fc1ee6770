// Numerical fault finding: a checking mode that tests every layer's output in the forward pass
// (layers/module.cpp, Sequential) and every gradient the tape hands back in the backward pass
// (engine/autograd.cpp) for NaN and Inf, so a run that goes non-finite stops at the first layer
// that produced the bad value instead of at the loss. Off by default: each check copies the
// tensor to the host (`cu3d train --check-numerics` turns it on). And clipping by global norm.
#pragma once

#include <string>

#include "engine/tensor.h"
#include "kernels/error.h"

namespace cu3d {

// Thrown by check_finite; the trainer adds the step and the last good checkpoint.
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

void set_check_numerics(bool enabled);
bool check_numerics();

// Throws NonFiniteError("<what> holds N non-finite values (first: nan at element i) ...") when
// `t` has a NaN or an infinity. Any float dtype, any device.
void check_finite(const Tensor& t, const std::string& what);

// Scales the gradients of `params` so that their global L2 norm is at most `max_norm` (as
// torch.nn.utils.clip_grad_norm_); returns the norm before clipping. Parameters without a
// gradient are skipped. A non-finite norm throws NonFiniteError naming the first parameter whose
// gradient is not finite: clipping cannot repair it.
double clip_grad_norm(const NamedTensors& params, double max_norm);

}  // namespace cu3d
