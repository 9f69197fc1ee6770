// A toy dataset of tensors whose label is a direction of motion: a bright square drifts one pixel
// per frame left, right, up or down over a noisy background. Every single frame looks alike, so
// a model can only tell the classes apart by looking across time. Used by the engine's
// end-to-end learning test and by the smallest demo; the real synthetic videos are synth.h's.
#pragma once

#include <algorithm>
#include <cstdint>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace cu3d::toy {

constexpr int kDirections = 4;  // 0 left, 1 right, 2 up, 3 down

struct MotionBatch {
  Tensor clips;   // f32 (n, frames, size, size, 1) in [0, 1]
  Tensor labels;  // i32 (n)
};

inline MotionBatch make_motion_batch(int n, int frames, int size, Generator& gen) {
  constexpr int kSquare = 2;
  MotionBatch batch{Tensor::empty({n, frames, size, size, 1}), Tensor::empty({n}, DType::i32)};
  float* x = batch.clips.data<float>();
  int32_t* labels = batch.labels.data<int32_t>();
  const int travel = frames - 1;
  for (int i = 0; i < n; ++i) {
    const int direction = int(gen.below(kDirections));
    labels[i] = direction;
    const int dx = direction == 0 ? -1 : direction == 1 ? 1 : 0;
    const int dy = direction == 2 ? -1 : direction == 3 ? 1 : 0;
    // Start where the whole path stays inside the frame.
    const int span = size - kSquare - travel;
    int x0 = int(gen.below(uint64_t(std::max(span, 1)))) + (dx < 0 ? travel : 0);
    int y0 = int(gen.below(uint64_t(std::max(span, 1)))) + (dy < 0 ? travel : 0);
    if (dx == 0) x0 = int(gen.below(uint64_t(size - kSquare + 1)));
    if (dy == 0) y0 = int(gen.below(uint64_t(size - kSquare + 1)));
    float* clip = x + int64_t(i) * frames * size * size;
    for (int f = 0; f < frames; ++f) {
      float* frame = clip + int64_t(f) * size * size;
      for (int p = 0; p < size * size; ++p)
        frame[p] = float(gen.uniform(0.0, 0.3));
      for (int r = 0; r < kSquare; ++r)
        for (int c = 0; c < kSquare; ++c)
          frame[(y0 + dy * f + r) * size + (x0 + dx * f + c)] = 1.0f;
    }
  }
  return batch;
}

}  // namespace cu3d::toy
