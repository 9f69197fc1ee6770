// The small 3D CNN of `cu3d toy` and of the end-to-end learning tests: two conv3d + ReLU +
// max-pool blocks and a dense layer over toy motion clips (data/toy_motion.h) of `frames` frames
// of size x size pixels, one channel, `classes` outputs.
#pragma once

#include <memory>

#include "engine/rng.h"
#include "layers/module.h"

namespace cu3d {

// `frames` must be even and `size` a multiple of 4 (the pools halve them).
std::shared_ptr<Sequential> toy_3d_cnn(int frames, int size, int classes, Generator& gen);

// Top-1 accuracy of `model` on `clips` (on the model's device) against i32 `labels` (any device).
double top1_accuracy(Module& model, const Tensor& clips, const Tensor& labels);

}  // namespace cu3d
