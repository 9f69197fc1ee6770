// Parity cases of the memory-bound ops: max-pool, activations, dropout, softmax, softmax-xent,
// layer and batch norm, the input transform, Adam, each against its CPU reference in double, on
// cu3d and, for those cuDNN also has (max-pool, ReLU, sigmoid, softmax, batch norm), on cuDNN.
// They have no precision choice (fp32).
#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "gpu/parity.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/input_transform.h"
#include "kernels/cpu/layer_norm.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/pool3d.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/softmax_xent.h"
#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/batch_norm.cuh"
#include "kernels/cuda/input_transform.cuh"
#include "kernels/cuda/layer_norm.cuh"
#include "kernels/cuda/optimizer.cuh"
#include "kernels/cuda/pool3d.cuh"
#include "kernels/cuda/softmax.cuh"
#include "kernels/cuda/softmax_xent.cuh"
#include "kernels/cudnn/activation.h"
#include "kernels/cudnn/batch_norm.h"
#include "kernels/cudnn/pool3d.h"
#include "kernels/cudnn/softmax.h"

namespace cu3d::parity {
namespace {

using Run = std::function<std::vector<Compared>(std::mt19937_64&, cudaStream_t)>;

ParityCase make_case(const std::string& op, const std::string& shape, Run run,
                     const std::string& backend = "cu3d") {
  return {op + "/" + shape + "/fp32/" + backend, tolerance(Precision::fp32), std::move(run)};
}

std::vector<float> to_float(const std::vector<double>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// ---- max-pool ----------------------------------------------------------------------------------

std::vector<Compared> run_pool(const Pool3dShape& s, bool cudnn, std::mt19937_64& rng,
                               cudaStream_t stream) {
  const auto x = random_floats(s.input_size(), rng), dy = random_floats(s.output_size(), rng);
  std::vector<double> y(s.output_size()), dx(s.input_size());
  cpu::maxpool3d_fwd<double>(s, to_double(x).data(), y.data());
  cpu::maxpool3d_bwd<double>(s, to_double(x).data(), y.data(), to_double(dy).data(), dx.data());

  const DeviceArray gx(x), gdy(dy);
  DeviceArray gy(s.output_size()), gdx(s.input_size());
  gy.poison();
  gdx.poison();
  if (cudnn) {
    cudnn::maxpool3d_fwd(s, gx.get(), gy.get(), stream);
    cudnn::maxpool3d_bwd(s, gx.get(), gy.get(), gdy.get(), gdx.get(), stream);
  } else {
    cuda::maxpool3d_fwd(s, gx.get(), gy.get(), stream);
    cuda::maxpool3d_bwd(s, gx.get(), gy.get(), gdy.get(), gdx.get(), stream);
  }
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), y), compare("dx", gdx.download(), dx)};
}

// The pool's backward with a ReLU's folded in, on ReLU outputs (half of them 0, so windows of
// zeros occur on small windows), against the CPU's in double.
std::vector<Compared> run_pool_relu_bwd(const Pool3dShape& s, std::mt19937_64& rng,
                                        cudaStream_t stream) {
  auto x = random_floats(s.input_size(), rng);
  for (float& v : x)
    v = std::max(v, 0.f);
  const auto dy = random_floats(s.output_size(), rng);
  std::vector<double> y(s.output_size()), dx(s.input_size());
  cpu::maxpool3d_fwd<double>(s, to_double(x).data(), y.data());
  cpu::maxpool3d_relu_bwd<double>(s, to_double(x).data(), y.data(), to_double(dy).data(),
                                  dx.data());
  const DeviceArray gx(x), gdy(dy);
  DeviceArray gy(s.output_size()), gdx(s.input_size());
  gdx.poison();
  cuda::maxpool3d_fwd(s, gx.get(), gy.get(), stream);
  cuda::maxpool3d_relu_bwd(s, gx.get(), gy.get(), gdy.get(), gdx.get(), stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("dx", gdx.download(), dx)};
}

