// One training step through the engine, as `cu3d train` runs it: forward, softmax +
// cross-entropy, backward (the tape), one Adam step, on a model moved to the GPU with
// Module::to. Per model (c3d, c3d-ln at 16x112x112, keras3d at its own input size), precision,
// conv backend and fusion (compute_options()): train/<model>/<precision>/<backend>/fused runs
// conv -> [layer norm ->] ReLU [-> max-pool] as fused blocks (the trainer's default),
// .../unfused as the separate ops (`cu3d train --no-fuse`). Backend cu3d runs cu3d's conv on
// version 3 where it applies (the default); the suffixes _v2, _v3f and _v4 pick other kernel
// versions (ConvKernels below).
//   cu3d_bench_gpu --benchmark_filter=train/
// Counters: ms/step (median), clips/s, MFU (model FLOPs, 3 x 2 x forward MACs per clip, over
// the measured matrix peak of the precision), and the stream-ordered pool's high-water marks
// during the timed steps: peak_used_GiB (memory in live allocations) and peak_reserved_GiB
// (what the pool took from the driver). Inputs are random clips already on the GPU: the loader
// and the input transform are benchmarked on their own.
#include <cstdint>
#include <string>

#include "bench/gpu/common.h"
#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/ops/loss.h"
#include "engine/optim/optimizer.h"
#include "engine/profile_scope.h"
#include "engine/rng.h"
#include "layers/models.h"

namespace cu3d::bench {
namespace {

constexpr int kTrainIterations = 10;
constexpr int kClasses = 101;

// Unfused rows are the fused rows' comparison, not a headline of their own: at bf16 only, the
// fastest precision, so that the training part stays within its time limit (scripts/bench.sh,
// docs/BENCHMARKS.md).
constexpr Precision kUnfusedPrecision = Precision::bf16;

cudaMemPool_t default_pool() {
  int device = 0;
  CU3D_CUDA_CHECK(cudaGetDevice(&device));
  cudaMemPool_t pool;
  CU3D_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
  return pool;
}

// Sets both high-water marks to the pool's current use.
void reset_pool_peaks(cudaMemPool_t pool) {
  std::uint64_t zero = 0;
  CU3D_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero));
  CU3D_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &zero));
}

double pool_gib(cudaMemPool_t pool, cudaMemPoolAttr attr) {
  std::uint64_t bytes = 0;
  CU3D_CUDA_CHECK(cudaMemPoolGetAttribute(pool, attr, &bytes));
  return double(bytes) / double(1 << 30);
}

// Random clips (N, D, H, W, C) in [-1, 1) and labels, on the GPU.
struct Batch {
  Tensor clips, labels;
  Batch(const Shape& clip, int n, Generator& gen) {
    Shape shape{n};
    shape.insert(shape.end(), clip.begin(), clip.end());
    clips = Tensor::uniform(shape, -1, 1, gen).to(Device::cuda());
    std::vector<int32_t> y(n);
    for (int i = 0; i < n; ++i)
      y[i] = i % kClasses;
    labels = Tensor::from_vector(y, {n}).to(Device::cuda());
  }
};

// The phases open NVTX ranges (step/forward, step/backward, step/optimizer) around the layers'
// own (conv3a/fwd, conv3a/bwd), so a profile of this benchmark reads like the model
// (docs/PROFILING.md).
void train_step(Module& model, Adam& adam, const Batch& batch) {
  adam.zero_grad();
  Tensor loss;
  {
    const ProfileRange range("step/forward");
    loss = softmax_cross_entropy(model(batch.clips), batch.labels);
  }
  {
    const ProfileRange range("step/backward");
    autograd::backward(loss);
  }
  const ProfileRange range("step/optimizer");
  adam.step();
}

