#include "engine/compute.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>

#include <omp.h>

#include "kernels/cpu/blas_core.h"

#ifdef CU3D_CUDA
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/runtime.h"
#include "kernels/cudnn/conv3d.h"
#endif

namespace cu3d {

Backend parse_backend(std::string_view name) {
  if (name == "cu3d") return Backend::cu3d;
  if (name == "cudnn") return Backend::cudnn;
  if (name == "auto") return Backend::auto_select;
  throw Error(fmt::format("unknown backend '{}': use cu3d, cudnn or auto", name));
}

const char* to_string(Backend backend) {
  switch (backend) {
    case Backend::cu3d:
      return "cu3d";
    case Backend::cudnn:
      return "cudnn";
    case Backend::auto_select:
      return "auto";
  }
  return "?";
}

const char* to_string(BackendOp op) {
  switch (op) {
    case BackendOp::conv:
      return "conv";
    case BackendOp::pool:
      return "pool";
    case BackendOp::activation:
      return "activation";
    case BackendOp::softmax:
      return "softmax";
    case BackendOp::batch_norm:
      return "batch_norm";
  }
  return "?";
}

OpBackends OpBackends::all(Backend backend) {
  OpBackends b;
  b.of.fill(backend);
  return b;
}

namespace {

BackendOp parse_backend_op(std::string_view name) {
  for (BackendOp op : kBackendOps)
    if (name == to_string(op)) return op;
  throw Error(fmt::format(
      "unknown op '{}': use conv, pool, activation, softmax or batch_norm (e.g. pool=cudnn)",
      name));
}

}  // namespace

OpBackends parse_backends(std::string_view spec) {
  OpBackends backends;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = std::min(spec.find(',', start), spec.size());
    const std::string_view item = spec.substr(start, comma - start);
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      backends = OpBackends::all(parse_backend(item));
    } else {
      try {
        backends[parse_backend_op(item.substr(0, equals))] = parse_backend(item.substr(equals + 1));
      } catch (const Error& e) {
        throw Error(fmt::format("'{}': {}", item, e.what()));
      }
    }
    start = comma + 1;
  }
  return backends;
}

ComputeOptions& compute_options() {
  static ComputeOptions options;
  return options;
}

std::string describe_compute_options() {
  const ComputeOptions& o = compute_options();
  std::string kernels;
  if (o.pipelined_conv) {
    kernels = " (pipelined conv";
    if (o.cluster_conv) kernels += ", clustered TMA-fed wgmma conv";
    if (o.tma_conv && !o.cluster_conv) kernels += ", TMA-fed wgmma conv";
    if (o.wgmma_ws_conv && !o.tma_conv) kernels += ", warp-specialized wgmma conv";
    if (o.wgmma_conv && !o.wgmma_ws_conv && !o.tma_conv) kernels += ", wgmma conv";
    if (o.wide_conv && !o.wgmma_conv && !o.wgmma_ws_conv && !o.tma_conv) kernels += ", wide conv";
    if (o.fp32_tensor_cores && (o.cluster_conv || o.tma_conv || o.wgmma_ws_conv || o.wgmma_conv))
      kernels += ", fp32 as 3xTF32";
    if (o.fp32_pipelined_conv) kernels += ", pipelined fp32 conv";
    if (o.pipelined_bwd_filter)
      kernels += o.tf32_pipelined_bwd_filter ? ", pipelined bwd-filter (tf32 too)"
                                             : ", pipelined bwd-filter";
    if (o.resident_layer_norm) kernels += ", resident layer norm";
    kernels += ")";
  }
  std::string others;  // the ops whose backend is not the default
  for (BackendOp op : kBackendOps)
    if (op != BackendOp::conv && o.backends[op] != OpBackends{}[op])
      others += fmt::format(", {} backend {}", to_string(op), to_string(o.backends[op]));
  return fmt::format("precision {}, conv backend {}{}{}, fusion {}", to_string(o.precision),
                     to_string(o.backends[BackendOp::conv]), kernels, others,
                     o.fuse ? "on" : "off");
}