void add_pool_cases(std::vector<ParityCase>* out) {
  struct Row {
    const char* name;
    Pool3dShape s;
  };
  const Dims3 none{0, 0, 0};
  const Row rows[] = {
      {"pool1", Pool3dShape::make(2, {16, 112, 112}, 64, {1, 2, 2}, {1, 2, 2}, Padding::valid)},
      {"pool2", Pool3dShape::make(2, {16, 56, 56}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid)},
      {"pool3", Pool3dShape::make(2, {8, 28, 28}, 256, {2, 2, 2}, {2, 2, 2}, Padding::valid)},
      {"pool4", Pool3dShape::make(2, {4, 14, 14}, 512, {2, 2, 2}, {2, 2, 2}, Padding::valid)},
      {"pool5",
       Pool3dShape::make(2, {2, 7, 7}, 512, {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1})},
      {"odd_overlap_pad",
       Pool3dShape::make(2, {5, 9, 8}, 3, {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1})},
      {"odd_ceil",
       Pool3dShape::make(1, {6, 7, 7}, 5, {3, 3, 3}, {2, 2, 2}, Padding::explicit_, none, true)},
      {"odd_same", Pool3dShape::make(3, {3, 5, 6}, 7, {2, 3, 2}, {1, 2, 2}, Padding::same)},
      // Disjoint windows (backward's per-window kernel) that leave inputs in no window: a stride
      // above the window (h), a trailing row (d, w); 5 channels (scalar) and 12 (float4).
      {"odd_gaps_c5", Pool3dShape::make(2, {5, 7, 9}, 5, {2, 2, 2}, {2, 3, 2}, Padding::valid)},
      {"odd_tail_c12", Pool3dShape::make(2, {5, 7, 9}, 12, {2, 2, 2}, {2, 2, 2}, Padding::valid)},
  };
  for (const Row& r : rows) {
    const Pool3dShape s = r.s;
    for (bool cudnn : {false, true}) {
      if (cudnn && !cudnn::maxpool3d_supported(s)) continue;  // ceil mode, asymmetric padding
      out->push_back(make_case(
          "maxpool3d", r.name,
          [s, cudnn](std::mt19937_64& rng, cudaStream_t st) { return run_pool(s, cudnn, rng, st); },
          cudnn ? "cudnn" : "cu3d"));
    }
    out->push_back(make_case(
        "maxpool3d_relu_bwd", r.name,
        [s](std::mt19937_64& rng, cudaStream_t st) { return run_pool_relu_bwd(s, rng, st); }));
  }
}

// ---- activations and dropout -------------------------------------------------------------------

// Forward then backward of one elementwise op on n elements, against the CPU's.
template <class CpuFwd, class CpuBwd, class GpuFwd, class GpuBwd>
std::vector<Compared> run_unary(int64_t n, std::mt19937_64& rng, cudaStream_t stream,
                                CpuFwd cpu_fwd, CpuBwd cpu_bwd, GpuFwd gpu_fwd, GpuBwd gpu_bwd) {
  const auto x = random_floats(n, rng, -4.f, 4.f), dy = random_floats(n, rng);
  std::vector<double> y(n), dx(n);
  cpu_fwd(to_double(x).data(), y.data());
  cpu_bwd(y.data(), to_double(dy).data(), dx.data());
  const DeviceArray gx(x), gdy(dy);
  DeviceArray gy(n), gdx(n);
  gy.poison();
  gdx.poison();
  gpu_fwd(gx.get(), gy.get(), stream);
  gpu_bwd(gy.get(), gdy.get(), gdx.get(), stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), y), compare("dx", gdx.download(), dx)};
}

// An activation that both cu3d and cuDNN compute, by its kernels' signatures.
struct SharedActivation {
  const char* name;
  void (*cpu_fwd)(int64_t, const double*, double*);
  void (*cpu_bwd)(int64_t, const double*, const double*, double*);
  void (*fwd[2])(int64_t, const float*, float*, cudaStream_t);  // cu3d, cuDNN
  void (*bwd[2])(int64_t, const float*, const float*, float*, cudaStream_t);
};

