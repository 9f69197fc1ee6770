// The model's input from a batch of uint8 clips: uint8 (N, D, H, W, C) -> f32 (N, D, H, W, C),
//   y[..., c] = (x[..., c] - mean[c]) * scale
// the recipe's normalization (data/recipe.h), on the clips' device. The loader has already cut,
// cropped and flipped each clip, so this is the input transform kernel
// (kernels/{cpu,cuda}/input_transform) with a zero crop offset and no flip. Clips travel to the
// device as uint8, a quarter of the bytes of floats, and become floats here. On CUDA it runs on
// the compute stream. Not recorded on the tape: an input has no gradient.
#pragma once

#include <vector>

#include "engine/tensor.h"

namespace cu3d {

// `mean` holds C values, or none for no subtraction. Throws cu3d::Error naming the tensor when
// `clips` is not a u8 tensor of 5 axes or `mean` does not match its channels.
Tensor normalize_clips(const Tensor& clips, const std::vector<float>& mean, float scale);

}  // namespace cu3d
