// The whole chain learns: a small 3D CNN (two conv3d + pool + dense) trained with Adam on toy
// clips whose label is a direction of motion must fit them. No single frame tells the class, so
// this fails unless conv3d, pooling, dense, the loss, the tape and the optimizer all work.
#include <gtest/gtest.h>

#include "data/toy_motion.h"
#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "layers/basic.h"

namespace cu3d {
namespace {

constexpr int kFrames = 6, kSize = 12;

std::shared_ptr<Sequential> small_3d_cnn(Generator& gen) {
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

double accuracy(Module& net, const toy::MotionBatch& data) {
  autograd::NoGradGuard no_grad;
  const Tensor logits = net(data.clips);
  const float* l = logits.data<float>();
  const int32_t* labels = data.labels.data<int32_t>();
  const int64_t n = logits.size(0), classes = logits.size(1);
  int correct = 0;
  for (int64_t i = 0; i < n; ++i)
    correct += int(std::max_element(l + i * classes, l + (i + 1) * classes) - (l + i * classes)) ==
               labels[i];
  return double(correct) / double(n);
}

// The clips [first, first + count) of `data`, as views.
toy::MotionBatch slice(const toy::MotionBatch& data, int64_t first, int64_t count) {
  const int64_t clip = kFrames * kSize * kSize;
  toy::MotionBatch out{Tensor::empty({count, kFrames, kSize, kSize, 1}),
                       Tensor::empty({count}, DType::i32)};
  std::copy_n(data.clips.data<float>() + first * clip, count * clip, out.clips.data<float>());
  std::copy_n(data.labels.data<int32_t>() + first, count, out.labels.data<int32_t>());
  return out;
}

TEST(Training, Small3dCnnLearnsMotionDirection) {
  Generator gen(2024);
  auto net = small_3d_cnn(gen);
  const toy::MotionBatch train = toy::make_motion_batch(256, kFrames, kSize, gen);
  const toy::MotionBatch held_out = toy::make_motion_batch(128, kFrames, kSize, gen);
  Adam adam(net->named_parameters(), AdamOptions{.lr = 3e-3});

  const double initial_loss = [&] {
    autograd::NoGradGuard no_grad;
    return softmax_cross_entropy((*net)(train.clips), train.labels).item();
  }();
  constexpr int kBatch = 32, kSteps = 240;
  for (int step = 0; step < kSteps; ++step) {
    const toy::MotionBatch batch = slice(train, (step * kBatch) % 256, kBatch);
    adam.zero_grad();
    const Tensor loss = softmax_cross_entropy((*net)(batch.clips), batch.labels);
    ASSERT_TRUE(std::isfinite(loss.item())) << "step " << step;
    autograd::backward(loss);
    adam.step();
  }
  const double final_loss = [&] {
    autograd::NoGradGuard no_grad;
    return softmax_cross_entropy((*net)(train.clips), train.labels).item();
  }();
  const double train_accuracy = accuracy(*net, train), held_out_accuracy = accuracy(*net, held_out);
  std::printf("loss %.3f -> %.3f, accuracy: training %.3f, held out %.3f\n", initial_loss,
              final_loss, train_accuracy, held_out_accuracy);
  EXPECT_LT(final_loss, 0.25 * initial_loss);
  EXPECT_GE(train_accuracy, 0.95) << "training accuracy";
  EXPECT_GE(held_out_accuracy, 0.85) << "it generalises to unseen clips";
  EXPECT_EQ(autograd::tape_size(), 0u) << "every step's tape was consumed";
}

}  // namespace
}  // namespace cu3d
