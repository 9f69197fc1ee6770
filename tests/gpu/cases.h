// The shapes every GPU op is checked (tests/gpu) and timed (bench/gpu) on: C3D's layers at a
// chosen batch, plus small odd shapes that exercise the edges of the tiled kernels (channels
// not a multiple of 4, strides, asymmetric "same" padding, tiles that do not divide).
// Adding a shape here adds it to the parity suite and to the benchmarks at once.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/conv3d.cuh"
#include "kernels/precision.h"
#include "kernels/shapes.h"

namespace cu3d::cases {

// cu3d: version 2; cu3d_pipelined: version 3 (the engine's default: the forward, bwd-data at
// stride 1, bwd-filter in bf16) on the shapes it takes (cuda::conv3d_*_pipelined_supports;
// in fp32 its FFMA form, cuda::conv3d_fwd_pipelined_ffma_supports);
// cu3d_wide: version 4 (the forward and bwd-data, cuda::conv3d_fwd_wide_supports); cu3d_wgmma:
// version 5 (version 4's cases, skipped where cuda::wgmma_available says no); cu3d_wgmma_ws:
// version 6 (likewise); cu3d_wgmma_tma: version 7 (likewise; version 5 where it does not apply,
// e.g. with a stride); cu3d_wgmma_cluster: version 8 (likewise; version 7 where it does not
// apply: an odd number of 128-filter tiles); cu3d_naive: version 1.
enum class Backend {
  cu3d,
  cu3d_pipelined,
  cu3d_wide,
  cu3d_wgmma,
  cu3d_wgmma_ws,
  cu3d_wgmma_tma,
  cu3d_wgmma_cluster,
  cu3d_naive,
  cudnn
};

inline const char* to_string(Backend b) {
  switch (b) {
    case Backend::cu3d:
      return "cu3d";
    case Backend::cu3d_pipelined:
      return "cu3d_pipelined";
    case Backend::cu3d_wide:
      return "cu3d_wide";
    case Backend::cu3d_wgmma:
      return "cu3d_wgmma";
    case Backend::cu3d_wgmma_ws:
      return "cu3d_wgmma_ws";
    case Backend::cu3d_wgmma_tma:
      return "cu3d_wgmma_tma";
    case Backend::cu3d_wgmma_cluster:
      return "cu3d_wgmma_cluster";
    case Backend::cu3d_naive:
      return "cu3d_naive";
    case Backend::cudnn:
      return "cudnn";
  }
  return "?";
}

// The cu3d kernel version a backend asks for (version 2 for cu3d, cu3d_naive and cudnn, which
// run no implicit GEMM of cu3d's).
inline cuda::ConvKernel conv_kernel(Backend b) {
  switch (b) {
    case Backend::cu3d_pipelined:
      return cuda::ConvKernel::pipelined;
    case Backend::cu3d_wide:
      return cuda::ConvKernel::wide;
    case Backend::cu3d_wgmma:
      return cuda::ConvKernel::wgmma;
    case Backend::cu3d_wgmma_ws:
      return cuda::ConvKernel::wgmma_ws;
    case Backend::cu3d_wgmma_tma:
      return cuda::ConvKernel::wgmma_tma;
    case Backend::cu3d_wgmma_cluster:
      return cuda::ConvKernel::wgmma_cluster;
    default:
      return cuda::ConvKernel::implicit_gemm;
  }
}

inline constexpr Precision kPrecisions[] = {Precision::fp32, Precision::tf32, Precision::bf16};

// Whether versions 5-7 run the fp32 forward s as three tf32 products (conv3d_fwd.cu): where
// tf32 takes the tripled shape. Without asking whether this device runs them (the cases that
// need it skip where it does not).
inline bool split_tf32_takes(const Conv3dShape& s) {
  return cuda::conv3d_fwd_wide_supports(cuda::conv3d_split_tf32_shape(s), Precision::tf32);
}

struct ConvLayer {
  std::string name;
  Conv3dShape shape;
  bool real;  // a layer of a model (big: the naive kernels are too slow for it)
};

// C3D (Tran et al. 2015) at 16x112x112 input: every conv 3x3x3, stride 1, padding 1.
inline std::vector<ConvLayer> c3d_conv_layers(int batch) {
  struct Row {
    const char* name;
    Dims3 in;
    int c, k;
  };
  const Row rows[] = {
      {"conv1a", {16, 112, 112}, 3, 64}, {"conv2a", {16, 56, 56}, 64, 128},
      {"conv3a", {8, 28, 28}, 128, 256}, {"conv3b", {8, 28, 28}, 256, 256},
      {"conv4a", {4, 14, 14}, 256, 512}, {"conv4b", {4, 14, 14}, 512, 512},
      {"conv5a", {2, 7, 7}, 512, 512},   {"conv5b", {2, 7, 7}, 512, 512},
  };
  std::vector<ConvLayer> layers;
  for (const Row& r : rows)
    layers.push_back({r.name,
                      Conv3dShape::make(batch, r.in, r.c, r.k, {3, 3, 3}, {1, 1, 1},
                                        Padding::explicit_, {1, 1, 1}),
                      true});
  return layers;
}

// Odd shapes: each names the edge it covers.
inline std::vector<ConvLayer> odd_conv_layers() {
  return {
      {"odd_c3_k5",
       Conv3dShape::make(1, {3, 9, 7}, 3, 5, {3, 3, 3}, {1, 1, 1}, Padding::explicit_, {1, 1, 1}),
       false},
      {"odd_c6_stride2",
       Conv3dShape::make(2, {5, 11, 10}, 6, 7, {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1}),
       false},
      {"odd_same_even_kernel",
       Conv3dShape::make(1, {4, 6, 9}, 8, 12, {2, 2, 4}, {1, 2, 1}, Padding::same), false},
      {"odd_valid_1x5x3",
       Conv3dShape::make(3, {2, 13, 8}, 20, 36, {1, 5, 3}, {1, 1, 2}, Padding::valid), false},
      // Version 3's backward-data (a forward conv from k = 64 channels): the mirrored padding of
      // an even kernel ("same": asymmetric), 40 output channels (a partial tile).
      {"odd_same_even_kernel_k64",
       Conv3dShape::make(1, {4, 6, 9}, 40, 64, {2, 2, 4}, {1, 1, 1}, Padding::same), false},
      // Version 3's partial tiles (180 rows, 70 filters), stride and padding in its gathers.
      {"odd_c64_stride2_k70",
       Conv3dShape::make(2, {5, 11, 10}, 64, 70, {3, 3, 3}, {2, 2, 2}, Padding::explicit_,
                         {1, 1, 1}),
       false},
      // Version 3's backward-filter: two 64-channel column tiles per tap, 136 filters (a
      // partial M tile of 8), a stride, and 1008 positions (two splits, the last stage 48 of 64).
      {"odd_c128_k136_stride1x2x1",
       Conv3dShape::make(2, {4, 14, 18}, 128, 136, {3, 3, 3}, {1, 2, 1}, Padding::explicit_,
                         {1, 1, 1}),
       false},
      // Version 7's im2col loads: stride 1 with an even kernel's asymmetric "same" padding (the
      // bounding box's lower and upper corners differ per dimension), 378 rows (a partial
      // 256-row tile) and 72 filters (a partial N tile); versions 3-6 and bwd-filter's version
      // 3 take it too.
      {"odd_c64_k72_same_even_kernel",
       Conv3dShape::make(2, {3, 9, 7}, 64, 72, {2, 3, 2}, {1, 1, 1}, Padding::same), false},
      {"odd_c132_k130",
       Conv3dShape::make(1, {3, 7, 6}, 132, 130, {3, 3, 3}, {1, 1, 1}, Padding::explicit_,
                         {1, 1, 1}),
       false},
  };
}

// C3D's layers at batch 2, then the odd shapes: every layer the conv suites check.
inline std::vector<ConvLayer> all_conv_layers() {
  std::vector<ConvLayer> layers = c3d_conv_layers(2);
  for (auto& l : odd_conv_layers())
    layers.push_back(std::move(l));
  return layers;
}

}  // namespace cu3d::cases