void add_activation_cases(std::vector<ParityCase>* out) {
  const int64_t n = 1000003;  // odd: the tail of every vector width
  const std::string shape = "n1000003";
  const SharedActivation shared[] = {
      {"relu",
       cpu::relu_fwd<double>,
       cpu::relu_bwd<double>,
       {cuda::relu_fwd, cudnn::relu_fwd},
       {cuda::relu_bwd, cudnn::relu_bwd}},
      {"sigmoid",
       cpu::sigmoid_fwd<double>,
       cpu::sigmoid_bwd<double>,
       {cuda::sigmoid_fwd, cudnn::sigmoid_fwd},
       {cuda::sigmoid_bwd, cudnn::sigmoid_bwd}},
  };
  for (const SharedActivation& op : shared)
    for (int backend : {0, 1})
      out->push_back(make_case(
          op.name, shape,
          [n, op, backend](std::mt19937_64& rng, cudaStream_t st) {
            return run_unary(
                n, rng, st, [&](const double* x, double* y) { op.cpu_fwd(n, x, y); },
                [&](const double* y, const double* dy, double* dx) { op.cpu_bwd(n, y, dy, dx); },
                [&](const float* x, float* y, cudaStream_t s) { op.fwd[backend](n, x, y, s); },
                [&](const float* y, const float* dy, float* dx, cudaStream_t s) {
                  op.bwd[backend](n, y, dy, dx, s);
                });
          },
          backend == 1 ? "cudnn" : "cu3d"));
  out->push_back(make_case("leaky_relu", shape, [n](std::mt19937_64& rng, cudaStream_t st) {
    const float a = 0.1f;
    return run_unary(
        n, rng, st, [=](const double* x, double* y) { cpu::leaky_relu_fwd<double>(n, x, a, y); },
        [=](const double* y, const double* dy, double* dx) {
          cpu::leaky_relu_bwd<double>(n, y, a, dy, dx);
        },
        [=](const float* x, float* y, cudaStream_t s) { cuda::leaky_relu_fwd(n, x, a, y, s); },
        [=](const float* y, const float* dy, float* dx, cudaStream_t s) {
          cuda::leaky_relu_bwd(n, y, a, dy, dx, s);
        });
  }));
  // Dropout's mask must equal the CPU's bit for bit: one differing element of a million
  // gives a relative error near 1e-3, far above the tolerance.
  out->push_back(make_case("dropout", shape + "_p0.3", [n](std::mt19937_64& rng, cudaStream_t st) {
    const double p = 0.3;
    const uint64_t seed = rng(), offset = rng() % 1000;
    return run_unary(
        n, rng, st,
        [=](const double* x, double* y) { cpu::dropout_fwd<double>(n, x, p, seed, offset, y); },
        [=](const double*, const double* dy, double* dx) {
          cpu::dropout_bwd<double>(n, dy, p, seed, offset, dx);
        },
        [=](const float* x, float* y, cudaStream_t s) {
          cuda::dropout_fwd(n, x, p, seed, offset, y, s);
        },
        [=](const float*, const float* dy, float* dx, cudaStream_t s) {
          cuda::dropout_bwd(n, dy, p, seed, offset, dx, s);
        });
  }));
}

// ---- softmax + cross-entropy -------------------------------------------------------------------

std::vector<Compared> run_softmax_xent(cpu::SoftmaxXentShape s, std::mt19937_64& rng,
                                       cudaStream_t stream) {
  const auto logits = random_floats(s.size(), rng, -5.f, 5.f);
  std::vector<int32_t> labels(s.rows);
  for (auto& l : labels)
    l = int32_t(rng() % s.classes);
  const std::vector<double> dloss = {0.7};
  std::vector<double> probs(s.size()), loss(1), dlogits(s.size());
  cpu::softmax_xent_fwd<double>(s, to_double(logits).data(), labels.data(), probs.data(),
                                loss.data());
  cpu::softmax_xent_bwd<double>(s, probs.data(), labels.data(), dloss.data(), dlogits.data());

  const DeviceArray gz(logits), gdl(to_float(dloss));
  const DeviceCopy<int32_t> gl(labels);
  DeviceArray gp(s.size()), gloss(1), gdz(s.size());
  gp.poison();
  gloss.poison();
  gdz.poison();
  cuda::softmax_xent_fwd(s, gz.get(), gl.get(), gp.get(), gloss.get(), stream);
  cuda::softmax_xent_bwd(s, gp.get(), gl.get(), gdl.get(), gdz.get(), stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("probs", gp.download(), probs), compare("loss", gloss.download(), loss),
          compare("dlogits", gdz.download(), dlogits)};
}

// ---- layer norm --------------------------------------------------------------------------------

