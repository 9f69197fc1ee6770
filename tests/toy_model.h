// The small 3D CNN of the end-to-end learning tests (CPU and GPU): two conv3d + pool blocks and
// a dense layer over toy motion clips (data/toy_motion.h) of 6 frames of 12x12.
#pragma once

#include <algorithm>
#include <memory>

#include "data/toy_motion.h"
#include "engine/autograd.h"
#include "layers/basic.h"

namespace cu3d::testing {

constexpr int kToyFrames = 6, kToySize = 12;

inline std::shared_ptr<Sequential> small_3d_cnn(Generator& gen) {
  auto net = std::make_shared<Sequential>();
  const Conv3dParams same{.padding = Padding::same};
  net->add("conv1", std::make_shared<Conv3d>(1, 8, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu1", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool1", std::make_shared<MaxPool3d>(Pool3dParams{{1, 2, 2}, {1, 2, 2}}));
  net->add("conv2", std::make_shared<Conv3d>(8, 16, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu2", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool2", std::make_shared<MaxPool3d>(Pool3dParams{{2, 2, 2}, {2, 2, 2}}));
  net->add("flatten", std::make_shared<Flatten>());
  net->add("fc",
           std::make_shared<Dense>(3 * 3 * 3 * 16, toy::kDirections, InitStyle::pytorch, gen));
  return net;
}

// Top-1 accuracy of `net` on `data` (clips on the model's device, labels on the CPU).
inline double accuracy(Module& net, const Tensor& clips, const Tensor& labels) {
  autograd::NoGradGuard no_grad;
  const Tensor logits = net(clips).to(Device::cpu());
  const float* l = logits.data<float>();
  const int32_t* y = labels.data<int32_t>();
  const int64_t n = logits.size(0), classes = logits.size(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i)
    correct +=
        (std::max_element(l + i * classes, l + (i + 1) * classes) - (l + i * classes)) == y[i];
  return double(correct) / double(n);
}

}  // namespace cu3d::testing
