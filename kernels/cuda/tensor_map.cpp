// The tensor-map encoders of tensor_map.h, through the driver's cuTensorMapEncode* (found at run
// time through the runtime, so the library does not link libcuda itself).
#include "kernels/cuda/tensor_map.h"

#include <cstring>

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "kernels/cuda/runtime.h"

namespace cu3d::cuda {
namespace {

static_assert(sizeof(TensorMap) == sizeof(CUtensorMap) && alignof(TensorMap) >= 64);

// The driver entry point `name` of the CUDA 12.0 ABI, or an error naming it.
void* driver_function(const char* name) {
  void* function = nullptr;
  cudaDriverEntryPointQueryResult found{};
  CU3D_CUDA_CHECK(
      cudaGetDriverEntryPointByVersion(name, &function, 12000, cudaEnableDefault, &found));
  CU3D_CHECK(found == cudaDriverEntryPointSuccess && function,
             "the CUDA driver has no {} (the TMA needs a driver for CUDA 12.0 or later)", name);
  return function;
}

CUtensorMapDataType data_type(int element_bytes, const std::string& what) {
  CU3D_CHECK(element_bytes == 2 || element_bytes == 4,
             "{}: a tensor map of {}-byte elements (2 or 4 expected)", what, element_bytes);
  return element_bytes == 2 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
}

TensorMap to_map(const CUtensorMap& map) {
  TensorMap out;
  std::memcpy(&out, &map, sizeof out);
  return out;
}

// (The driver's own message would need libcuda linked: cuGetErrorString.)
void check_encoded(CUresult status, const char* kind, const std::string& what) {
  CU3D_CHECK(status == CUDA_SUCCESS,
             "{}: the driver rejected the {} tensor map (CUresult {}; 1 is an invalid value)", what,
             kind, int(status));
}

}  // namespace

TensorMap encode_im2col_map(const Im2colMapSpec& s, const std::string& what) {
  static const auto encode = reinterpret_cast<PFN_cuTensorMapEncodeIm2col_v12000>(
      driver_function("cuTensorMapEncodeIm2col"));
  const CUtensorMapDataType type = data_type(s.element_bytes, what);
  // Dimensions innermost first (c, w, h, d, n); strides in bytes of w, h, d and n.
  const cuuint64_t dims[5] = {cuuint64_t(s.c), cuuint64_t(s.w), cuuint64_t(s.h), cuuint64_t(s.d),
                              cuuint64_t(s.n)};
  const cuuint64_t pixel = cuuint64_t(s.c) * s.element_bytes;
  const cuuint64_t strides[4] = {pixel, pixel * s.w, pixel * s.w * s.h, pixel * s.w * s.h * s.d};
  // The corners in the dimensions' order too, w first (as CUTLASS's im2col copies pass them).
  const int lower[3] = {s.lower.w, s.lower.h, s.lower.d};
  const int upper[3] = {s.upper.w, s.upper.h, s.upper.d};
  const cuuint32_t element_strides[5] = {1, 1, 1, 1, 1};
  CUtensorMap map;
  check_encoded(encode(&map, type, 5, const_cast<void*>(s.base), dims, strides, lower, upper,
                       cuuint32_t(s.channels), cuuint32_t(s.pixels), element_strides,
                       CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                       CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                "im2col", what);
  return to_map(map);
}

TensorMap encode_tiled_map(const TiledMapSpec& s, const std::string& what) {
  static const auto encode = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(
      driver_function("cuTensorMapEncodeTiled"));
  const CUtensorMapDataType type = data_type(s.element_bytes, what);
  const cuuint64_t dims[2] = {cuuint64_t(s.cols), cuuint64_t(s.rows)};
  const cuuint64_t strides[1] = {cuuint64_t(s.cols) * s.element_bytes};
  const cuuint32_t box[2] = {cuuint32_t(s.box_cols), cuuint32_t(s.box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  CUtensorMap map;
  check_encoded(encode(&map, type, 2, const_cast<void*>(s.base), dims, strides, box,
                       element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                       CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE),
                "tiled", what);
  return to_map(map);
}

}  // namespace cu3d::cuda
