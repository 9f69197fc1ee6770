// conv3d on C3D's layers (tests/gpu/cases.h), cu3d against cuDNN (the algorithm cudnnFind*
// picks), for each pass and precision, and the fused blocks against cuDNN's conv plus the
// separate ops they replace.
//   cu3d_bench_gpu --benchmark_filter=conv/ --benchmark_counters_tabular=true
// Names: conv/<layer>/<pass>/<precision>/<backend> and fused/<layer>/<block>/<precision>/<how>.
// FLOPs: 2 * macs per pass. Bytes (the least a pass must move, fp32 in memory): the two
// operands it reads and the one it writes, once each.
#include <functional>
#include <string>
#include <vector>

#include "bench/gpu/c3d_pools.h"
#include "bench/gpu/common.h"
#include "gpu/cases.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/cast.cuh"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cudnn/conv3d.h"

namespace cu3d::bench {
namespace {

using cases::Backend;
using cases::ConvLayer;

constexpr const char* kPasses[] = {"fwd", "bwd_data", "bwd_filter"};
constexpr int kConvIterations = 15;

// One layer's operands: `sets` rotated copies of what the passes read, one copy of what they
// write. Kept between benchmarks of the same layer (they run in registration order), so each
// layer is allocated and filled once.
struct LayerBuffers {
  std::string name;
  int sets = 0;
  std::vector<std::unique_ptr<DeviceBuffer>> x, w, dy;
  std::unique_ptr<DeviceBuffer> bias, y, dx, dw, db;

