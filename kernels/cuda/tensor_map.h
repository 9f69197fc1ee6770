// Tensor maps for Hopper's tensor memory accelerator (TMA): what a kernel hands a bulk tensor
// copy (ptx::tma_load_im2col_5d, ptx::tma_load_tile_2d) so that one thread can move a whole tile
// between global and shared memory. Host code; version 7 of the conv forward
// (conv3d_wgmma_tma.cuh) is the user.
//
// A map is 128 opaque bytes that the driver encodes (cuTensorMapEncodeIm2col / ...Tiled) and
// the kernel takes by value as a `const __grid_constant__` parameter: the TMA reads it through
// its address. Both kinds here write 128-byte rows into shared memory with the 128-byte swizzle
// (16-byte chunk j of row i lands at chunk j ^ (i % 8) of a 1024-byte aligned box), which is the
// layout the wgmma kernels' stages already have (conv3d_wgmma_layout.h), and fill zeros where the
// box reaches outside the tensor: the conv's padding, and rows past the end of the GEMM.
//
// The host emulation (tests/emulation) links its own definitions of the two encoders, which
// record the specification for its model of the copies.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/shapes.h"

namespace cu3d::cuda {

// The bytes of a CUtensorMap (cuda.h): 128, aligned to 64.
struct alignas(64) TensorMap {
  uint64_t opaque[16];
};

// An im2col map of an NDHWC tensor (PTX ISA, "Tensor copy: im2col mode"). A load names the
// starting pixel (c, w, h, d, n) and a filter offset (ow, oh, od); it walks `pixels` positions
// of the bounding box in w, then h, then d, then n order, starting there, and copies
// `channels` channels from c of the pixel at each position plus the offset, or zeros outside the
// tensor. The box spans [lower, size - 1 + upper] in each of d, h, w: for a stride-1 conv with
// padding pad_before/pad_after and kernel size k, lower = -pad_before and
// upper = pad_after - (k - 1) make its positions the conv's output positions (shifted by
// -pad_before), so row i of a load from output position m0 holds A row m0 + i of the implicit
// GEMM for the tap given as the offset.
struct Im2colMapSpec {
  const void* base = nullptr;  // 16-byte aligned
  int element_bytes = 2;       // 2 (bf16) or 4 (fp32, tf32)
  int n = 1, d = 1, h = 1, w = 1, c = 1;
  Dims3 lower, upper;  // each within [-16, 15] (what a 5-D map holds)
  int channels = 64;   // per pixel: channels * element_bytes == 128, one swizzled row
  int pixels = 256;    // per load: the rows of a tile, at most 256
};

// A tiled map of a row-major `rows` x `cols` matrix: a load names the element (col, row) of the
// box's first element and copies box_rows rows of box_cols elements, zeros outside the matrix.
struct TiledMapSpec {
  const void* base = nullptr;  // 16-byte aligned, rows 16-byte aligned
  int element_bytes = 2;
  int64_t rows = 1, cols = 1;
  int box_rows = 128, box_cols = 64;  // box_cols * element_bytes == 128
};

// The encoded maps. `what` names the op and shape in the error a rejected specification throws.
TensorMap encode_im2col_map(const Im2colMapSpec& spec, const std::string& what);
TensorMap encode_tiled_map(const TiledMapSpec& spec, const std::string& what);

// The maps of a stride-1 conv `s` as the implicit GEMM reads it: x (NDHWC, `element_bytes` per
// value) by loads of `pixels` rows of one 128-byte stage row each, for the taps given as
// offsets; the filters, (k, taps * c) row-major, by boxes of `filters` rows of one stage row.
// (Inline: the host emulation links its own encoders, not tensor_map.cpp.)
inline Im2colMapSpec conv_input_map(const Conv3dShape& s, const void* x, int element_bytes,
                                    int pixels) {
  Im2colMapSpec a;
  a.base = x;
  a.element_bytes = element_bytes;
  a.n = s.n, a.d = s.in.d, a.h = s.in.h, a.w = s.in.w, a.c = s.c;
  a.lower = {-s.pad_before.d, -s.pad_before.h, -s.pad_before.w};
  a.upper = {s.pad_after.d - (s.kernel.d - 1), s.pad_after.h - (s.kernel.h - 1),
             s.pad_after.w - (s.kernel.w - 1)};
  a.channels = 128 / element_bytes;
  a.pixels = pixels;
  return a;
}
inline TiledMapSpec conv_filter_map(const Conv3dShape& s, const void* w, int element_bytes,
                                    int filters) {
  TiledMapSpec b;
  b.base = w;
  b.element_bytes = element_bytes;
  b.rows = s.k;
  b.cols = int64_t(s.kernel.d) * s.kernel.h * s.kernel.w * s.c;
  b.box_rows = filters;
  b.box_cols = 128 / element_bytes;
  return b;
}

}  // namespace cu3d::cuda