// Which of cu3d's conv kernels the engine runs: its defaults (the unsuffixed rows: since session
// 14, version 7 for the forward and bwd-data where it applies, else version 5, and bwd-filter's
// version 3, on a Hopper GPU with an sm_90a build), version 3 where it applies (the "_v3" rows,
// the unsuffixed rows before session 14), version 2 throughout (the "_v2" rows), version 3 with
// its backward-filter as well (the "_v3f" rows), or that and version 4, 5 or 6 (version 5
// warp-specialized) for the forward and bwd-data (the "_v4", "_v5" and "_v6" rows), or the
// defaults with version 8 (version 7 in clusters of two) where it applies (the "_v8" rows) or
// with fp32's forward and bwd-data as three tf32 products (the "_3xtf32" rows) or on version 3's
// FFMA form (the "_ffma3" rows), or with bwd-filter's version 3 in tf32 too (the "_tf32f" rows).
enum class ConvKernels {
  defaults,
  v3,
  v2,
  v3_with_bwd_filter,
  v4,
  v5,
  v6,
  v8,
  fp32_3xtf32,
  fp32_ffma3,
  tf32_bwd_filter
};

// Sets the conv kernel switches of `options` for `kernels`.
void select(ComputeOptions& options, ConvKernels kernels) {
  const ComputeOptions defaults;
  options.fp32_tensor_cores = kernels == ConvKernels::fp32_3xtf32;
  options.fp32_pipelined_conv = kernels == ConvKernels::fp32_ffma3;
  options.cluster_conv = kernels == ConvKernels::v8;
  options.tf32_pipelined_bwd_filter = kernels == ConvKernels::tf32_bwd_filter;
  if (kernels == ConvKernels::defaults || kernels == ConvKernels::fp32_3xtf32 ||
      kernels == ConvKernels::fp32_ffma3 || kernels == ConvKernels::v8 ||
      kernels == ConvKernels::tf32_bwd_filter) {
    options.pipelined_conv = defaults.pipelined_conv;
    options.pipelined_bwd_filter = defaults.pipelined_bwd_filter;
    options.wide_conv = defaults.wide_conv;
    options.wgmma_conv = defaults.wgmma_conv;
    options.wgmma_ws_conv = defaults.wgmma_ws_conv;
    options.tma_conv = defaults.tma_conv;
    return;
  }
  options.pipelined_conv = kernels != ConvKernels::v2;
  options.pipelined_bwd_filter = kernels != ConvKernels::v2 && kernels != ConvKernels::v3;
  options.wide_conv = kernels == ConvKernels::v4;
  options.wgmma_conv = kernels == ConvKernels::v5;
  options.wgmma_ws_conv = kernels == ConvKernels::v6;
  options.tma_conv = false;
}

// `resident_ln`: the per-sample layer norm on its kernels resident in shared memory (the
// "_resident_ln" rows; the engine's default is the pipelined kernels until they have run on a GPU).
void register_train(const std::string& name, Precision precision, Backend backend, bool fuse,
                    ConvKernels kernels = ConvKernels::defaults, bool resident_ln = false) {
  const char* suffix = kernels == ConvKernels::v3                   ? "_v3"
                       : kernels == ConvKernels::v2                 ? "_v2"
                       : kernels == ConvKernels::v3_with_bwd_filter ? "_v3f"
                       : kernels == ConvKernels::v4                 ? "_v4"
                       : kernels == ConvKernels::v5                 ? "_v5"
                       : kernels == ConvKernels::v6                 ? "_v6"
                       : kernels == ConvKernels::v8                 ? "_v8"
                       : kernels == ConvKernels::fp32_3xtf32        ? "_3xtf32"
                       : kernels == ConvKernels::fp32_ffma3         ? "_ffma3"
                       : kernels == ConvKernels::tf32_bwd_filter    ? "_tf32f"
                                                                    : "";
  const std::string label = "train/" + name + "/" + to_string(precision) + "/" +
                            cu3d::to_string(backend) + suffix +
                            (resident_ln ? "_resident_ln" : "") + (fuse ? "/fused" : "/unfused");
  benchmark::RegisterBenchmark(
      label.c_str(),
      [=](benchmark::State& state) {
        guarded(state, [&] {
          ComputeOptions& options = compute_options();
          options.precision = precision;
          options.backends = OpBackends::all(backend);
          options.fuse = fuse;
          select(options, kernels);
          options.resident_layer_norm = resident_ln;
          const ModelConfig config = preset_config(name);
          const ModelSummary summary = summarize_model(config, kClasses);
          auto model = build_model(config, kClasses);
          model->to(Device::cuda());
          Adam adam(model->named_parameters(), AdamOptions{.lr = 1e-4});
          Generator gen(7);
          const Batch batch(config_input_shape(config), bench::batch(), gen);
          // The pool keeps what earlier benchmarks freed: return it, so that the reserved
          // high-water mark is this model's alone.
          const cudaMemPool_t pool = default_pool();
          CU3D_CUDA_CHECK(cudaDeviceSynchronize());
          CU3D_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
          // The first step pays for cuDNN's algorithm search and the pool's growth: warm up first.
          train_step(*model, adam, batch);
          CU3D_CUDA_CHECK(cudaStreamSynchronize(compute_stream()));
          reset_pool_peaks(pool);
          const Work work{3 * 2.0 * double(summary.macs) * bench::batch(), 0, precision};
          const double ms = run_timed(state, compute_stream(), work,
                                      [&](int) { train_step(*model, adam, batch); });
          state.counters["clips/s"] = bench::batch() / (ms * 1e-3);
          state.counters["MFU"] = state.counters["roofline"];
          state.counters.erase("roofline");
          state.counters["peak_used_GiB"] = pool_gib(pool, cudaMemPoolAttrUsedMemHigh);
          state.counters["peak_reserved_GiB"] = pool_gib(pool, cudaMemPoolAttrReservedMemHigh);
          state.counters["model_GFLOP_per_clip"] = 3 * 2.0 * double(summary.macs) * 1e-9;
          autograd::clear_tape();
        });
      })
      ->UseManualTime()
      ->Iterations(kTrainIterations)
      ->Unit(benchmark::kMillisecond);
}