  explicit LayerBuffers(const ConvLayer& layer) : name(layer.name) {
    const Conv3dShape& s = layer.shape;
    const int64_t set_bytes = 4 * (s.input_size() + s.filter_size() + s.output_size());
    sets = rotation_sets(set_bytes);
    for (int i = 0; i < sets; ++i) {
      x.push_back(std::make_unique<DeviceBuffer>(4 * s.input_size(), 10 + i));
      w.push_back(std::make_unique<DeviceBuffer>(4 * s.filter_size(), 20 + i));
      dy.push_back(std::make_unique<DeviceBuffer>(4 * s.output_size(), 30 + i));
    }
    bias = std::make_unique<DeviceBuffer>(4 * s.k, 40);
    y = std::make_unique<DeviceBuffer>(4 * s.output_size(), 0, Fill::zeros);
    dx = std::make_unique<DeviceBuffer>(4 * s.input_size(), 0, Fill::zeros);
    dw = std::make_unique<DeviceBuffer>(4 * s.filter_size(), 0, Fill::zeros);
    db = std::make_unique<DeviceBuffer>(4 * s.k, 0, Fill::zeros);
  }
};

LayerBuffers& buffers_for(const ConvLayer& layer) {
  static std::unique_ptr<LayerBuffers> current;
  if (!current || current->name != layer.name) {
    current.reset();  // free the previous layer's memory before taking the next
    current = std::make_unique<LayerBuffers>(layer);
  }
  return *current;
}

void conv_pass(const std::string& pass, Backend backend, const Conv3dShape& s,
               const LayerBuffers& b, int i, Precision p) {
  const int r = i % b.sets;
  const float *x = b.x[r]->f(), *w = b.w[r]->f(), *dy = b.dy[r]->f();
  const cudaStream_t st = stream();
  const bool mine = backend != Backend::cudnn;
  const cuda::ConvKernel kernel = cases::conv_kernel(backend);
  if (pass == "fwd") {
    if (mine)
      cuda::conv3d_fwd(s, x, w, b.bias->f(), b.y->f(), p, st, kernel);
    else
      cudnn::conv3d_fwd(s, x, w, b.bias->f(), b.y->f(), p, st);
  } else if (pass == "bwd_data") {
    if (mine)
      cuda::conv3d_bwd_data(s, dy, w, b.dx->f(), p, st, kernel);
    else
      cudnn::conv3d_bwd_data(s, dy, w, b.dx->f(), p, st);
  } else if (mine) {
    cuda::conv3d_bwd_filter(s, x, dy, b.dw->f(), b.db->f(), p, st, kernel);
  } else {
    cudnn::conv3d_bwd_filter(s, x, dy, b.dw->f(), b.db->f(), p, st);
  }
}

// Each pass reads two of x, w, y (or dy, dx, dw) and writes the third: one of each, once.
double pass_bytes(const Conv3dShape& s) {
  return 4.0 * double(s.input_size() + s.filter_size() + s.output_size());
}

// Registers the row `key`/`how`: `timed(state)` sets it up, runs it through run_timed and
// returns the median ms. The baseline row of a key (cuDNN's, registered first) remembers its time;
// the others get vs_cudnn against it.
void register_row(const std::string& key, const std::string& how, bool baseline,
                  const std::function<double(benchmark::State&)>& timed) {
  benchmark::RegisterBenchmark((key + "/" + how).c_str(),
                               [=](benchmark::State& state) {
                                 guarded(state, [&] {
                                   const double ms = timed(state);
                                   if (baseline)
                                     remember_baseline(key, ms);
                                   else
                                     set_ratio_to_baseline(state, key, ms);
                                 });
                               })
      ->UseManualTime()
      ->Iterations(kConvIterations)
      ->Unit(benchmark::kMillisecond);
}

void register_conv(const ConvLayer& layer, const std::string& pass, Precision p, Backend backend) {
  const bool cudnn = backend == Backend::cudnn;
  register_row("conv/" + layer.name + "/" + pass + "/" + to_string(p), cases::to_string(backend),
               cudnn, [=](benchmark::State& state) {
                 const Conv3dShape& s = layer.shape;
                 const LayerBuffers& b = buffers_for(layer);
                 const Work work{2.0 * double(s.macs()), pass_bytes(s), p};
                 const double ms = run_timed(state, stream(), work,
                                             [&](int i) { conv_pass(pass, backend, s, b, i, p); });
                 if (cudnn)
                   state.counters["cudnn_algo"] = cudnn::conv3d_algorithm(pass.c_str(), s, p);
                 return ms;
               });
}

// The forward's operands in the form each backend's kernel reads, made from the layer's rotated
// sets outside the timing: bf16 copies of x and w for bf16; for tf32 and fp32 the fp32 arrays
// themselves for cuDNN, and for cu3d tf32-rounded copies (its tensor cores would truncate the
// low bits otherwise) or, for fp32, the split heads and tails of 3xTF32 (three times the size).
// y in the type cuDNN writes (bf16 for bf16), fp32 for cu3d.
struct PreparedOperands {
  std::vector<std::unique_ptr<DeviceBuffer>> x, w;
  std::unique_ptr<DeviceBuffer> y;