std::string describe_cpu_compute() {
  const int threads = omp_get_max_threads();
  return fmt::format("{} OpenMP thread{}, OpenBLAS {} kernels{}", threads, threads == 1 ? "" : "s",
                     cpu::blas_core(),
                     std::getenv("OPENBLAS_CORETYPE") ? " (OPENBLAS_CORETYPE)" : "");
}

std::string describe_cuda_compute() {
#ifdef CU3D_CUDA
  return cuda::describe_cuda();
#else
  return "not built (configure where the CUDA toolkit is installed to build the GPU backend)";
#endif
}

#ifdef CU3D_CUDA
namespace {

cudaStream_t& stream_slot() {
  static cudaStream_t stream = nullptr;
  return stream;
}

// What besides the shape changes which conv backend is faster: the precision and cu3d's kernel
// versions (part of auto_select's cache key).
std::string conv_versions(const ComputeOptions& o) {
  return fmt::format(" v3 {}{}{}{} v4 {} v5 {} v6 {} v7 {} v8 {} 3xtf32 {}", int(o.pipelined_conv),
                     int(o.pipelined_bwd_filter), int(o.tf32_pipelined_bwd_filter),
                     int(o.fp32_pipelined_conv), int(o.wide_conv), int(o.wgmma_conv),
                     int(o.wgmma_ws_conv), int(o.tma_conv), int(o.cluster_conv),
                     int(o.fp32_tensor_cores));
}

// A conv pass as auto_select's line names it.
std::string describe_conv(const char* pass, const Conv3dShape& s, const ComputeOptions& o) {
  return fmt::format(
      "conv3d {} n={} {}x{}x{}x{}->{} kernel {}x{}x{} stride {}x{}x{} pad {}x{}x{}/{}x{}x{} {}",
      pass, s.n, s.in.d, s.in.h, s.in.w, s.c, s.k, s.kernel.d, s.kernel.h, s.kernel.w, s.stride.d,
      s.stride.h, s.stride.w, s.pad_before.d, s.pad_before.h, s.pad_before.w, s.pad_after.d,
      s.pad_after.h, s.pad_after.w, to_string(o.precision));
}

// Median of three timed runs after one warm-up, in milliseconds.
float time_ms(const std::function<void()>& run) {
  cudaStream_t stream = compute_stream();
  run();
  float times[3];
  for (float& t : times) {
    cuda::Event start, stop;
    start.record(stream);
    run();
    stop.record(stream);
    CU3D_CUDA_CHECK(cudaEventSynchronize(stop.get()));
    t = stop.elapsed_ms_since(start);
  }
  std::sort(times, times + 3);
  return times[1];
}

// Runs `pass` with the backend choose_backend picks (cuDNN pads symmetrically only: Keras
// "same" with an even kernel or stride 2 pads more after, and such shapes run on cu3d).
void run_conv(const char* pass, const Conv3dShape& s, const std::function<void()>& with_cu3d,
              const std::function<void()>& with_cudnn) {
  const ComputeOptions& o = compute_options();
  run_on_backend(
      BackendOp::conv, [&] { return describe_conv(pass, s, o); }, s.pad_before == s.pad_after,
      with_cu3d, with_cudnn, [&] { return conv_versions(o); });
}

}  // namespace

Backend choose_backend(BackendOp op, const Describe& what, bool cudnn_runs,
                       const std::function<void()>& time_cu3d,
                       const std::function<void()>& time_cudnn, const Describe& key_extra) {
  const ComputeOptions& o = compute_options();
  const Backend configured = o.backends[op];
  if (!cudnn_runs) return Backend::cu3d;
  if (configured != Backend::auto_select) return configured;
  static std::mutex mutex;
  static std::map<std::string, Backend> chosen;
  std::lock_guard lock(mutex);
  const std::string name = what(), key = key_extra ? name + key_extra() : name;
  if (auto it = chosen.find(key); it != chosen.end()) return it->second;
  const float cu3d_ms = time_ms(time_cu3d), cudnn_ms = time_ms(time_cudnn);
  const Backend backend = cu3d_ms <= cudnn_ms ? Backend::cu3d : Backend::cudnn;
  chosen.emplace(key, backend);
  if (o.verbose)
    std::printf("auto: %s: cu3d %.3f ms, cudnn %.3f ms -> %s\n", name.c_str(), cu3d_ms, cudnn_ms,
                to_string(backend));
  return backend;
}

