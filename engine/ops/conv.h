// Convolution ops on tensors (channels-last), recorded on the tape; CPU only for now.
//   conv3d: x (n, d, h, w, c), w (k, kd, kh, kw, c), b (k) or undefined -> y (n, od, oh, ow, k)
//   conv2d: x (n, h, w, c),    w (k, kh, kw, c),     b (k) or undefined -> y (n, oh, ow, k)
// conv2d is conv3d with depth 1. Cost and algorithm: kernels/cpu/conv3d.h. Backward computes
// only the gradients that are needed (no dx for a network's input batch).
#pragma once

#include "engine/ops/window.h"
#include "engine/tensor.h"
#include "kernels/shapes.h"

namespace cu3d {

struct Conv3dParams {
  Dims3 stride{1, 1, 1};
  // Keras's names: Padding::valid (none, Keras's default), Padding::same (output =
  // ceil(input / stride), any odd padding after), or Padding::explicit_ with `pad`.
  Padding padding = Padding::valid;
  Dims3 pad{0, 0, 0};  // before and after each axis, for Padding::explicit_
};

struct Conv2dParams {
  Dims2 stride{1, 1};
  Padding padding = Padding::valid;
  Dims2 pad{0, 0};
};

Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv3dParams& params = {});
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& params = {});

}  // namespace cu3d