  PreparedOperands(const ConvLayer& layer, const LayerBuffers& b, Precision p, bool cudnn) {
    const Conv3dShape& s = layer.shape;
    const bool bf16 = p == Precision::bf16, split = p == Precision::fp32 && !cudnn;
    const int element = bf16 ? 2 : 4;
    auto prepare = [&](const float* from, int64_t count, cuda::Tf32Split order) {
      auto to = std::make_unique<DeviceBuffer>(element * count * (split ? 3 : 1), 0, Fill::zeros);
      if (bf16)
        cuda::fp32_to_bf16(from, to->as<__nv_bfloat16>(), count, stream());
      else if (cudnn)
        CU3D_CUDA_CHECK(
            cudaMemcpyAsync(to->f(), from, 4 * count, cudaMemcpyDeviceToDevice, stream()));
      else if (split)
        cuda::fp32_to_tf32_split(from, to->f(), count / s.c, s.c, order, stream());
      else
        cuda::fp32_to_tf32(from, to->f(), count, stream());
      return to;
    };
    for (int i = 0; i < b.sets; ++i) {
      x.push_back(prepare(b.x[i]->f(), s.input_size(), cuda::Tf32Split::head_tail_head));
      w.push_back(prepare(b.w[i]->f(), s.filter_size(), cuda::Tf32Split::head_head_tail));
    }
    y = std::make_unique<DeviceBuffer>((cudnn ? element : 4) * s.output_size(), 0, Fill::zeros);
    CU3D_CUDA_CHECK(cudaStreamSynchronize(stream()));
  }
};

// The "fwd_prepared" rows: the forward alone on prepared operands, no bias, cuDNN (its
// algorithm chosen by cudnnFind*) against versions 5 and 7, replayed from a CUDA graph
// (run_graph_timed): kernel against kernel. cu3d's fp32 is the tf32 conv of the tripled shape
// (3xTF32). The "fwd" rows time the engine's call on fp32 tensors instead, where each side
// converts x and w first and cuDNN also converts its bf16 output back and adds the bias in a
// pass of its own.
void register_conv_prepared(const ConvLayer& layer, Precision p, Backend backend) {
  const bool cudnn = backend == Backend::cudnn;
  register_row("conv/" + layer.name + "/fwd_prepared/" + to_string(p), cases::to_string(backend),
               cudnn, [=](benchmark::State& state) {
                 const Conv3dShape& s = layer.shape;
                 const PreparedOperands in(layer, buffers_for(layer), p, cudnn);
                 const Work work{2.0 * double(s.macs()), pass_bytes(s), p};
                 return run_graph_timed(state, stream(), work, int(in.x.size()), [&](int i) {
                   const int r = i % int(in.x.size());
                   if (cudnn)
                     cudnn::conv3d_fwd_prepared(s, in.x[r]->f(), in.w[r]->f(), in.y->f(), p,
                                                stream());
                   else if (p == Precision::fp32)
                     cuda::conv3d_fwd_prepared(cuda::conv3d_split_tf32_shape(s), in.x[r]->f(),
                                               in.w[r]->f(), in.y->f(), Precision::tf32, stream(),
                                               cases::conv_kernel(backend));
                   else
                     cuda::conv3d_fwd_prepared(s, in.x[r]->f(), in.w[r]->f(), in.y->f(), p,
                                               stream(), cases::conv_kernel(backend));
                 });
               });
}

// Scratch of a fused-block benchmark beyond the layer's conv operands.
struct FusedScratch {
  Pool3dShape p;
  cpu::LayerNormShape ln;
  DeviceBuffer pooled, z, gamma, beta, mean, rstd;
  explicit FusedScratch(const ConvLayer& layer)
      : p(pool_after(layer)),
        ln{layer.shape.n, layer.shape.output_size() / layer.shape.n / layer.shape.k, layer.shape.k},
        pooled(4 * p.output_size(), 0, Fill::zeros),
        z(4 * layer.shape.output_size(), 0, Fill::zeros),
        gamma(4 * layer.shape.k, 50),
        beta(4 * layer.shape.k, 51),
        mean(4 * layer.shape.n, 0, Fill::zeros),
        rstd(4 * layer.shape.n, 0, Fill::zeros) {}
};

// How a block runs: cuDNN's conv + the separate ops (the baseline); for bias_relu_pool, cuDNN's
// own fusion, conv + bias + ReLU in one call (cudnnConvolutionBiasActivationForward in fp32 and
// tf32), then the pool; or cu3d's fused kernels on the forward's version 2-8 (where it applies).
enum class BlockRun {
  cudnn_unfused,
  cudnn_fused,
  cu3d_fused,
  cu3d_fused_pipelined,
  cu3d_fused_wide,
  cu3d_fused_wgmma,
  cu3d_fused_wgmma_ws,
  cu3d_fused_wgmma_tma,
  cu3d_fused_wgmma_cluster
};

const char* to_string(BlockRun r) {
  switch (r) {
    case BlockRun::cudnn_unfused:
      return "cudnn_unfused";
    case BlockRun::cudnn_fused:
      return "cudnn_fused";
    case BlockRun::cu3d_fused:
      return "cu3d_fused";
    case BlockRun::cu3d_fused_pipelined:
      return "cu3d_fused_pipelined";
    case BlockRun::cu3d_fused_wide:
      return "cu3d_fused_wide";
    case BlockRun::cu3d_fused_wgmma:
      return "cu3d_fused_wgmma";
    case BlockRun::cu3d_fused_wgmma_ws:
      return "cu3d_fused_wgmma_ws";
    case BlockRun::cu3d_fused_wgmma_tma:
      return "cu3d_fused_wgmma_tma";
    case BlockRun::cu3d_fused_wgmma_cluster:
      return "cu3d_fused_wgmma_cluster";
  }
  return "?";
}

// Inference blocks, pooled output only. bias_relu_pool: cu3d's one kernel against cuDNN conv
// (with bias) + ReLU + max-pool. bias_ln_relu_pool (per-sample layer norm): cu3d's conv with
// statistics in the epilogue + one normalize/ReLU/pool kernel, against cuDNN conv + layer norm +
// ReLU + max-pool. The _train forms also write z, the ReLU's output, for the backward (cu3d:
// bias_relu_pool's conv epilogue into z, then the pool; bias_ln_relu_pool's pool kernel as it
// normalizes); their cuDNN baselines are the inference ones, which write z anyway.
void fused_call(const std::string& block, BlockRun run, const ConvLayer& layer,
                const LayerBuffers& b, FusedScratch& f, int i, Precision prec) {
  const bool fused = run != BlockRun::cudnn_unfused && run != BlockRun::cudnn_fused;
  const auto kernel = run == BlockRun::cu3d_fused_wgmma_cluster ? cuda::ConvKernel::wgmma_cluster
                      : run == BlockRun::cu3d_fused_wgmma_tma   ? cuda::ConvKernel::wgmma_tma
                      : run == BlockRun::cu3d_fused_wgmma_ws    ? cuda::ConvKernel::wgmma_ws
                      : run == BlockRun::cu3d_fused_wgmma       ? cuda::ConvKernel::wgmma
                      : run == BlockRun::cu3d_fused_wide        ? cuda::ConvKernel::wide
                      : run == BlockRun::cu3d_fused_pipelined   ? cuda::ConvKernel::pipelined
                                                                : cuda::ConvKernel::implicit_gemm;
  const Conv3dShape& s = layer.shape;
  const int r = i % b.sets;
  const float *x = b.x[r]->f(), *w = b.w[r]->f(), *bias = b.bias->f();
  float* y = b.y->f();
  const cudaStream_t st = stream();
  const bool train = block.ends_with("_train");
  if (block.starts_with("bias_relu_pool")) {
    float* z = train ? f.z.f() : nullptr;
    if (fused) {
      cuda::conv3d_fwd_bias_relu_maxpool(s, f.p, x, w, bias, f.pooled.f(), z, prec, st, kernel);
    } else if (run == BlockRun::cudnn_fused) {
      float* out = z ? z : y;
      cudnn::conv3d_fwd_bias_relu(s, x, w, bias, out, prec, st);
      cuda::maxpool3d_fwd(f.p, out, f.pooled.f(), st);
    } else {
      float* out = z ? z : y;
      cudnn::conv3d_fwd(s, x, w, bias, out, prec, st);
      cuda::relu_fwd(s.output_size(), out, out, st);
      cuda::maxpool3d_fwd(f.p, out, f.pooled.f(), st);
    }
  } else if (fused) {
    cuda::conv3d_fwd_bias_ln_stats(s, x, w, bias, f.ln.m, 1e-5f, y, f.mean.f(), f.rstd.f(), prec,
                                   st, kernel);
    cuda::layer_norm_relu_maxpool_fwd(f.p, f.ln.m, y, f.gamma.f(), f.beta.f(), f.mean.f(),
                                      f.rstd.f(), f.pooled.f(), train ? f.z.f() : nullptr, st);
  } else {
    cudnn::conv3d_fwd(s, x, w, bias, y, prec, st);
    cuda::layer_norm_fwd(f.ln, y, f.gamma.f(), f.beta.f(), 1e-5f, f.z.f(), f.mean.f(), f.rstd.f(),
                         st);
    cuda::relu_fwd(s.output_size(), f.z.f(), f.z.f(), st);
    cuda::maxpool3d_fwd(f.p, f.z.f(), f.pooled.f(), st);
  }
}

void register_fused(const ConvLayer& layer, const std::string& block, Precision p, BlockRun run) {
  register_row("fused/" + layer.name + "/" + block + "/" + cu3d::to_string(p), to_string(run),
               run == BlockRun::cudnn_unfused, [=](benchmark::State& state) {
                 const LayerBuffers& b = buffers_for(layer);
                 FusedScratch f(layer);
                 const Conv3dShape& s = layer.shape;
                 // The block's floor: the conv's FLOPs, reading x and w and writing the pooled
                 // output (and z in training).
                 const bool train = block.ends_with("_train");
                 const double bytes = 4.0 * (s.input_size() + s.filter_size() + f.p.output_size() +
                                             (train ? s.output_size() : 0));
                 const Work work{2.0 * double(s.macs()), bytes, p};
                 return run_timed(state, stream(), work,
                                  [&](int i) { fused_call(block, run, layer, b, f, i, p); });
               });
}

// Whether `backend` has a kernel of its own for the pass: versions 2 and cuDNN always; version 3
// for the forward, backward-data at stride 1 and bwd-filter in bf16 and tf32 (fp32: the FFMA
// form's forward and backward-data); versions 4 and 5 for the forward and backward-data (the
// forward of the mirrored shape) where k fills their 128 columns, versions 5 and 6 only where they
// can run (else their rows would time version 3; in fp32, as 3xTF32, with bwd-filter's version 3
// so under version 5's name), versions 7 and 8 for the forward and backward-data where they apply
// (else their rows would time version 5 or 7).
bool takes(Backend backend, const std::string& pass, const Conv3dShape& s, Precision p) {
  switch (backend) {
    case Backend::cu3d_wgmma:
    case Backend::cu3d_wgmma_ws:
      if (p == Precision::fp32)  // and bwd-filter's version 3 as 3xTF32, under version 5's name
        return (pass == "fwd" && s.k >= 128 && cuda::conv3d_fwd_wgmma_supports(s, p)) ||
               (pass == "bwd_data" && s.c >= 128 && bwd_data_is_forward(s) &&
                cuda::conv3d_fwd_wgmma_supports(bwd_data_as_forward(s), p)) ||
               (pass == "bwd_filter" && backend == Backend::cu3d_wgmma && cuda::wgmma_available() &&
                cuda::conv3d_bwd_filter_runs_split_tf32(s, p, cuda::ConvKernel::wgmma));
      return cuda::wgmma_available() && takes(Backend::cu3d_wide, pass, s, p);
    case Backend::cu3d_wgmma_tma:
      return ((pass == "fwd" && cuda::conv3d_fwd_wgmma_tma_supports(s, p)) ||
              (pass == "bwd_data" &&
               cuda::conv3d_fwd_wgmma_tma_supports(bwd_data_as_forward(s), p))) &&
             takes(Backend::cu3d_wgmma, pass, s, p);
    case Backend::cu3d_wgmma_cluster:
      return ((pass == "fwd" && cuda::conv3d_fwd_wgmma_cluster_supports(s, p)) ||
              (pass == "bwd_data" &&
               cuda::conv3d_fwd_wgmma_cluster_supports(bwd_data_as_forward(s), p))) &&
             takes(Backend::cu3d_wgmma, pass, s, p);
    case Backend::cu3d_pipelined:  // fp32: version 3's FFMA form, the forward and bwd-data
      if (p == Precision::fp32)
        return (pass == "fwd" && cuda::conv3d_fwd_pipelined_ffma_supports(s, p)) ||
               (pass == "bwd_data" && bwd_data_is_forward(s) &&
                cuda::conv3d_fwd_pipelined_ffma_supports(bwd_data_as_forward(s), p));
      return (pass == "fwd" && cuda::conv3d_fwd_pipelined_supports(s, p)) ||
             (pass == "bwd_data" && cuda::conv3d_bwd_data_pipelined_supports(s, p)) ||
             (pass == "bwd_filter" && cuda::conv3d_bwd_filter_pipelined_supports(s, p));
    case Backend::cu3d_wide:
      return (pass == "fwd" && s.k >= 128 && cuda::conv3d_fwd_wide_supports(s, p)) ||
             (pass == "bwd_data" && s.c >= 128 && cuda::conv3d_bwd_data_pipelined_supports(s, p) &&
              cuda::conv3d_fwd_wide_supports(bwd_data_as_forward(s), p));
    default:
      return true;
  }
}

// The fused blocks on versions 3 (in fp32 its FFMA form), 5 and 6 where they apply (5 and 6 only
// where they can run); on version 4 the blocks it runs: the training block's z store and the
// inference pool by atomics (pool5), not the window pool of pool1-pool4 or the layer-norm
// statistics, which stay on version 3; on versions 7 and 8 all of them (their inference pool block
// stores z and pools after; version 8 where k makes an even number of 128-filter tiles).
bool takes(BlockRun run, const std::string& block, const ConvLayer& layer, Precision p) {
  const Conv3dShape& s = layer.shape;
  switch (run) {
    case BlockRun::cudnn_fused:
      return block.starts_with("bias_relu_pool");
    case BlockRun::cu3d_fused_wgmma:
    case BlockRun::cu3d_fused_wgmma_ws:
      return cuda::conv3d_fwd_wgmma_supports(s, p);  // fp32 as 3xTF32
    case BlockRun::cu3d_fused_wgmma_tma:
      return cuda::conv3d_fwd_wgmma_tma_supports(s, p);
    case BlockRun::cu3d_fused_wgmma_cluster:
      return cuda::conv3d_fwd_wgmma_cluster_supports(s, p);
    case BlockRun::cu3d_fused_pipelined:
      return cuda::conv3d_fwd_pipelined_supports(s, p) ||
             cuda::conv3d_fwd_pipelined_ffma_supports(s, p);
    case BlockRun::cu3d_fused_wide:
      return s.k >= 128 && cuda::conv3d_fwd_wide_supports(s, p) &&
             (block == "bias_relu_pool_train" ||
              (block == "bias_relu_pool" &&
               !cuda::conv3d_pool_windows_tile_output(pool_after(layer))));
    default:
      return true;
  }
}

bool register_all() {
  for (const ConvLayer& layer : cases::c3d_conv_layers(batch())) {
    for (const char* pass : kPasses)
      for (Precision p : cases::kPrecisions)
        for (Backend backend : {Backend::cudnn, Backend::cu3d, Backend::cu3d_pipelined,
                                Backend::cu3d_wide, Backend::cu3d_wgmma, Backend::cu3d_wgmma_ws,
                                Backend::cu3d_wgmma_tma, Backend::cu3d_wgmma_cluster})
          if (takes(backend, pass, layer.shape, p)) register_conv(layer, pass, p, backend);
    for (Precision p : cases::kPrecisions)
      if (cuda::conv3d_fwd_wgmma_supports(layer.shape, p))
        for (Backend backend : {Backend::cudnn, Backend::cu3d_wgmma, Backend::cu3d_wgmma_tma,
                                Backend::cu3d_wgmma_cluster})
          if (backend != Backend::cu3d_wgmma_cluster ||
              cuda::conv3d_fwd_wgmma_cluster_supports(layer.shape, p))
            register_conv_prepared(layer, p, backend);
    if (!followed_by_pool(layer.name)) continue;
    for (const char* block :
         {"bias_relu_pool", "bias_relu_pool_train", "bias_ln_relu_pool", "bias_ln_relu_pool_train"})
      for (Precision p : cases::kPrecisions)
        for (BlockRun run : {BlockRun::cudnn_unfused, BlockRun::cudnn_fused, BlockRun::cu3d_fused,
                             BlockRun::cu3d_fused_pipelined, BlockRun::cu3d_fused_wide,
                             BlockRun::cu3d_fused_wgmma, BlockRun::cu3d_fused_wgmma_ws,
                             BlockRun::cu3d_fused_wgmma_tma, BlockRun::cu3d_fused_wgmma_cluster})
          if (takes(run, block, layer, p)) register_fused(layer, block, p, run);
  }
  return true;
}

const bool registered = register_all();

}  // namespace
}  // namespace cu3d::bench
