// The input transform of a uint8 clip batch: crop, horizontal flip, mean subtraction and
// scaling, uint8 (n, d, h, w, c) -> (n, d, out_h, out_w, c):
//   y[n, t, i, j, ch] = (x[n, t, y0 + i, flip ? x0 + out_w - 1 - j : x0 + j, ch] - mean[ch])
//                       * scale
// with (y0, x0) = (crops[2n], crops[2n + 1]) and flip = flips[n] != 0: the loader's per-clip
// plan (data/recipe.h). `mean` (c values) may be null for no subtraction. The loader keeps
// clips uint8 up to the device (4x fewer bytes to copy); this is the step that makes them
// floats. kernels/cuda/input_transform.cuh is the fused GPU twin.
//
// Cost: memory-bound, 1 byte read and sizeof(T) written per output element, 2 FLOPs.
#pragma once

#include <cstdint>

namespace cu3d::cpu {

struct InputTransformShape {
  int n = 1, d = 1, h = 1, w = 1, c = 1;  // the uint8 batch
  int out_h = 1, out_w = 1;               // the crop

  int64_t input_size() const { return int64_t(n) * d * h * w * c; }
  int64_t output_size() const { return int64_t(n) * d * out_h * out_w * c; }
};

// Writes y. Throws cu3d::Error when the crop is larger than the frames or some clip's crop
// does not lie inside its frames (the GPU kernel, which cannot throw, reads zeros there).
template <typename T>
void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const T* mean, T scale, T* y);

}  // namespace cu3d::cpu