std::vector<Compared> run_layer_norm(cpu::LayerNormShape s, cuda::SampleNormPath path,
                                     std::mt19937_64& rng, cudaStream_t stream) {
  // An offset mean, as activations after ReLU have: the statistics must not lose it.
  const auto x = random_floats(s.size(), rng, 0.5f, 2.5f), dy = random_floats(s.size(), rng);
  const auto gamma = random_floats(s.c, rng, 0.5f, 1.5f), beta = random_floats(s.c, rng);
  const float eps = 1e-5f;
  std::vector<double> y(s.size()), mean(s.groups), rstd(s.groups);
  std::vector<double> dx(s.size()), dgamma(s.c), dbeta(s.c);
  cpu::layer_norm_fwd<double>(s, to_double(x).data(), to_double(gamma).data(),
                              to_double(beta).data(), eps, y.data(), mean.data(), rstd.data());
  cpu::layer_norm_bwd<double>(s, to_double(x).data(), to_double(gamma).data(), mean.data(),
                              rstd.data(), to_double(dy).data(), dx.data(), dgamma.data(),
                              dbeta.data());

  const DeviceArray gx(x), gdy(dy), gg(gamma), gb(beta);
  DeviceArray gy(s.size()), gmean(s.groups), grstd(s.groups), gdx(s.size()), gdg(s.c), gdb(s.c);
  for (DeviceArray* a : {&gy, &gmean, &grstd, &gdx, &gdg, &gdb})
    a->poison();
  cuda::layer_norm_fwd(s, gx.get(), gg.get(), gb.get(), eps, gy.get(), gmean.get(), grstd.get(),
                       stream, path);
  cuda::layer_norm_bwd(s, gx.get(), gg.get(), gmean.get(), grstd.get(), gdy.get(), gdx.get(),
                       gdg.get(), gdb.get(), stream, path);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), y),
          compare("mean", gmean.download(), mean),
          compare("rstd", grstd.download(), rstd),
          compare("dx", gdx.download(), dx),
          compare("dgamma", gdg.download(), dgamma),
          compare("dbeta", gdb.download(), dbeta)};
}

// ---- batch norm --------------------------------------------------------------------------------

