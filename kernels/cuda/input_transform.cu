#include "kernels/cuda/input_transform.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// One thread per output element, channels fastest: the warp's uint8 reads of one pixel row
// are contiguous (or reversed, under a flip), its fp32 writes coalesced.
__global__ void __launch_bounds__(256)
    input_transform_kernel(InputTransformShape s, const uint8_t* x, const int32_t* crops,
                           const uint8_t* flips, const float* mean, float scale, float* y,
                           int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int ch = int(i % s.c);
    int64_t q = i / s.c;
    const int j = int(q % s.out_w);
    q /= s.out_w;
    const int r = int(q % s.out_h);
    q /= s.out_h;
    const int t = int(q % s.d), n = int(q / s.d);
    const int row = crops[2 * n] + r;
    const int col = crops[2 * n + 1] + (flips[n] ? s.out_w - 1 - j : j);
    float v = 0.f;
    if (row >= 0 && row < s.h && col >= 0 && col < s.w)
      v = float(x[(((int64_t(n) * s.d + t) * s.h + row) * s.w + col) * s.c + ch]);
    y[i] = (v - (mean ? mean[ch] : 0.f)) * scale;
  }
}

}  // namespace

void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const float* mean, float scale, float* y,
                     cudaStream_t stream) {
  CU3D_CHECK(s.out_h <= s.h && s.out_w <= s.w,
             "input_transform: crop {}x{} is larger than the frames {}x{}", s.out_h, s.out_w, s.h,
             s.w);
  const int64_t total = s.output_size();
  input_transform_kernel<<<grid_stride_blocks(total), 256, 0, stream>>>(s, x, crops, flips, mean,
                                                                        scale, y, total);
  check_launch(fmt::format("input_transform ({}x{}x{}x{}x{} -> crop {}x{})", s.n, s.d, s.h, s.w,
                           s.c, s.out_h, s.out_w));
}

}  // namespace cu3d::cuda
