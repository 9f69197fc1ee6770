#include "kernels/cuda/input_transform.cuh"

#include <fmt/format.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

constexpr int kThreads = 256;
// A block converts 16 output rows: a C3D row is out_w * c = 336 values, so 1344 float4 stores,
// 5.25 per thread.
constexpr int kRowsPerBlock = 16;

// Where output row (n * d + t) * out_h + i of the batch reads from: the frame row its crop picks
// (null when that lies outside the frame: the row reads zeros), its first column, and the flip.
struct SourceRow {
  const uint8_t* in;
  int x0;
  bool flip;
};

__device__ inline SourceRow source_row(const InputTransformShape& s, const uint8_t* x,
                                       const int32_t* crops, const uint8_t* flips, int row) {
  const int i = row % s.out_h, frame = row / s.out_h, n = frame / s.d;
  const int src_row = crops[2 * n] + i;
  const bool inside = src_row >= 0 && src_row < s.h;
  return {inside ? x + (int64_t(frame) * s.h + src_row) * s.w * s.c : nullptr, crops[2 * n + 1],
          flips[n] != 0};
}

// One block per kRowsPerBlock output rows: each row's source, crop and flip are worked out once,
// into shared memory, and the block's rows are contiguous in the output, so its threads sweep
// them as one coalesced run of stores (value t of the block at output value first_row * width +
// t), reading the input rows (reversed per pixel under a flip) through the cache. With kVec4 (rows
// a multiple of 4 values, 16-byte aligned output) each thread converts 4 consecutive values of a
// row and stores one float4.
// History on an H100 (C3D batch 32, % of the device copy's bandwidth): one thread per element
// with four 64-bit divisions 20 %, one block of 128 threads per row 40 % (38 % on session 7's
// H200: 84 of the 128 threads busy, each with one float4, and 57344 blocks to schedule).
template <bool kVec4>
__global__ void __launch_bounds__(kThreads)
    input_transform_rows(InputTransformShape s, int rows, const uint8_t* x, const int32_t* crops,
                         const uint8_t* flips, const float* mean, float scale, float* y) {
  __shared__ SourceRow source[kRowsPerBlock];
  const int first_row = blockIdx.x * kRowsPerBlock;
  const int count = min(kRowsPerBlock, rows - first_row);
  if (int(threadIdx.x) < count)
    source[threadIdx.x] = source_row(s, x, crops, flips, first_row + threadIdx.x);
  __syncthreads();
  const int width = s.out_w * s.c;
  constexpr int kPer = kVec4 ? 4 : 1;
  const int per_row = width / kPer;
  float* out = y + int64_t(first_row) * width;
#pragma unroll 2
  for (int t = threadIdx.x; t < count * per_row; t += kThreads) {
    const int r = t / per_row;
    const SourceRow src = source[r];
    // Value k of the row: pixel j = k / c, channel ch = k % c.
    auto value = [&](int j, int ch) {
      const int col = src.x0 + (src.flip ? s.out_w - 1 - j : j);
      const float v = src.in && col >= 0 && col < s.w ? float(src.in[col * s.c + ch]) : 0.f;
      return (v - (mean ? __ldg(mean + ch) : 0.f)) * scale;
    };
    const int k = (t - r * per_row) * kPer;
    int j = k / s.c, ch = k - j * s.c;
    if constexpr (kVec4) {
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        v[e] = value(j, ch);
        if (++ch == s.c) ch = 0, ++j;
      }
      *reinterpret_cast<float4*>(out + int64_t(t) * 4) = make_float4(v[0], v[1], v[2], v[3]);
    } else {
      out[t] = value(j, ch);
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
  CU3D_CHECK(int64_t(kRowsPerBlock) * s.out_w * s.c < (int64_t(1) << 31),
             "{}: too large for 32-bit indices within a block", what);
  const unsigned blocks = unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
  const bool vec4 = (s.out_w * s.c) % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
  if (vec4) {
    input_transform_rows<true>
        <<<blocks, kThreads, 0, stream>>>(s, int(rows), x, crops, flips, mean, scale, y);
  } else {
    input_transform_rows<false>
        <<<blocks, kThreads, 0, stream>>>(s, int(rows), x, crops, flips, mean, scale, y);
  }
  check_launch(what);
}

}  // namespace cu3d::cuda