// Training (batch statistics, running statistics updated) or eval (running statistics), each
// forward then backward; on cuDNN, whose evaluation forward saves no statistics, eval is its
// forward alone.
std::vector<Compared> run_batch_norm(cpu::BatchNormShape s, bool training, bool cudnn,
                                     std::mt19937_64& rng, cudaStream_t stream) {
  // An offset mean, as activations after ReLU have: the statistics must not lose it.
  const auto x = random_floats(s.size(), rng, 0.5f, 2.5f), dy = random_floats(s.size(), rng);
  const auto gamma = random_floats(s.c, rng, 0.5f, 1.5f), beta = random_floats(s.c, rng);
  const auto run_mean = random_floats(s.c, rng), run_var = random_floats(s.c, rng, 0.5f, 2.f);
  const float eps = 1e-5f, momentum = 0.1f;
  std::vector<double> y(s.size()), mean(s.c), rstd(s.c), rm = to_double(run_mean),
                                                         rv = to_double(run_var);
  std::vector<double> dx(s.size()), dgamma(s.c), dbeta(s.c);
  if (training) {
    cpu::batch_norm_fwd_train<double>(s, to_double(x).data(), to_double(gamma).data(),
                                      to_double(beta).data(), eps, momentum, y.data(), mean.data(),
                                      rstd.data(), rm.data(), rv.data());
  } else {
    cpu::batch_norm_fwd_eval<double>(s, to_double(x).data(), to_double(gamma).data(),
                                     to_double(beta).data(), rm.data(), rv.data(), eps, y.data(),
                                     mean.data(), rstd.data());
  }
  cpu::batch_norm_bwd<double>(s, to_double(x).data(), to_double(gamma).data(), mean.data(),
                              rstd.data(), to_double(dy).data(), training, dx.data(), dgamma.data(),
                              dbeta.data());

  const DeviceArray gx(x), gdy(dy), gg(gamma), gb(beta), grm(run_mean), grv(run_var);
  DeviceArray gy(s.size()), gmean(s.c), grstd(s.c), gdx(s.size()), gdg(s.c), gdb(s.c);
  for (DeviceArray* a : {&gy, &gmean, &grstd, &gdx, &gdg, &gdb})
    a->poison();
  if (cudnn && !training) {
    cudnn::batch_norm_fwd_eval(s, gx.get(), gg.get(), gb.get(), grm.get(), grv.get(), eps, gy.get(),
                               stream);
    CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
    return {compare("y", gy.download(), y)};
  }
  if (cudnn) {
    cudnn::batch_norm_fwd_train(s, gx.get(), gg.get(), gb.get(), eps, momentum, gy.get(),
                                gmean.get(), grstd.get(), grm.get(), grv.get(), stream);
    cudnn::batch_norm_bwd(s, gx.get(), gg.get(), gmean.get(), grstd.get(), gdy.get(), eps,
                          gdx.get(), gdg.get(), gdb.get(), stream);
  } else if (training) {
    cuda::batch_norm_fwd_train(s, gx.get(), gg.get(), gb.get(), eps, momentum, gy.get(),
                               gmean.get(), grstd.get(), grm.get(), grv.get(), stream);
  } else {
    cuda::batch_norm_fwd_eval(s, gx.get(), gg.get(), gb.get(), grm.get(), grv.get(), eps, gy.get(),
                              gmean.get(), grstd.get(), stream);
  }
  if (!cudnn)
    cuda::batch_norm_bwd(s, gx.get(), gg.get(), gmean.get(), grstd.get(), gdy.get(), training,
                         gdx.get(), gdg.get(), gdb.get(), stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<Compared> r = {compare("y", gy.download(), y),
                             compare("mean", gmean.download(), mean),
                             compare("rstd", grstd.download(), rstd),
                             compare("dx", gdx.download(), dx),
                             compare("dgamma", gdg.download(), dgamma),
                             compare("dbeta", gdb.download(), dbeta)};
  if (training) {
    r.push_back(compare("running_mean", grm.download(), rm));
    r.push_back(compare("running_var", grv.download(), rv));
  }
  return r;
}

// ---- softmax -----------------------------------------------------------------------------------

std::vector<Compared> run_softmax(cpu::SoftmaxShape s, bool cudnn, std::mt19937_64& rng,
                                  cudaStream_t stream) {
  const auto x = random_floats(s.size(), rng, -5.f, 5.f), dy = random_floats(s.size(), rng);
  std::vector<double> y(s.size()), dx(s.size());
  cpu::softmax_fwd<double>(s, to_double(x).data(), y.data());
  cpu::softmax_bwd<double>(s, y.data(), to_double(dy).data(), dx.data());
  const DeviceArray gx(x), gdy(dy);
  DeviceArray gy(s.size()), gdx(s.size());
  gy.poison();
  gdx.poison();
  if (cudnn) {
    cudnn::softmax_fwd(s, gx.get(), gy.get(), stream);
    cudnn::softmax_bwd(s, gy.get(), gdy.get(), gdx.get(), stream);
  } else {
    cuda::softmax_fwd(s, gx.get(), gy.get(), stream);
    cuda::softmax_bwd(s, gy.get(), gdy.get(), gdx.get(), stream);
  }
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), y), compare("dx", gdx.download(), dx)};
}

// ---- Adam --------------------------------------------------------------------------------------

