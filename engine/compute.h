// Run-time compute choices, set once from the command line and printed in the run's log:
//   precision     of the matrix ops on CUDA (fp32 FFMA, tf32 or bf16 tensor cores; fp32 storage)
//   backends      per op that cuDNN also has (conv, pool, activation, softmax, batch norm):
//                 cu3d (hand-written kernels), cudnn, or auto: time both once per shape (and
//                 pass), keep the faster (like cudnn.benchmark), and say which won
//   fuse          whether Sequential runs conv -> [layer norm ->] ReLU [-> max-pool] as one
//                 fused op (on by default; `--no-fuse` keeps the separate ops;
//                 engine/ops/conv_block.h)
//   pipelined conv  whether cu3d's conv runs its version 3 kernels (forward and stride-1
//                 bwd-data, tf32/bf16; docs/kernels/conv3d_cuda.md) where they apply. On by
//                 default since they passed the GPU suite; `--no-pipelined-conv` runs version 2.
//   pipelined bwd-filter  whether bwd-filter runs version 3 as well (bf16). On by default since
//                 it passed the GPU suite (H200, session 7): 2.3-2.7x version 2 on conv2a-conv5b.
//   wide conv     whether the forward and bwd-data run version 4 (the 256 x 128 tile) where it
//                 applies. Off: it passed the GPU suite, but version 5 is faster on every layer.
//   wgmma conv    whether they run version 5 (version 4's tile on Hopper's wgmma) where it
//                 applies (sm_90a builds on compute capability 9.0; version 3 elsewhere); before
//                 wide conv. On by default since it passed the GPU suite (H200, session 7):
//                 1.35-1.8x version 3's forward in bf16, 1.7-2.1x in tf32 (conv2a-conv5b).
// and the CUDA stream that ops run on. The CPU backend always computes in the tensor's dtype.
#pragma once

#include <array>
#include <functional>
#include <string>
#include <string_view>

#include "kernels/precision.h"
#include "kernels/shapes.h"
#ifdef CU3D_CUDA
#include <cuda_runtime.h>

#include "kernels/cuda/conv3d.cuh"
#endif

namespace cu3d {

// Where an op runs on CUDA: cu3d's kernels, cuDNN's (kernels/cudnn/), or auto_select: both
// timed on the first call of each shape, the faster kept and named on stdout.
enum class Backend { cu3d, cudnn, auto_select };

Backend parse_backend(std::string_view name);  // "cu3d", "cudnn", "auto"
const char* to_string(Backend backend);

// The ops that cuDNN also computes, each with its own backend. conv covers the fused blocks:
// with cuDNN, conv + bias + ReLU is its fused call, and the blocks cuDNN has no fusion for run
// as its separate ops. Not here: leaky ReLU, dropout, layer norm and softmax + cross-entropy,
// which cuDNN's API lacks (or computes with a mask of its own: dropout), and dense layers
// (cuBLASLt).
enum class BackendOp { conv, pool, activation, softmax, batch_norm };
inline constexpr BackendOp kBackendOps[] = {BackendOp::conv, BackendOp::pool, BackendOp::activation,
                                            BackendOp::softmax, BackendOp::batch_norm};
const char* to_string(BackendOp op);  // "conv", "pool", "activation", "softmax", "batch_norm"

// The backend of each op. Defaults: auto for the conv, whose faster backend depends on the layer
// and precision; cu3d for the memory-bound ops, whose kernels reach the copy bandwidth
// (docs/BENCHMARKS.md: pooling 1.3-22x cuDNN's on an H100) without auto's first-call timing.
struct OpBackends {
  std::array<Backend, std::size(kBackendOps)> of = {Backend::auto_select, Backend::cu3d,
                                                    Backend::cu3d, Backend::cu3d, Backend::cu3d};
  Backend& operator[](BackendOp op) { return of[size_t(op)]; }
  Backend operator[](BackendOp op) const { return of[size_t(op)]; }
  bool operator==(const OpBackends&) const = default;

