// The emulation's tensor-map encoders (in place of kernels/cuda/tensor_map.cpp, which asks the
// driver): they check what the driver checks of the specifications cu3d passes, and record them
// for the block emulator's model of the bulk tensor copies (block.cpp, tma_load_*).
#include "kernels/cuda/tensor_map.h"

#include <cstdint>

#include "block.h"
#include "kernels/error.h"

namespace cu3d::cuda {
namespace {

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

bool corner_fits(int v) {
  return v >= -16 && v <= 15;
}

}  // namespace

TensorMap encode_im2col_map(const Im2colMapSpec& s, const std::string& what) {
  CU3D_CHECK(aligned16(s.base) && (s.element_bytes == 2 || s.element_bytes == 4) &&
                 int64_t(s.c) * s.element_bytes % 16 == 0,
             "{}: im2col map of a misaligned tensor or of {}-byte elements", what, s.element_bytes);
  CU3D_CHECK(corner_fits(s.lower.d) && corner_fits(s.lower.h) && corner_fits(s.lower.w) &&
                 corner_fits(s.upper.d) && corner_fits(s.upper.h) && corner_fits(s.upper.w),
             "{}: im2col corners outside [-16, 15]", what);
  CU3D_CHECK(s.d - 1 + s.upper.d >= s.lower.d && s.h - 1 + s.upper.h >= s.lower.h &&
                 s.w - 1 + s.upper.w >= s.lower.w,
             "{}: an empty im2col bounding box", what);
  CU3D_CHECK(s.channels * s.element_bytes == 128 && s.pixels >= 1 && s.pixels <= 1024,
             "{}: im2col loads of {} channels x {} pixels (rows of 128 bytes expected)", what,
             s.channels, s.pixels);
  emu::TensorMapRecord record;
  record.im2col = true;
  record.im2col_spec = s;
  return emu::record_tensor_map(record);
}

TensorMap encode_tiled_map(const TiledMapSpec& s, const std::string& what) {
  CU3D_CHECK(aligned16(s.base) && (s.element_bytes == 2 || s.element_bytes == 4) &&
                 s.cols * s.element_bytes % 16 == 0,
             "{}: tiled map of a misaligned matrix or of {}-byte elements", what, s.element_bytes);
  CU3D_CHECK(s.box_cols * s.element_bytes == 128 && s.box_rows >= 1 && s.box_rows <= 256,
             "{}: tiled boxes of {} x {} (rows of 128 bytes, at most 256 expected)", what,
             s.box_rows, s.box_cols);
  emu::TensorMapRecord record;
  record.tiled_spec = s;
  return emu::record_tensor_map(record);
}

}  // namespace cu3d::cuda