std::vector<Compared> run_adam(bool decoupled, std::mt19937_64& rng, cudaStream_t stream) {
  const std::vector<int64_t> sizes = {1000003, 64, 5184, 1};
  cuda::AdamConfig c;
  c.lr = 3e-3, c.weight_decay = 0.01, c.decoupled = decoupled;
  const int64_t step = 3;
  std::vector<Compared> result;
  std::vector<std::vector<double>> ref_p, ref_m, ref_v;
  std::vector<std::unique_ptr<DeviceArray>> arrays;
  std::vector<cuda::AdamTensor> tensors;
  for (int64_t n : sizes) {
    const auto p = random_floats(n, rng), g = random_floats(n, rng), m = random_floats(n, rng);
    const auto v = random_floats(n, rng, 0.f, 1.f);
    auto dp = to_double(p), dm = to_double(m), dv = to_double(v);
    cpu::adam_step<double>(n, dp.data(), to_double(g).data(), dm.data(), dv.data(), c.lr, c.beta1,
                           c.beta2, c.eps, c.weight_decay, c.decoupled, step);
    ref_p.push_back(dp), ref_m.push_back(dm), ref_v.push_back(dv);
    for (const auto* h : {&p, &g, &m, &v})
      arrays.push_back(std::make_unique<DeviceArray>(*h));
    const size_t k = arrays.size() - 4;
    tensors.push_back(
        {arrays[k]->get(), arrays[k + 1]->get(), arrays[k + 2]->get(), arrays[k + 3]->get(), n});
  }
  cuda::adam_step(tensors, c, step, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (size_t t = 0; t < sizes.size(); ++t) {
    result.push_back(compare(fmt::format("param{}", t), arrays[4 * t]->download(), ref_p[t]));
    result.push_back(compare(fmt::format("m{}", t), arrays[4 * t + 2]->download(), ref_m[t]));
    result.push_back(compare(fmt::format("v{}", t), arrays[4 * t + 3]->download(), ref_v[t]));
  }
  return result;
}

// ---- fused layer norm + ReLU + max-pool ------------------------------------------------------

// The spec: cpu layer_norm_fwd, then relu, then maxpool3d_fwd, in double.
std::vector<Compared> run_ln_relu_pool(const Pool3dShape& p, bool per_sample, bool training,
                                       std::mt19937_64& rng, cudaStream_t stream) {
  const int64_t positions = int64_t(p.n) * p.in.d * p.in.h * p.in.w;
  const int64_t m = per_sample ? positions / p.n : 1;
  const cpu::LayerNormShape ln{positions / m, m, p.c};
  const auto x = random_floats(p.input_size(), rng), gamma = random_floats(p.c, rng, 0.5f, 1.5f);
  const auto beta = random_floats(p.c, rng);
  std::vector<double> z(p.input_size()), mean(ln.groups), rstd(ln.groups), y(p.output_size());
  cpu::layer_norm_fwd<double>(ln, to_double(x).data(), to_double(gamma).data(),
                              to_double(beta).data(), 1e-5, z.data(), mean.data(), rstd.data());
  for (double& v : z)
    v = std::max(v, 0.0);
  cpu::maxpool3d_fwd<double>(p, z.data(), y.data());

  const DeviceArray gx(x), gg(gamma), gb(beta);
  DeviceArray gmean(ln.groups), grstd(ln.groups), gy(p.output_size()), gz(p.input_size());
  for (DeviceArray* a : {&gmean, &grstd, &gy, &gz})
    a->poison();
  cuda::layer_norm_stats(ln, gx.get(), 1e-5f, gmean.get(), grstd.get(), stream);
  cuda::layer_norm_relu_maxpool_fwd(p, m, gx.get(), gg.get(), gb.get(), gmean.get(), grstd.get(),
                                    gy.get(), training ? gz.get() : nullptr, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<Compared> r = {compare("mean", gmean.download(), mean),
                             compare("rstd", grstd.download(), rstd),
                             compare("y", gy.download(), y)};
  if (training) r.push_back(compare("z", gz.download(), z));
  return r;
}

// ---- input transform ---------------------------------------------------------------------------

std::vector<Compared> run_input_transform(cuda::InputTransformShape s, std::mt19937_64& rng,
                                          cudaStream_t stream) {
  std::vector<uint8_t> x(s.input_size());
  for (auto& v : x)
    v = uint8_t(rng());
  std::vector<int32_t> crops(2 * s.n);
  std::vector<uint8_t> flips(s.n);
  for (int n = 0; n < s.n; ++n) {
    crops[2 * n] = int32_t(rng() % (s.h - s.out_h + 1));
    crops[2 * n + 1] = int32_t(rng() % (s.w - s.out_w + 1));
    flips[n] = uint8_t(n % 2);  // both orientations in every batch
  }
  const auto mean = random_floats(s.c, rng, 80.f, 140.f);
  const float scale = 1.f / 58.f;
  std::vector<double> ref(s.output_size());
  cpu::input_transform<double>(s, x.data(), crops.data(), flips.data(), to_double(mean).data(),
                               scale, ref.data());
  const DeviceCopy<uint8_t> gx(x), gf(flips);
  const DeviceCopy<int32_t> gc(crops);
  const DeviceArray gm(mean);
  DeviceArray gy(s.output_size());
  gy.poison();
  cuda::input_transform(s, gx.get(), gc.get(), gf.get(), gm.get(), scale, gy.get(), stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", gy.download(), ref)};
}

}  // namespace

std::vector<ParityCase> op_cases() {
  std::vector<ParityCase> out;
  add_pool_cases(&out);
  add_activation_cases(&out);
  // One block (C3D's batch of 32 x 101 logits, 7 x 1000), and the per-row kernel then a mean
  // (more rows than one block takes; more values than it takes).
  for (cpu::SoftmaxXentShape s : {cpu::SoftmaxXentShape{32, 101}, cpu::SoftmaxXentShape{7, 1000},
                                  cpu::SoftmaxXentShape{300, 37}, cpu::SoftmaxXentShape{40, 2000}})
    out.push_back(make_case(
        "softmax_xent", std::to_string(s.rows) + "x" + std::to_string(s.classes),
        [s](std::mt19937_64& rng, cudaStream_t st) { return run_softmax_xent(s, rng, st); }));
  struct LnRow {
    const char* name;
    cpu::LayerNormShape s;
    cuda::SampleNormPath path = cuda::SampleNormPath::automatic;
  };
  // Per sample after conv2a (the TensorFlow C3D-LN), per position after conv3b, and odd. Per
  // position with c % 4 == 0 takes the one-row-per-team kernels: teams of 8 lanes (c 64, and 12
  // with lanes left idle), 16 (conv3b's 256) and 32 (conv4b's 512, 4 float4s per lane); row
  // counts that leave a warp's last teams without a row. Per sample with c % 4 == 0 dividing 1024
  // takes the resident kernels: where the device's shared memory holds a sample, conv2a's
  // forward in a team of 112 blocks, conv4b in teams of 7 and 14, the small ones in teams of one;
  // where it does not (conv1a, conv2a's backward), partly, one team of the blocks the device
  // holds. The pipelined kernels by name. Shapes: 4 threads
  // per channel quad (64), two (512), one (1024), a sample's last chunk or slice partial (37 x
  // 64 elements), 67 samples, and 600 samples of one chunk each (a chain of 600 hand-overs;
  // resident: 600 samples over as many teams as fit, in rounds). Other channel counts: the
  // two-kernel forward with the float4 normalize (12), the backward's one-pass partials (2), and
  // the scalar paths (5).
  constexpr auto kPipelined = cuda::SampleNormPath::pipelined;
  constexpr auto kResident = cuda::SampleNormPath::resident;
  const LnRow ln[] = {{"per_sample_conv1a_partly_held", {2, 16 * 112 * 112, 64}},
                      {"per_sample_conv2a", {2, 16 * 56 * 56, 128}},
                      {"per_sample_conv2a_pipelined", {2, 16 * 56 * 56, 128}, kPipelined},
                      {"per_sample_conv3b_resident_5_samples", {5, 8 * 28 * 28, 256}, kResident},
                      {"per_sample_conv4b_c512_resident", {2, 4 * 14 * 14, 512}, kResident},
                      {"per_sample_conv4b_c512_pipelined", {2, 4 * 14 * 14, 512}, kPipelined},
                      {"per_sample_one_chunk_groups_c256_pipelined", {600, 9, 256}, kPipelined},
                      {"per_sample_c1024", {2, 300, 1024}},
                      {"per_sample_c64_partial_chunk", {3, 37, 64}},
                      {"per_sample_67_groups_c256", {67, 9, 256}},
                      {"per_sample_one_chunk_groups_c256", {600, 9, 256}},
                      {"per_sample_c12_two_kernels", {3, 700, 12}},
                      {"per_sample_c2_one_pass_partials", {3, 700, 2}},
                      {"per_position_conv3b", {2 * 8 * 28 * 28, 1, 256}},
                      {"per_position_conv4b", {2 * 4 * 14 * 14, 1, 512}},
                      {"per_position_c64_odd_rows", {1001, 1, 64}},
                      {"per_position_c12_odd_rows", {77, 1, 12}},
                      {"odd", {3, 37, 5}}};
  for (const LnRow& r : ln) {
    const cpu::LayerNormShape s = r.s;
    const cuda::SampleNormPath path = r.path;
    out.push_back(make_case("layer_norm", r.name, [s, path](std::mt19937_64& rng, cudaStream_t st) {
      return run_layer_norm(s, path, rng, st);
    }));
  }
  struct FusedRow {
    const char* name;
    Pool3dShape p;
    bool per_sample;
  };
  // The layer-norm C3D's block after conv2a (per sample), after conv3b (per position) and after
  // conv5b (pool5's padding: its windows still hold every input once, so training writes z from
  // the pool kernel, as for the other two), and odd overlapping padded pools on 3 channels (one
  // per thread) and 12 (four per thread), where training writes z in a pass of its own.
  const FusedRow fused[] = {
      {"conv2a_pool2_per_sample",
       Pool3dShape::make(2, {16, 56, 56}, 128, {2, 2, 2}, {2, 2, 2}, Padding::valid), true},
      {"conv3b_pool3_per_position",
       Pool3dShape::make(2, {8, 28, 28}, 256, {2, 2, 2}, {2, 2, 2}, Padding::valid), false},
      {"conv5b_pool5_pad011_per_sample",
       Pool3dShape::make(2, {2, 7, 7}, 512, {2, 2, 2}, {2, 2, 2}, Padding::explicit_, {0, 1, 1}),
       true},
      {"odd_overlap_per_sample",
       Pool3dShape::make(2, {5, 9, 8}, 3, {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1}),
       true},
      {"odd_overlap_c12_per_position",
       Pool3dShape::make(2, {5, 9, 8}, 12, {3, 3, 3}, {2, 2, 2}, Padding::explicit_, {1, 1, 1}),
       false},
  };
  for (const FusedRow& r : fused)
    for (bool training : {false, true}) {
      const Pool3dShape p = r.p;
      const bool per_sample = r.per_sample;
      out.push_back(make_case(training ? "ln_relu_pool_train" : "ln_relu_pool_infer", r.name,
                              [=](std::mt19937_64& rng, cudaStream_t st) {
                                return run_ln_relu_pool(p, per_sample, training, rng, st);
                              }));
    }
  struct TransformRow {
    const char* name;
    cuda::InputTransformShape s;
  };
  // C3D's 128x171 frames cropped to 112x112 (RGB), an odd gray batch, and 4-channel rows of 48
  // values (float4 stores) whose 42 rows leave the last block of 16 part full.
  const TransformRow transforms[] = {{"c3d_b4", {4, 16, 128, 171, 3, 112, 112}},
                                     {"odd_gray", {3, 5, 17, 13, 1, 9, 11}},
                                     {"odd_rgba_tail", {2, 3, 20, 24, 4, 7, 12}}};
  for (const TransformRow& r : transforms) {
    const cuda::InputTransformShape s = r.s;
    out.push_back(make_case("input_transform", r.name, [s](std::mt19937_64& rng, cudaStream_t st) {
      return run_input_transform(s, rng, st);
    }));
  }
  struct BnRow {
    const char* name;
    cpu::BatchNormShape s;
  };
  // After conv2a at batch 2 (the Keras BatchNorm model), and odd shapes. Not 2 rows: there
  // xhat = +-1 and the training dx cancels to ~0, so a relative error means nothing.
  const BnRow bn[] = {
      {"conv2a_b2", {2 * 16 * 56 * 56, 128}}, {"odd_37x5", {37, 5}}, {"odd_3x7", {3, 7}}};
  for (const BnRow& r : bn)
    for (bool training : {true, false})
      for (bool cudnn : {false, true}) {
        const cpu::BatchNormShape s = r.s;
        out.push_back(make_case(
            training ? "batch_norm_train" : "batch_norm_eval", r.name,
            [=](std::mt19937_64& rng, cudaStream_t st) {
              return run_batch_norm(s, training, cudnn, rng, st);
            },
            cudnn ? "cudnn" : "cu3d"));
      }
  // Classifier rows, softmax over a conv's channels (per position after conv3b), odd widths.
  for (cpu::SoftmaxShape s :
       {cpu::SoftmaxShape{32, 101}, cpu::SoftmaxShape{7, 1000},
        cpu::SoftmaxShape{2 * 8 * 28 * 28, 256}, cpu::SoftmaxShape{5, 1}, cpu::SoftmaxShape{3, 37}})
    for (bool cudnn : {false, true})
      out.push_back(make_case(
          "softmax", std::to_string(s.rows) + "x" + std::to_string(s.cols),
          [s, cudnn](std::mt19937_64& rng, cudaStream_t st) {
            return run_softmax(s, cudnn, rng, st);
          },
          cudnn ? "cudnn" : "cu3d"));
  for (bool decoupled : {false, true})
    out.push_back(make_case(decoupled ? "adamw" : "adam", "4_tensors",
                            [decoupled](std::mt19937_64& rng, cudaStream_t st) {
                              return run_adam(decoupled, rng, st);
                            }));
  return out;
}

}  // namespace cu3d::parity
