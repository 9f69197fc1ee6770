// Parameter initialisation as the reference frameworks do it, so that a model trained here starts
// from the same distribution as its Keras or PyTorch original.
#pragma once

#include "engine/rng.h"
#include "engine/tensor.h"

namespace cu3d::init {

// Keras's default for Conv and Dense kernels: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
Tensor glorot_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen);
// PyTorch's default for Conv and Linear weights and biases (kaiming_uniform with a = sqrt(5)):
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
Tensor pytorch_uniform(const Shape& shape, int64_t fan_in, Generator& gen);

}  // namespace cu3d::init
