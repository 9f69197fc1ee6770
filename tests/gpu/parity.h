// The GPU parity harness (ggml's test-backend-ops, in spirit): every (op, shape, precision,
// backend) is one ParityCase. Running a case draws fresh random inputs, computes the CPU
// reference in double, runs the GPU op into NaN-poisoned outputs, and returns
// ||out - ref|| / ||ref|| for each output; the suite checks it against the precision's
// tolerance. An op family contributes its cases through one function listed in
// parity_test.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/precision.h"

namespace cu3d::parity {

// ||out - ref|| / ||ref|| by precision (METHOD.md's ranges): fp32 sums in a different order
// than the reference (~sqrt(terms) * 6e-8); tf32 and bf16 round each operand to 11 and 8
// significant bits (relative 2.4e-4 and 2e-3 per operand, averaging down over the sums).
inline double tolerance(Precision p) {
  switch (p) {
    case Precision::fp32:
      return 1e-5;
    case Precision::tf32:
      return 1e-3;
    case Precision::bf16:
      return 1e-2;
  }
  return 0;
}

struct Compared {
  std::string output;
  double rel_error;  // NaN when some element was not written or is not finite
};

struct ParityCase {
  std::string name;  // op/shape/precision/backend, a valid gtest name after sanitizing
  double tolerance;
  std::function<std::vector<Compared>(std::mt19937_64& rng, cudaStream_t stream)> run;
  // Whether this device and build can run the kernel under test (the reason when not; e.g.
  // cuda::wgmma_available for conv version 5); unset: any GPU. A case whose kernel would silently
  // fall back to another is skipped instead.
  std::function<bool(std::string* why)> available = {};
};

// gtest prints a parameter with this instead of its bytes.
inline void PrintTo(const ParityCase& c, std::ostream* os) {
  *os << c.name;
}

// Device memory for one array, freed on scope exit; NaN-poisoned on request. Uploads and poisoning
// end with a device-wide synchronize: cudaMemcpy from pageable memory and cudaMemset run on the
// legacy default stream, which a non-blocking stream (cuda::Stream) does not wait for. Without
// it the kernel under test could read half-copied inputs or see its output poisoned after it
// wrote it (seen on an H200 with four test processes sharing the GPU).
class DeviceArray {
 public:
  explicit DeviceArray(int64_t count) : count_(count) {
    CU3D_CUDA_CHECK(cudaMalloc(&ptr_, sizeof(float) * std::max<int64_t>(count, 1)));
  }
  explicit DeviceArray(const std::vector<float>& host) : DeviceArray(int64_t(host.size())) {
    CU3D_CUDA_CHECK(
        cudaMemcpy(ptr_, host.data(), sizeof(float) * host.size(), cudaMemcpyHostToDevice));
    CU3D_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  float* get() const { return ptr_; }
  // Every byte 0xFF: a NaN in every float, so an element the kernel skips fails the check.
  void poison() {
    CU3D_CUDA_CHECK(cudaMemset(ptr_, 0xFF, sizeof(float) * count_));
    CU3D_CUDA_CHECK(cudaDeviceSynchronize());
  }
  std::vector<float> download() const {
    std::vector<float> host(count_);
    CU3D_CUDA_CHECK(cudaMemcpy(host.data(), ptr_, sizeof(float) * count_, cudaMemcpyDeviceToHost));
    return host;
  }

 private:
  float* ptr_ = nullptr;
  int64_t count_;
};

// A host vector of any element type copied to the device (labels, uint8 frames, crops).
template <class T>
class DeviceCopy {
 public:
  explicit DeviceCopy(const std::vector<T>& host) {
    CU3D_CUDA_CHECK(cudaMalloc(&ptr_, sizeof(T) * std::max<size_t>(host.size(), 1)));
    CU3D_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), sizeof(T) * host.size(), cudaMemcpyHostToDevice));
    CU3D_CUDA_CHECK(cudaDeviceSynchronize());  // as DeviceArray's
  }
  ~DeviceCopy() { cudaFree(ptr_); }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  const T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

// Uniform in [lo, hi): never zeros (METHOD.md).
inline std::vector<float> random_floats(int64_t count, std::mt19937_64& rng, float lo = -1.f,
                                        float hi = 1.f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(count);
  for (float& e : v)
    e = dist(rng);
  return v;
}

inline std::vector<double> to_double(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

// ||out - ref|| / ||ref||, NaN if any output is NaN or infinite.
inline Compared compare(const std::string& output, const std::vector<float>& got,
                        const std::vector<double>& ref) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return {output, std::nan("")};
    diff += (got[i] - ref[i]) * (got[i] - ref[i]);
    norm += ref[i] * ref[i];
  }
  return {output, std::sqrt(diff) / std::max(std::sqrt(norm), 1e-300)};
}

// The op families; each returns its cases (defined in parity_<family>.cpp).
std::vector<ParityCase> conv3d_cases();
std::vector<ParityCase> op_cases();     // pool, activations, dropout, softmax(-xent), norms, Adam
std::vector<ParityCase> dense_cases();  // cuBLASLt dense
std::vector<ParityCase> fused_cases();  // conv + bias + ReLU + pool, conv + bias + LN statistics

}  // namespace cu3d::parity
