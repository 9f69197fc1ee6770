// Max-pooling ops on tensors (channels-last), recorded on the tape; CPU only for now.
//   max_pool3d: x (n, d, h, w, c) -> y (n, od, oh, ow, c)
//   max_pool2d: x (n, h, w, c)    -> y (n, oh, ow, c)    (max_pool3d with depth 1)
// Cost and the tie rule of the backward (first maximum in window order, as cuDNN):
// kernels/cpu/pool3d.h.
#pragma once

#include "engine/ops/window.h"
#include "engine/tensor.h"
#include "kernels/shapes.h"

namespace cu3d {

struct Pool3dParams {
  Dims3 window{2, 2, 2};
  Dims3 stride{2, 2, 2};
  // Padding::valid, Padding::same (Keras), or Padding::explicit_ with `pad` (C3D's pool5 pads
  // {0, 1, 1}); padded positions never win.
  Padding padding = Padding::valid;
  Dims3 pad{0, 0, 0};
  bool ceil_mode = false;  // Caffe's rounding of the output size
};

struct Pool2dParams {
  Dims2 window{2, 2};
  Dims2 stride{2, 2};
  Padding padding = Padding::valid;
  Dims2 pad{0, 0};
  bool ceil_mode = false;
};

Tensor max_pool3d(const Tensor& x, const Pool3dParams& params = {});
Tensor max_pool2d(const Tensor& x, const Pool2dParams& params = {});

}  // namespace cu3d
