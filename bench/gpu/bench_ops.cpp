// The memory-bound ops at C3D's sizes: max-pool and batch norm (cu3d against cuDNN), both
// layer-norm variants, softmax + cross-entropy, the multi-tensor Adam step and the input
// transform. Each has no FLOPs to speak of, so its roofline fraction is the bytes it must move
// over the measured copy bandwidth (kernels' headers state the bytes; here the least each op
// must move).
//   cu3d_bench_gpu
//   --benchmark_filter='pool/|batch_norm/|layer_norm/|softmax_xent/|adam/|input_transform/'
#include <string>
#include <vector>

#include "bench/gpu/c3d_pools.h"
#include "bench/gpu/common.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/input_transform.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cuda/softmax_xent.cuh"
#include "kernels/cudnn/batch_norm.h"
#include "kernels/cudnn/pool3d.h"
#include "layers/models.h"

namespace cu3d::bench {
namespace {

constexpr int kOpIterations = 50;

benchmark::internal::Benchmark* timed(benchmark::internal::Benchmark* b) {
  return b->UseManualTime()->Iterations(kOpIterations)->Unit(benchmark::kMicrosecond);
}

// Rotated copies of one op's input arrays (each `bytes` long).
std::vector<std::unique_ptr<DeviceBuffer>> rotated(int64_t bytes, int sets, uint64_t seed) {
  std::vector<std::unique_ptr<DeviceBuffer>> v;
  for (int i = 0; i < sets; ++i)
    v.push_back(std::make_unique<DeviceBuffer>(bytes, seed + i));
  return v;
}

// Max-pool forward (reads x, writes y) and backward (reads x, y, dy, writes dx), cu3d against
// cuDNN (`mine`); and bwd_relu, the conv blocks' backward from the pool to the ReLU's input:
// maxpool3d_relu_bwd in one pass (`mine`) against cu3d's max-pool backward then ReLU backward
// (which also reads x and dx and writes dx again), bytes as the backward's.
enum class PoolPass { fwd, bwd, bwd_relu };

benchmark::internal::Benchmark* register_pool(const std::string& name, const Pool3dShape& p,
                                              PoolPass pass, bool mine) {
  const char* pass_name = pass == PoolPass::fwd   ? "fwd"
                          : pass == PoolPass::bwd ? "bwd"
                                                  : "bwd_relu";
  const char* baseline = pass == PoolPass::bwd_relu ? "/cu3d_two_passes" : "/cudnn";
  const std::string key = "pool/" + name + "/" + pass_name;
  return benchmark::RegisterBenchmark(
      (key + (mine ? "/cu3d" : baseline)).c_str(), [=](benchmark::State& state) {
        guarded(state, [&] {
          const bool backward = pass != PoolPass::fwd;
          const int64_t xb = 4 * p.input_size(), yb = 4 * p.output_size();
          const int sets = rotation_sets(xb + 2 * yb);
          const auto x = rotated(xb, sets, 1), y = rotated(yb, sets, 11),
                     dy = rotated(yb, sets, 21);
          const DeviceBuffer out(backward ? xb : yb, 0, Fill::zeros);
          const Work work{0, double(backward ? 2 * xb + 2 * yb : xb + yb)};
          const cudaStream_t st = stream();
          const double ms = run_timed(state, st, work, [&](int i) {
            const int r = i % sets;
            const float *xr = x[r]->f(), *yr = y[r]->f(), *dyr = dy[r]->f();
            switch (pass) {
              case PoolPass::fwd:
                if (mine)
                  cuda::maxpool3d_fwd(p, xr, out.f(), st);
                else
                  cudnn::maxpool3d_fwd(p, xr, out.f(), st);
                break;
              case PoolPass::bwd:
                if (mine)
                  cuda::maxpool3d_bwd(p, xr, yr, dyr, out.f(), st);
                else
                  cudnn::maxpool3d_bwd(p, xr, yr, dyr, out.f(), st);
                break;
              case PoolPass::bwd_relu:
                if (mine) {
                  cuda::maxpool3d_relu_bwd(p, xr, yr, dyr, out.f(), st);
                } else {
                  cuda::maxpool3d_bwd(p, xr, yr, dyr, out.f(), st);
                  cuda::relu_bwd(p.input_size(), xr, out.f(), out.f(), st);
                }
                break;
            }
          });
          if (mine)
            set_ratio_to_baseline(state, key, ms);
          else
            remember_baseline(key, ms);
        });
      });
}

// Layer norm over a conv's output: per sample (one group per clip, m = d*h*w positions) or
// per position (m = 1). Forward must read x and write y; backward read x and dy, write dx. Per
// sample, the default kernels (resident in shared memory where a sample fits) against the
// pipelined ones (`pipelined`, which they replace there: the baseline column).
benchmark::internal::Benchmark* register_layer_norm(const std::string& name,
                                                    const cpu::LayerNormShape& s, bool backward,
                                                    bool pipelined) {
  const std::string variant = s.m == 1 ? "per_position" : "per_sample";
  const std::string key = "layer_norm/" + name + "/" + variant + (backward ? "/bwd" : "/fwd");
  const cuda::SampleNormPath path =
      pipelined ? cuda::SampleNormPath::pipelined : cuda::SampleNormPath::automatic;
  return benchmark::RegisterBenchmark(
      (key + (pipelined ? "/cu3d_pipelined" : "/cu3d")).c_str(), [=](benchmark::State& state) {
        guarded(state, [&] {
          const int64_t bytes = 4 * s.size();
          const int sets = rotation_sets(2 * bytes);
          const auto x = rotated(bytes, sets, 1), dy = rotated(bytes, sets, 11);
          const DeviceBuffer out(bytes, 0, Fill::zeros), gamma(4 * s.c, 2), beta(4 * s.c, 3);
          const DeviceBuffer mean(4 * s.groups, 0, Fill::zeros), rstd(4 * s.groups, 0, Fill::zeros);
          const DeviceBuffer dgamma(4 * s.c, 0, Fill::zeros), dbeta(4 * s.c, 0, Fill::zeros);
          // Valid statistics for the backward pass.
          cuda::layer_norm_stats(s, x[0]->f(), 1e-5f, mean.f(), rstd.f(), stream());
          const Work work{0, double(backward ? 3 * bytes : 2 * bytes)};
          const cudaStream_t st = stream();
          const double ms = run_timed(state, st, work, [&](int i) {
            const int r = i % sets;
            if (backward)
              cuda::layer_norm_bwd(s, x[r]->f(), gamma.f(), mean.f(), rstd.f(), dy[r]->f(), out.f(),
                                   dgamma.f(), dbeta.f(), st, path);
            else
              cuda::layer_norm_fwd(s, x[r]->f(), gamma.f(), beta.f(), 1e-5f, out.f(), mean.f(),
                                   rstd.f(), st, path);
          });
          if (pipelined)
            remember_baseline(key, ms);
          else if (s.m > 1)
            set_ratio_to_baseline(state, key, ms);
        });
      });
}

// Batch norm over a conv's output (rows = positions, c = k), cu3d against cuDNN (`mine`): the
// training forward (statistics, then normalize; running statistics updated), the evaluation
// forward (running statistics) and the backward. The least each must move where the activation
// is larger than the chip's caches (conv2a's 205 MB at batch 32): the training forward reads x
// twice (its statistics span every row, and y needs them) and writes y; the evaluation forward
// reads x and writes y; the backward reads x and dy twice (its sums span every row) and writes
// dx.
enum class NormPass { fwd_train, fwd_eval, bwd };

benchmark::internal::Benchmark* register_batch_norm(const std::string& name,
                                                    const cpu::BatchNormShape& s, NormPass pass,
                                                    bool mine) {
  const char* pass_name = pass == NormPass::fwd_train  ? "fwd_train"
                          : pass == NormPass::fwd_eval ? "fwd_eval"
                                                       : "bwd";
  const std::string key = "batch_norm/" + name + "/" + pass_name;
  return benchmark::RegisterBenchmark(
      (key + (mine ? "/cu3d" : "/cudnn")).c_str(), [=](benchmark::State& state) {
        guarded(state, [&] {
          const int64_t bytes = 4 * s.size();
          const int sets = rotation_sets(2 * bytes);
          const auto x = rotated(bytes, sets, 1), dy = rotated(bytes, sets, 11);
          const DeviceBuffer out(bytes, 0, Fill::zeros), gamma(4 * s.c, 2), beta(4 * s.c, 3);
          const DeviceBuffer mean(4 * s.c, 0, Fill::zeros), rstd(4 * s.c, 0, Fill::zeros);
          const DeviceBuffer run_mean(4 * s.c, 0, Fill::zeros), run_var(4 * s.c, 0, Fill::zeros);
          const DeviceBuffer dgamma(4 * s.c, 0, Fill::zeros), dbeta(4 * s.c, 0, Fill::zeros);
          const float eps = 1e-3f, momentum = 0.1f;
          const cudaStream_t st = stream();
          // Valid statistics for the backward and a positive running variance for evaluation.
          cuda::batch_norm_fwd_train(s, x[0]->f(), gamma.f(), beta.f(), eps, 1.f, out.f(), mean.f(),
                                     rstd.f(), run_mean.f(), run_var.f(), st);
          const int64_t arrays = pass == NormPass::fwd_train  ? 3
                                 : pass == NormPass::fwd_eval ? 2
                                                              : 5;
          const Work work{0, double(arrays * bytes)};
          const double ms = run_timed(state, st, work, [&](int i) {
            const float *xr = x[i % sets]->f(), *dyr = dy[i % sets]->f();
            switch (pass) {
              case NormPass::fwd_train:
                if (mine)
                  cuda::batch_norm_fwd_train(s, xr, gamma.f(), beta.f(), eps, momentum, out.f(),
                                             mean.f(), rstd.f(), run_mean.f(), run_var.f(), st);
                else
                  cudnn::batch_norm_fwd_train(s, xr, gamma.f(), beta.f(), eps, momentum, out.f(),
                                              mean.f(), rstd.f(), run_mean.f(), run_var.f(), st);
                break;
              case NormPass::fwd_eval:
                if (mine)
                  cuda::batch_norm_fwd_eval(s, xr, gamma.f(), beta.f(), run_mean.f(), run_var.f(),
                                            eps, out.f(), mean.f(), rstd.f(), st);
                else
                  cudnn::batch_norm_fwd_eval(s, xr, gamma.f(), beta.f(), run_mean.f(), run_var.f(),
                                             eps, out.f(), st);
                break;
              case NormPass::bwd:
                if (mine)
                  cuda::batch_norm_bwd(s, xr, gamma.f(), mean.f(), rstd.f(), dyr, true, out.f(),
                                       dgamma.f(), dbeta.f(), st);
                else
                  cudnn::batch_norm_bwd(s, xr, gamma.f(), mean.f(), rstd.f(), dyr, eps, out.f(),
                                        dgamma.f(), dbeta.f(), st);
                break;
            }
          });
          if (mine)
            set_ratio_to_baseline(state, key, ms);
          else
            remember_baseline(key, ms);
        });
      });
}

// Softmax + cross-entropy of a batch of C3D's logits (UCF101: 101 classes), forward then
// backward: reads logits, writes probs, reads probs, writes dlogits.
benchmark::internal::Benchmark* register_softmax_xent(int classes) {
  const cpu::SoftmaxXentShape s{batch(), classes};
  return benchmark::RegisterBenchmark(
      ("softmax_xent/fwd_bwd/" + std::to_string(classes) + "/cu3d").c_str(),
      [=](benchmark::State& state) {
        guarded(state, [&] {
          const DeviceBuffer logits(4 * s.size(), 1), probs(4 * s.size(), 0, Fill::zeros);
          const DeviceBuffer dlogits(4 * s.size(), 0, Fill::zeros), loss(4, 0, Fill::zeros),
              dloss(4, 5);
          std::vector<int32_t> host(s.rows);
          for (int64_t r = 0; r < s.rows; ++r)
            host[r] = int32_t(r % classes);
          const DeviceBuffer labels(4 * s.rows, 0, Fill::zeros);
          CU3D_CUDA_CHECK(
              cudaMemcpy(labels.as<int32_t>(), host.data(), 4 * s.rows, cudaMemcpyHostToDevice));
          const Work work{0, 4.0 * 4 * s.size()};
          const cudaStream_t st = stream();
          run_timed(state, st, work, [&](int) {
            cuda::softmax_xent_fwd(s, logits.f(), labels.as<int32_t>(), probs.f(), loss.f(), st);
            cuda::softmax_xent_bwd(s, probs.f(), labels.as<int32_t>(), dloss.f(), dlogits.f(), st);
          });
        });
      });
}

// One Adam step over every parameter tensor of `model` (its real sizes): 28 bytes an element.
benchmark::internal::Benchmark* register_adam(const std::string& model) {
  return benchmark::RegisterBenchmark(
      ("adam/" + model + "/cu3d").c_str(), [=](benchmark::State& state) {
        guarded(state, [&] {
          const auto net = build_model(preset_config(model), 101);
          std::vector<std::unique_ptr<DeviceBuffer>> arrays;
          std::vector<cuda::AdamTensor> tensors;
          double elements = 0;
          for (const Tensor& t : net->parameters()) {
            const int64_t n = t.numel();
            elements += double(n);
            for (int a = 0; a < 4; ++a)
              arrays.push_back(std::make_unique<DeviceBuffer>(4 * n, 100 + a));
            const size_t at = arrays.size() - 4;
            tensors.push_back({arrays[at]->f(), arrays[at + 1]->f(), arrays[at + 2]->f(),
                               arrays[at + 3]->f(), n});
          }
          // Adam's second moment must be non-negative: start it from zero.
          for (const cuda::AdamTensor& t : tensors)
            CU3D_CUDA_CHECK(cudaMemset(t.v, 0, 4 * t.n));
          const Work work{0, 28.0 * elements};
          state.counters["params"] = elements;
          const cudaStream_t st = stream();
          run_timed(state, st, work, [&](int i) { cuda::adam_step(tensors, {}, i + 1, st); });
        });
      });
}

// The input transform of a uint8 batch of 16 frames of 128x171 (C3D's resize) to 112x112 crops:
// reads the cropped bytes, writes fp32 (5 bytes per output element).
benchmark::internal::Benchmark* register_input_transform() {
  const cpu::InputTransformShape s{batch(), 16, 128, 171, 3, 112, 112};
  return benchmark::RegisterBenchmark("input_transform/c3d/cu3d", [=](benchmark::State& state) {
    guarded(state, [&] {
      const int sets = rotation_sets(s.input_size());
      const auto x = rotated(s.input_size(), sets, 1);
      const DeviceBuffer y(4 * s.output_size(), 0, Fill::zeros), mean(12, 2);
      std::vector<int32_t> crops(2 * s.n);
      std::vector<uint8_t> flips(s.n);
      for (int i = 0; i < s.n; ++i) {
        crops[2 * i] = i % (s.h - s.out_h + 1);
        crops[2 * i + 1] = (3 * i) % (s.w - s.out_w + 1);
        flips[i] = uint8_t(i % 2);
      }
      const DeviceBuffer crops_d(4 * crops.size(), 0, Fill::zeros),
          flips_d(flips.size(), 0, Fill::zeros);
      CU3D_CUDA_CHECK(
          cudaMemcpy(crops_d.f(), crops.data(), 4 * crops.size(), cudaMemcpyHostToDevice));
      CU3D_CUDA_CHECK(cudaMemcpy(flips_d.f(), flips.data(), flips.size(), cudaMemcpyHostToDevice));
      const Work work{0, 5.0 * s.output_size()};
      const cudaStream_t st = stream();
      run_timed(state, st, work, [&](int i) {
        cuda::input_transform(s, x[i % sets]->as<uint8_t>(), crops_d.as<int32_t>(),
                              flips_d.as<uint8_t>(), mean.f(), 1.f / 255, y.f(), st);
      });
    });
  });
}

bool register_all() {
  for (const cases::ConvLayer& layer : cases::c3d_conv_layers(batch())) {
    if (!followed_by_pool(layer.name)) continue;
    const Pool3dShape p = pool_after(layer);
    const std::string name = "after_" + layer.name;
    for (PoolPass pass : {PoolPass::fwd, PoolPass::bwd, PoolPass::bwd_relu})
      for (bool mine : {false, true})
        timed(register_pool(name, p, pass, mine));
    const Conv3dShape& s = layer.shape;
    const int64_t positions = s.output_size() / s.k;
    for (int64_t m : {positions / s.n, int64_t(1)})
      for (bool backward : {false, true})
        for (bool pipelined : {true, false})
          if (!pipelined || m > 1)
            timed(register_layer_norm(layer.name, {positions / m, m, s.k}, backward, pipelined));
  }
  for (const cases::ConvLayer& layer : cases::c3d_conv_layers(batch())) {
    if (layer.name != "conv2a" && layer.name != "conv3b" && layer.name != "conv4b") continue;
    const Conv3dShape& s = layer.shape;
    for (NormPass pass : {NormPass::fwd_train, NormPass::fwd_eval, NormPass::bwd})
      for (bool mine : {false, true})
        timed(register_batch_norm(layer.name, {s.output_size() / s.k, s.k}, pass, mine));
  }
  timed(register_softmax_xent(101));
  timed(register_adam("c3d"));
  timed(register_input_transform());
  return true;
}

const bool registered = register_all();

}  // namespace
}  // namespace cu3d::bench
