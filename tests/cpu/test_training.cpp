// The whole chain learns: a small 3D CNN (two conv3d + pool + dense) trained with Adam on toy
// clips whose label is a direction of motion must fit them. No single frame tells the class, so
// this fails unless conv3d, pooling, dense, the loss, the tape and the optimizer all work.
#include <gtest/gtest.h>

#include "data/toy_motion.h"
#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "layers/toy_cnn.h"
#include "toy_model.h"

namespace cu3d {
namespace {

using testing::kToyFrames;
using testing::kToySize;

// The clips [first, first + count) of `data`, as views.
toy::MotionBatch slice(const toy::MotionBatch& data, int64_t first, int64_t count) {
  const int64_t clip = kToyFrames * kToySize * kToySize;
  toy::MotionBatch out{Tensor::empty({count, kToyFrames, kToySize, kToySize, 1}),
                       Tensor::empty({count}, DType::i32)};
  std::copy_n(data.clips.data<float>() + first * clip, count * clip, out.clips.data<float>());
  std::copy_n(data.labels.data<int32_t>() + first, count, out.labels.data<int32_t>());
  return out;
}

TEST(Training, Small3dCnnLearnsMotionDirection) {
  Generator gen(2024);
  auto net = toy_3d_cnn(kToyFrames, kToySize, toy::kDirections, gen);
  const toy::MotionBatch train = toy::make_motion_batch(256, kToyFrames, kToySize, gen);
  const toy::MotionBatch held_out = toy::make_motion_batch(128, kToyFrames, kToySize, gen);
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
  const double train_accuracy = top1_accuracy(*net, train.clips, train.labels),
               held_out_accuracy = top1_accuracy(*net, held_out.clips, held_out.labels);
  std::printf("loss %.3f -> %.3f, accuracy: training %.3f, held out %.3f\n", initial_loss,
              final_loss, train_accuracy, held_out_accuracy);
  EXPECT_LT(final_loss, 0.25 * initial_loss);
  EXPECT_GE(train_accuracy, 0.95) << "training accuracy";
  EXPECT_GE(held_out_accuracy, 0.85) << "it generalises to unseen clips";
  EXPECT_EQ(autograd::tape_size(), 0u) << "every step's tape was consumed";
}

}  // namespace
}  // namespace cu3d
