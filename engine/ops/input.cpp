#include "engine/ops/input.h"

#include <limits>

#include "engine/dispatch.h"
#include "kernels/cpu/input_transform.h"
#ifdef CU3D_CUDA
#include "engine/compute.h"
#include "kernels/cuda/input_transform.cuh"
#include "kernels/cuda/runtime.h"
#endif

namespace cu3d {
namespace {

constexpr const char* kOp = "normalize_clips";

// The kernels' shape: the whole frame is the crop.
cpu::InputTransformShape transform_shape(const Tensor& clips) {
  for (int axis = 0; axis < 5; ++axis)
    CU3D_CHECK(clips.size(axis) <= std::numeric_limits<int>::max(),
               "{}: clips {} has an axis too long for the kernel's int indices", kOp, clips.str());
  const auto dim = [&](int axis) { return int(clips.size(axis)); };
  return {.n = dim(0),
          .d = dim(1),
          .h = dim(2),
          .w = dim(3),
          .c = dim(4),
          .out_h = dim(2),
          .out_w = dim(3)};
}

void normalize_on_cpu(const cpu::InputTransformShape& s, const Tensor& clips,
                      const std::vector<float>& mean, float scale, const Tensor& y) {
  const std::vector<int32_t> crops(size_t(2) * s.n, 0);
  const std::vector<uint8_t> flips(size_t(s.n), 0);
  cpu::input_transform<float>(s, clips.data<uint8_t>(), crops.data(), flips.data(),
                              mean.empty() ? nullptr : mean.data(), scale, y.data<float>());
}

#ifdef CU3D_CUDA
// The kernel reads its crop offsets, flips and mean from device memory: zeros for the first two
// and a copy of `mean`, all enqueued on the compute stream ahead of it. (A pageable host source
// is staged by cudaMemcpyAsync before it returns, so `mean` need not outlive the call.)
void normalize_on_cuda(const cpu::InputTransformShape& s, const Tensor& clips,
                       const std::vector<float>& mean, float scale, const Tensor& y) {
  cudaStream_t stream = compute_stream();
  const Tensor crops = Tensor::empty({2 * int64_t(s.n)}, DType::i32, clips.device());
  const Tensor flips = Tensor::empty({int64_t(s.n)}, DType::u8, clips.device());
  CU3D_CUDA_CHECK(cudaMemsetAsync(crops.raw_data(), 0, crops.nbytes(), stream));
  CU3D_CUDA_CHECK(cudaMemsetAsync(flips.raw_data(), 0, flips.nbytes(), stream));
  Tensor device_mean;
  if (!mean.empty()) {
    device_mean = Tensor::empty({int64_t(mean.size())}, DType::f32, clips.device());
    CU3D_CUDA_CHECK(cudaMemcpyAsync(device_mean.raw_data(), mean.data(), device_mean.nbytes(),
                                    cudaMemcpyHostToDevice, stream));
  }
  cuda::input_transform(s, clips.data<uint8_t>(), crops.data<int32_t>(), flips.data<uint8_t>(),
                        mean.empty() ? nullptr : device_mean.data<float>(), scale, y.data<float>(),
                        stream);
}
#endif

}  // namespace

Tensor normalize_clips(const Tensor& clips, const std::vector<float>& mean, float scale) {
  check_dims(kOp, "clips (N, D, H, W, C)", clips, 5);
  CU3D_CHECK(clips.dtype() == DType::u8, "{}: clips must be u8 pixels, got {}", kOp, clips.str());
  CU3D_CHECK(mean.empty() || int64_t(mean.size()) == clips.size(4),
             "{}: mean has {} values but clips {} have {} channels; give one per channel or none",
             kOp, mean.size(), clips.str(), clips.size(4));
  const cpu::InputTransformShape s = transform_shape(clips);
  Tensor y = Tensor::empty(clips.shape(), DType::f32, clips.device());
  if (clips.device().is_cuda()) {
    CU3D_CUDA_CALL(kOp, normalize_on_cuda(s, clips, mean, scale, y));
    return y;
  }
  normalize_on_cpu(s, clips, mean, scale, y);
  return y;
}

}  // namespace cu3d
