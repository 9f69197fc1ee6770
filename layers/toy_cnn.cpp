#include "layers/toy_cnn.h"

#include <algorithm>

#include "engine/autograd.h"
#include "layers/basic.h"

namespace cu3d {

std::shared_ptr<Sequential> toy_3d_cnn(int frames, int size, int classes, Generator& gen) {
  CU3D_CHECK(frames >= 2 && frames % 2 == 0 && size >= 4 && size % 4 == 0,
             "toy_3d_cnn: frames must be even and size a multiple of 4 (got {} and {})", frames,
             size);
  auto net = std::make_shared<Sequential>();
  const Conv3dParams same{.padding = Padding::same};
  net->add("conv1", std::make_shared<Conv3d>(1, 8, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu1", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool1", std::make_shared<MaxPool3d>(Pool3dParams{{1, 2, 2}, {1, 2, 2}}));
  net->add("conv2", std::make_shared<Conv3d>(8, 16, Dims3{3, 3, 3}, same, InitStyle::pytorch, gen));
  net->add("relu2", std::make_shared<Activation>(ActivationKind::relu));
  net->add("pool2", std::make_shared<MaxPool3d>(Pool3dParams{{2, 2, 2}, {2, 2, 2}}));
  net->add("flatten", std::make_shared<Flatten>());
  const int features = (frames / 2) * (size / 4) * (size / 4) * 16;
  net->add("fc", std::make_shared<Dense>(features, classes, InitStyle::pytorch, gen));
  return net;
}

double top1_accuracy(Module& model, const Tensor& clips, const Tensor& labels) {
  autograd::NoGradGuard no_grad;
  const Tensor logits = model(clips).to(Device::cpu());
  const std::vector<int32_t> truth = labels.to_vector<int32_t>();
  const float* l = logits.data<float>();
  const int64_t n = logits.size(0), classes = logits.size(1);
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i)
    correct +=
        (std::max_element(l + i * classes, l + (i + 1) * classes) - (l + i * classes)) == truth[i];
  return double(correct) / double(n);
}

}  // namespace cu3d