  static OpBackends all(Backend backend);
};

// The command line's --backend: comma-separated items applied in order to the defaults, a
// backend for every op ("cudnn") or op=backend for one ("pool=auto"): "cudnn,conv=auto". Errors
// name the item and what it may be.
OpBackends parse_backends(std::string_view spec);

struct ComputeOptions {
  Precision precision = Precision::fp32;
  OpBackends backends;
  bool verbose = true;         // print each auto-selection
  bool fuse = true;            // layers run conv + ReLU (+ max-pool) as one op
  bool pipelined_conv = true;  // cu3d's conv kernels: version 3 where it applies, else version 2
  bool pipelined_bwd_filter = true;  // and bwd-filter's version 3 (with pipelined_conv)
  // and in tf32 too, not version 2 (with both); off until it has run on a GPU.
  bool tf32_pipelined_bwd_filter = false;
  bool wide_conv = false;      // and version 4 for the forward and bwd-data (likewise)
  bool wgmma_conv = true;      // or version 5 for them (likewise; before wide_conv)
  bool wgmma_ws_conv = false;  // or version 6, version 5 warp-specialized (before both)
  bool tma_conv = true;  // or version 7, version 6 fed by the TMA (before all three; stride 1)
  // or version 8, version 7 in clusters of two blocks sharing an operand tile (before all four;
  // where version 7 applies); off until it has run on a GPU.
  bool cluster_conv = false;
  // fp32 convs on versions 5-8 as three tf32 products (3xTF32, kernels/cuda/conv3d.cuh), and
  // bwd-filter on its version 3 so (with pipelined_bwd_filter), rather than on version 2's FFMA;
  // off until it has run on a GPU.
  bool fp32_tensor_cores = false;
  // fp32 convs (the forward and stride-1 bwd-data) on version 3's FFMA form where it applies
  // rather than version 2 (with pipelined_conv; 3xTF32 before it); off until it has run on a GPU.
  bool fp32_pipelined_conv = false;
  // The per-sample layer norm held in the shared memory of a team of co-resident blocks, each
  // sample read from DRAM once (kernels/cuda/layer_norm.cuh, SampleNormPath::automatic), rather
  // than the pipelined kernels; off until it has run on a GPU.
  bool resident_layer_norm = false;
};

ComputeOptions& compute_options();  // process-wide
std::string describe_compute_options();
// The CPU backend's threads and BLAS kernels: "2 OpenMP threads, OpenBLAS SkylakeX kernels".
std::string describe_cpu_compute();
// The CUDA backend: versions, the architectures built, device 0 or why there is none; or that
// the build has no CUDA backend.
std::string describe_cuda_compute();

#ifdef CU3D_CUDA
// The stream every engine op enqueues on (the legacy default stream unless set).
cudaStream_t compute_stream();
void set_compute_stream(cudaStream_t stream);

// The cu3d conv kernel that compute_options() asks for (pipelined_conv, cluster_conv, tma_conv,
// wgmma_ws_conv, wgmma_conv, wide_conv; in fp32 version 2 unless fp32_tensor_cores, or
// fp32_pipelined_conv: version 3's FFMA form).
cuda::ConvKernel cu3d_conv_kernel();
// And for bwd-filter (pipelined_conv and pipelined_bwd_filter; in tf32 also
// tf32_pipelined_bwd_filter; in fp32 also fp32_tensor_cores, which runs it as 3xTF32).
cuda::ConvKernel cu3d_bwd_filter_kernel();

// The backend that runs a call of `op`: the configured one; cu3d where cuDNN cannot run the
// call (`cudnn_runs` false); with auto_select the faster of `time_cu3d` and `time_cudnn`, timed
// (median of three after a warm-up) the first time the call is seen, and printed. `what()`
// names the call (the op, pass and shape, as the printed line shows it) and `key_extra()` adds to
// it whatever else changes the winner (cu3d's kernel versions): both are asked only under
// auto_select, so that a configured backend costs no formatting per call. Timing runs the
// candidates for real, so they must be re-runnable: their outputs are overwritten by the run
// that follows, and they update no state (a batch norm times without its running statistics).
using Describe = std::function<std::string()>;
Backend choose_backend(BackendOp op, const Describe& what, bool cudnn_runs,
                       const std::function<void()>& time_cu3d,
                       const std::function<void()>& time_cudnn, const Describe& key_extra = {});

// Runs a re-runnable call on the backend choose_backend picks (the same closures time it).
void run_on_backend(BackendOp op, const Describe& what, bool cudnn_runs,
                    const std::function<void()>& with_cu3d, const std::function<void()>& with_cudnn,
                    const Describe& key_extra = {});

// The three conv passes on device pointers, through the backend chosen by compute_options().
// With auto_select, the first call for a (pass, shape, precision, cu3d kernel versions) times
// both backends and remembers the faster.
void conv3d_fwd_device(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                       float* y);
// relu(conv(x, w) + bias): on cu3d its fused kernel, on cuDNN cudnnConvolutionBiasActivationForward
// (kernels/cudnn/conv3d.h); the backend is the forward's (auto times the plain forward).
void conv3d_fwd_bias_relu_device(const Conv3dShape& s, const float* x, const float* w,
                                 const float* bias, float* y);
void conv3d_bwd_data_device(const Conv3dShape& s, const float* dy, const float* w, float* dx);
void conv3d_bwd_filter_device(const Conv3dShape& s, const float* x, const float* dy, float* dw,
                              float* dbias);

// The backend conv3d_fwd_device runs for `s`: the configured one, or with auto_select the one
// timed faster. A shape that auto_select has not timed yet is timed now on (x, w, bias), into
// the buffer of s.output_size() floats that `scratch_y()` returns (called only then).
Backend conv3d_fwd_backend(const Conv3dShape& s, const float* x, const float* w, const float* bias,
                           const std::function<float*()>& scratch_y);
#endif

}  // namespace cu3d
