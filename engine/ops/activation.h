// Activation ops: element-wise ReLU, leaky ReLU and sigmoid on tensors of any shape, and
// softmax over the last axis (channels for a channels-last activation, classes for logits).
// Each backward reads the saved output. CPU only so far (kernels/cpu/activation.h, softmax.h).
#pragma once

#include "engine/tensor.h"

namespace cu3d {

Tensor relu(const Tensor& x);
// alpha >= 0 (Keras's LeakyReLU default is 0.3, PyTorch's 0.01).
Tensor leaky_relu(const Tensor& x, double alpha);
Tensor sigmoid(const Tensor& x);
// x is (..., k); each length-k row along the last axis sums to 1.
Tensor softmax(const Tensor& x);

}  // namespace cu3d
