// Synchronized batch norm (training mode): the batch statistics of every channel are taken over
// the clips of all ranks, as one process with the global batch would take them, and backward
// sums its two per-channel reductions over the ranks too. Same conventions as engine/ops/norm.h's
// batch_norm (channels last, biased variance for normalizing, PyTorch's momentum and unbiased
// running variance). Costs two small all-reduces (2C + 1 and C doubles) in forward and one (2C)
// in backward per layer, blocking, in the same order on every rank.
//
// The parameter gradients (dgamma, dbeta) stay this rank's own sums: the gradient reducer averages
// them with every other parameter's. CPU f32 only so far.
#pragma once

#include "engine/dist/communicator.h"
#include "engine/tensor.h"

namespace cu3d::dist {

Tensor sync_batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                       const Tensor& running_mean, const Tensor& running_var, double momentum,
                       double eps, Communicator& comm);

}  // namespace cu3d::dist