bool register_all() {
  for (const char* model : {"c3d", "c3d-ln", "keras3d"})
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
      for (Backend backend : {Backend::cu3d, Backend::cudnn}) {
        register_train(model, p, backend, true);
        if (p == kUnfusedPrecision) register_train(model, p, backend, false);
      }
  // At the precision of the unfused rows: cu3d's conv version 2 throughout, for comparison, and
  // the engine's default backend (auto: each conv pass timed once on cu3d and cuDNN, the faster
  // kept); for the C3Ds, both on the earlier kernels: version 3, with its backward-filter, and
  // with version 4, 5 or 6 as well (versions 5 and 6 where they can run), and the defaults with
  // version 8.
  for (const char* model : {"c3d", "c3d-ln", "keras3d"}) {
    register_train(model, kUnfusedPrecision, Backend::cu3d, true, ConvKernels::v2);
    register_train(model, kUnfusedPrecision, Backend::auto_select, true);
  }
  // The layer-norm C3D with its per-sample layer norm resident in shared memory, against the
  // c3d-ln rows above (the pipelined kernels).
  for (Precision p : {Precision::fp32, Precision::bf16})
    register_train("c3d-ln", p, Backend::cu3d, true, ConvKernels::defaults, true);
  // fp32 on the tensor cores (3xTF32) against the fp32 rows above (version 2's FFMA).
  if (cuda::wgmma_available())
    for (const char* model : {"c3d", "c3d-ln", "keras3d"})
      register_train(model, Precision::fp32, Backend::cu3d, true, ConvKernels::fp32_3xtf32);
  // fp32 on version 3's FFMA form against the fp32 rows above (version 2).
  for (const char* model : {"c3d", "c3d-ln", "keras3d"})
    register_train(model, Precision::fp32, Backend::cu3d, true, ConvKernels::fp32_ffma3);
  // bwd-filter's version 3 in tf32 against the tf32 rows above (its version 2).
  for (const char* model : {"c3d", "c3d-ln"})
    register_train(model, Precision::tf32, Backend::cu3d, true, ConvKernels::tf32_bwd_filter);
  for (const char* model : {"c3d", "c3d-ln"})
    for (Backend backend : {Backend::cu3d, Backend::auto_select})
      for (ConvKernels kernels : {ConvKernels::v3, ConvKernels::v3_with_bwd_filter, ConvKernels::v4,
                                  ConvKernels::v5, ConvKernels::v6, ConvKernels::v8})
        if (kernels == ConvKernels::v3 || kernels == ConvKernels::v3_with_bwd_filter ||
            kernels == ConvKernels::v4 || cuda::wgmma_available())
          register_train(model, kUnfusedPrecision, backend, true, kernels);
  return true;
}

const bool registered = register_all();

}  // namespace
}  // namespace cu3d::bench