void run_on_backend(BackendOp op, const Describe& what, bool cudnn_runs,
                    const std::function<void()>& with_cu3d, const std::function<void()>& with_cudnn,
                    const Describe& key_extra) {
  choose_backend(op, what, cudnn_runs, with_cu3d, with_cudnn, key_extra) == Backend::cu3d
      ? with_cu3d()
      : with_cudnn();
}

cudaStream_t compute_stream() {
  return stream_slot();
}

cuda::ConvKernel cu3d_conv_kernel() {
  const ComputeOptions& o = compute_options();
  if (!o.pipelined_conv) return cuda::ConvKernel::implicit_gemm;
  if (o.precision == Precision::fp32 && !o.fp32_tensor_cores)
    return o.fp32_pipelined_conv ? cuda::ConvKernel::pipelined : cuda::ConvKernel::implicit_gemm;
  return o.cluster_conv    ? cuda::ConvKernel::wgmma_cluster
         : o.tma_conv      ? cuda::ConvKernel::wgmma_tma
         : o.wgmma_ws_conv ? cuda::ConvKernel::wgmma_ws
         : o.wgmma_conv    ? cuda::ConvKernel::wgmma
         : o.wide_conv     ? cuda::ConvKernel::wide
                           : cuda::ConvKernel::pipelined;
}
cuda::ConvKernel cu3d_bwd_filter_kernel() {
  const ComputeOptions& o = compute_options();
  const bool v3 = o.pipelined_conv && o.pipelined_bwd_filter &&
                  (o.precision != Precision::tf32 || o.tf32_pipelined_bwd_filter);
  // fp32: 3xTF32 on version 3 with the forward's (a wgmma version asks for it), else FFMA.
  if (o.precision == Precision::fp32)
    return v3 && o.fp32_tensor_cores ? cu3d_conv_kernel() : cuda::ConvKernel::implicit_gemm;
  return v3 ? cuda::ConvKernel::pipelined : cuda::ConvKernel::implicit_gemm;
}

void set_compute_stream(cudaStream_t stream) {
  stream_slot() = stream;
}

void conv3d_fwd_device(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                       float* y) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "fwd", s, [&] { cuda::conv3d_fwd(s, x, w, bias, y, p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_fwd(s, x, w, bias, y, p, stream); });
}

Backend conv3d_fwd_backend(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                           const std::function<float*()>& scratch_y) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  float* y = nullptr;
  auto output = [&] { return y ? y : (y = scratch_y()); };
  const ComputeOptions& o = compute_options();
  return choose_backend(
      BackendOp::conv, [&] { return describe_conv("fwd", s, o); }, s.pad_before == s.pad_after,
      [&] { cuda::conv3d_fwd(s, x, w, bias, output(), p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_fwd(s, x, w, bias, output(), p, stream); },
      [&] { return conv_versions(o); });
}

void conv3d_fwd_bias_relu_device(const Conv3dShape& s, const float* x, const float* w,
                                 const float* bias, float* y) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "fwd", s,
      [&] { cuda::conv3d_fwd_bias_relu(s, x, w, bias, y, p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_fwd_bias_relu(s, x, w, bias, y, p, stream); });
}

void conv3d_bwd_data_device(const Conv3dShape& s, const float* dy, const float* w, float* dx) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "bwd-data", s, [&] { cuda::conv3d_bwd_data(s, dy, w, dx, p, stream, cu3d_conv_kernel()); },
      [&] { cudnn::conv3d_bwd_data(s, dy, w, dx, p, stream); });
}

void conv3d_bwd_filter_device(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                              float* dbias) {
  const Precision p = compute_options().precision;
  cudaStream_t stream = compute_stream();
  run_conv(
      "bwd-filter", s,
      [&] { cuda::conv3d_bwd_filter(s, x, dy, dw, dbias, p, stream, cu3d_bwd_filter_kernel()); },
      [&] { cudnn::conv3d_bwd_filter(s, x, dy, dw, dbias, p, stream); });
}
#endif

}  // namespace cu3d
