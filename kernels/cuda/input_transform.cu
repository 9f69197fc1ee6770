#include "kernels/cuda/input_transform.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

// 128 threads per output row: a C3D row is out_w * c = 336 values, 84 float4 stores, one
// pass of the block.
constexpr int kThreads = 128;

// One block per output row (clip n, frame t, row i): the row's source pointer, crop and flip
// are computed once per block, and the row's out_w * c values are contiguous in both the
// output and (reversed per pixel under a flip) the input, so both sides are coalesced and the
// per-element index math is one 32-bit division by c. With kVec4 (rows a multiple of 4 values,
// 16-byte aligned output) each thread converts 4 consecutive values and stores one float4.
// History on an H100 (C3D batch 32, % of the device copy's bandwidth): one thread per element
// with four 64-bit divisions 20 %, one block per row 40 %.
template <bool kVec4>
__global__ void __launch_bounds__(kThreads)
    input_transform_rows(InputTransformShape s, const uint8_t* x, const int32_t* crops,
                         const uint8_t* flips, const float* mean, float scale, float* y) {
  const int row = blockIdx.x;  // (n * d + t) * out_h + i
  const int i = row % s.out_h, frame = row / s.out_h, n = frame / s.d;
  const int src_row = crops[2 * n] + i, x0 = crops[2 * n + 1];
  const bool flip = flips[n] != 0;
  const int width = s.out_w * s.c;
  float* out = y + int64_t(row) * width;
  const bool inside = src_row >= 0 && src_row < s.h;
  const uint8_t* in = x + (int64_t(frame) * s.h + src_row) * s.w * s.c;
  // Output value k of the row: pixel j = k / c, channel ch = k % c.
  auto value = [&](int j, int ch) {
    const int col = x0 + (flip ? s.out_w - 1 - j : j);
    const float v = inside && col >= 0 && col < s.w ? float(in[col * s.c + ch]) : 0.f;
    return (v - (mean ? __ldg(mean + ch) : 0.f)) * scale;
  };
  constexpr int kPer = kVec4 ? 4 : 1;
  for (int k = kPer * threadIdx.x; k < width; k += kPer * kThreads) {
    int j = k / s.c, ch = k - j * s.c;
    if constexpr (kVec4) {
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        v[e] = value(j, ch);
        if (++ch == s.c) ch = 0, ++j;
      }
      *reinterpret_cast<float4*>(out + k) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      out[k] = value(j, ch);
    }
  }
}

}  // namespace

void input_transform(const InputTransformShape& s, const uint8_t* x, const int32_t* crops,
                     const uint8_t* flips, const float* mean, float scale, float* y,
                     cudaStream_t stream) {
  const std::string what = fmt::format("input_transform ({}x{}x{}x{}x{} -> crop {}x{})", s.n, s.d,
                                       s.h, s.w, s.c, s.out_h, s.out_w);
  CU3D_CHECK(s.out_h <= s.h && s.out_w <= s.w, "{}: the crop is larger than the frames", what);
  const int64_t rows = int64_t(s.n) * s.d * s.out_h;
  CU3D_CHECK(rows < (int64_t(1) << 31) && int64_t(s.out_w) * s.c < (int64_t(1) << 31) &&
                 int64_t(s.w) * s.c < (int64_t(1) << 31),
             "{}: too large for 32-bit row indices", what);
  if (rows == 0) return;
  const bool vec4 = (s.out_w * s.c) % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  if (vec4) {
    input_transform_rows<true>
        <<<unsigned(rows), kThreads, 0, stream>>>(s, x, crops, flips, mean, scale, y);
  } else {
    input_transform_rows<false>
        <<<unsigned(rows), kThreads, 0, stream>>>(s, x, crops, flips, mean, scale, y);
  }
  check_launch(what);
}

}  // namespace cu3d::cuda
