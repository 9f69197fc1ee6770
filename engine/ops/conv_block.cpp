#include "engine/ops/conv_block.h"

#include <functional>
#include <optional>

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cuda/layer_norm.cuh"
#endif

namespace cu3d {
namespace {

constexpr const char* kReluOp = "conv3d_bias_relu";
constexpr const char* kPoolOp = "conv3d_bias_relu_maxpool";
constexpr const char* kNormOp = "conv3d_bias_layernorm_relu";
constexpr const char* kNormPoolOp = "conv3d_bias_layernorm_relu_maxpool";

Shape conv_output_shape(const Conv3dShape& s) {
  return {s.n, s.out.d, s.out.h, s.out.w, s.k};
}

Shape pool_output_shape(const Pool3dShape& p) {
  return {p.n, p.out.d, p.out.h, p.out.w, p.c};
}

#ifdef CU3D_CUDA
const float* bias_or_null(const Tensor& b) {
  return b.defined() ? b.data<float>() : nullptr;
}

// Whether the block runs cu3d's fused kernel: only on CUDA tensors whose forward conv runs on
// cu3d's own kernels. On cuDNN's conv (configured, or timed faster by auto for this shape) the
// block runs what cuDNN fuses, conv + bias + ReLU in one call, and the pool and the layer norm
// as separate ops. A shape that auto has not timed yet is timed now, into `scratch()`.
bool fused_kernel_runs(const Conv3dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                       const std::function<float*()>& scratch) {
  return x.device().is_cuda() && conv3d_fwd_backend(s, x.data<float>(), w.data<float>(),
                                                    bias_or_null(b), scratch) == Backend::cu3d;
}
#else
bool fused_kernel_runs(const Conv3dShape&, const Tensor&, const Tensor&, const Tensor&,
                       const std::function<float*()>&) {
  return false;
}
#endif

// The pool's forward; a window that lies entirely in the padding is an error naming the block.
void pool_forward(const char* op, const Pool3dShape& p, const Tensor& in, const Tensor& out,
                  const std::string& args) {
  try {
    detail::pool_forward_kernel(op, p, in, out);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} ({})", op, e.what(), args));
  }
}

// The pool of a block over the conv's output, with errors naming the block and the conv.
Pool3dShape block_pool_shape(const char* op, const Conv3dShape& s, const Pool3dParams& pool,
                             const std::string& args) {
  const Shape conv_out = conv_output_shape(s);
  return detail::pool_shape(
      op, conv_out, pool,
      fmt::format("{}, pooling the conv's output [{}]", args, fmt::join(conv_out, ",")));
}

void conv_relu_forward(const Conv3dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                       const Tensor& z) {
  if (fused_kernel_runs(s, x, w, b, [&] { return z.data<float>(); })) {
    CU3D_CUDA_CALL(kReluOp,
                   cuda::conv3d_fwd_bias_relu(s, x.data<float>(), w.data<float>(), bias_or_null(b),
                                              z.data<float>(), compute_options().precision,
                                              compute_stream(), cu3d_conv_kernel()));
    return;
  }
  detail::conv_forward_kernel(kReluOp, s, x, w, b, z, /*relu=*/true);
}

// pooled = maxpool(relu(conv(x, w) + b)). A defined z receives relu(conv(x, w) + b) for backward;
// an undefined one (no gradient needed) is not written by the fused kernel and is a temporary
// of the separate kernels.
void conv_relu_pool_forward(const Conv3dShape& s, const Pool3dShape& p, const Tensor& x,
                            const Tensor& w, const Tensor& b, const Tensor& z, const Tensor& pooled,
                            const std::string& args) {
  Tensor timing_output;
  auto scratch = [&] {
    timing_output = Tensor::empty(conv_output_shape(s), x.dtype(), x.device());
    return timing_output.data<float>();
  };
  if (fused_kernel_runs(s, x, w, b, scratch)) {
    CU3D_CUDA_CALL(kPoolOp, cuda::conv3d_fwd_bias_relu_maxpool(
                                s, p, x.data<float>(), w.data<float>(), bias_or_null(b),
                                pooled.data<float>(), z.defined() ? z.data<float>() : nullptr,
                                compute_options().precision, compute_stream(), cu3d_conv_kernel()));
    return;
  }
  const Tensor relu_out =
      z.defined() ? z : Tensor::empty(conv_output_shape(s), x.dtype(), x.device());
  detail::conv_forward_kernel(kPoolOp, s, x, w, b, relu_out, /*relu=*/true);
  pool_forward(kPoolOp, p, relu_out, pooled, args);
}

// The gradients of x, w and b from dz, the gradient at the ReLU's output z: ReLU's backward into
// `dconv`, then the conv's.
std::vector<Tensor> relu_conv_backward(const char* op, const Conv3dShape& s, const Tensor& x,
                                       const Tensor& w, const Tensor& b, const Tensor& z,
                                       const Tensor& dz, const Tensor& dconv) {
  detail::relu_backward_kernel(z, dz, dconv);
  return detail::conv_backward(op, s, x, w, b, dconv);
}

// What the layer-norm block's forward computes and its backward reads.
struct NormBlock {
  const char* op;
  Conv3dShape s;
  cpu::LayerNormShape ls;
  Pool3dShape p;  // a 1x1x1 window (the identity) for the block without pool
  bool pooled;
  Tensor y;           // conv(x, w) + b: the layer norm's input
  Tensor mean, rstd;  // its statistics (ls.groups)
  Tensor z;  // relu(layer_norm(y)): the output itself without pool; undefined when not kept
  Tensor out;
};

void check_norm_args(const char* op, const Conv3dShape& s, const Tensor& x, const Tensor& gamma,
                     const Tensor& beta, const LayerNormParams& norm) {
  check_defined(op, "gamma", gamma);
  check_defined(op, "beta", beta);
  check_same_dtype_device(op, {x, gamma, beta});
  check_shape(op, "gamma", gamma, {s.k});
  check_shape(op, "beta", beta, {s.k});
  CU3D_CHECK(norm.eps >= 0, "{}: eps = {} must not be negative", op, norm.eps);
}

// The separate kernels: conv, layer norm into z, ReLU in place, pool (z is a temporary when the
// block keeps nothing).
void norm_block_chain(const NormBlock& k, const Tensor& x, const Tensor& w, const Tensor& b,
                      const Tensor& gamma, const Tensor& beta, double eps,
                      const std::string& args) {
  const Tensor normed = k.z.defined() ? k.z : Tensor::empty_like(k.y);
  detail::conv_forward_kernel(k.op, k.s, x, w, b, k.y);
  detail::layer_norm_forward_kernel(k.ls, k.y, gamma, beta, eps, normed, k.mean, k.rstd);
  detail::relu_forward_kernel(normed, normed);
  if (k.pooled) pool_forward(k.op, k.p, normed, k.out, args);
}

void norm_block_forward(const NormBlock& k, const Tensor& x, const Tensor& w, const Tensor& b,
                        const Tensor& gamma, const Tensor& beta, double eps,
                        const std::string& args) {
  if (!fused_kernel_runs(k.s, x, w, b, [&] { return k.y.data<float>(); }))
    return norm_block_chain(k, x, w, b, gamma, beta, eps, args);
  // The statistics come from the conv's epilogue (y is not read back for them); then one pass
  // normalizes, applies ReLU and pools, writing z only where a pool's backward needs it.
  CU3D_CUDA_CALL(k.op,
                 cuda::conv3d_fwd_bias_ln_stats(
                     k.s, x.data<float>(), w.data<float>(), bias_or_null(b), k.ls.m, float(eps),
                     k.y.data<float>(), k.mean.data<float>(), k.rstd.data<float>(),
                     compute_options().precision, compute_stream(), cu3d_conv_kernel()));
  CU3D_CUDA_CALL(k.op,
                 cuda::layer_norm_relu_maxpool_fwd(
                     k.p, k.ls.m, k.y.data<float>(), gamma.data<float>(), beta.data<float>(),
                     k.mean.data<float>(), k.rstd.data<float>(), k.out.data<float>(),
                     k.pooled && k.z.defined() ? k.z.data<float>() : nullptr, compute_stream()));
}

// Gradients of x, w, b, gamma, beta from the block's output gradient: the pool's backward (if
// any), ReLU's, layer norm's, the conv's.
std::vector<Tensor> norm_block_backward(const NormBlock& k, const Tensor& x, const Tensor& w,
                                        const Tensor& b, const Tensor& gamma, const Tensor& dout) {
  Tensor dz = Tensor::empty_like(k.z);
  if (k.pooled) {
    detail::pool_relu_backward_kernel(k.op, k.p, k.z, k.out, dout, dz);
  } else {
    detail::relu_backward_kernel(k.z, dout, dz);  // dout belongs to the tape: not overwritten
  }
  const Tensor dy = Tensor::empty_like(k.y), dgamma = Tensor::empty_like(gamma),
               dbeta = Tensor::empty_like(gamma);
  detail::layer_norm_backward(k.ls, k.y, gamma, k.mean, k.rstd, dz, dy, dgamma, dbeta);
  std::vector<Tensor> grads = detail::conv_backward(k.op, k.s, x, w, b, dy);
  grads.push_back(dgamma);
  grads.push_back(dbeta);
  return grads;
}

Tensor norm_block(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                  const Tensor& gamma, const Tensor& beta, const Conv3dParams& conv,
                  const LayerNormParams& norm, const std::optional<Pool3dParams>& pool) {
  detail::check_conv_args(op, x, w, b, 5);
  const std::string args = detail::describe_conv_args(x, w);
  const Conv3dShape s = detail::conv_shape(op, x, w, conv, args);
  check_norm_args(op, s, x, gamma, beta, norm);
  const Shape conv_out = conv_output_shape(s);
  const cpu::LayerNormShape ls = detail::layer_norm_shape(conv_out, norm.variant);
  const Pool3dShape p =
      pool ? block_pool_shape(op, s, *pool, args)
           : Pool3dShape::make(s.n, s.out, s.k, {1, 1, 1}, {1, 1, 1}, Padding::valid);
  const bool keep = autograd::needs_grad({x, w, b, gamma, beta});
  auto empty = [&](const Shape& shape) { return Tensor::empty(shape, x.dtype(), x.device()); };
  const Tensor out = empty(pool_output_shape(p));
  // The ReLU output for backward: the output itself without pool; with one, only when kept.
  const Tensor z = !pool ? out : keep ? empty(conv_out) : Tensor();
  const Tensor y = empty(conv_out), mean = empty({ls.groups}), rstd = empty({ls.groups});
  const NormBlock k{op, s, ls, p, pool.has_value(), y, mean, rstd, z, out};
  norm_block_forward(k, x, w, b, gamma, beta, norm.eps, args);
  if (!keep) return k.out;
  autograd::record(op, {x, w, b, gamma, beta}, {k.out},
                   [k, x, w, b, gamma](const std::vector<Tensor>& g) {
                     return norm_block_backward(k, x, w, b, gamma, g[0]);
                   });
  return k.out;
}

}  // namespace

Tensor conv3d_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b,
                        const Conv3dParams& conv) {
  detail::check_conv_args(kReluOp, x, w, b, 5);
  const Conv3dShape s = detail::conv_shape(kReluOp, x, w, conv, detail::describe_conv_args(x, w));
  Tensor z = Tensor::empty(conv_output_shape(s), x.dtype(), x.device());
  conv_relu_forward(s, x, w, b, z);
  if (!autograd::needs_grad({x, w, b})) return z;
  autograd::record(kReluOp, {x, w, b}, {z}, [s, x, w, b, z](const std::vector<Tensor>& g) {
    // g[0] belongs to the tape (it may be the caller's root gradient): not overwritten.
    return relu_conv_backward(kReluOp, s, x, w, b, z, g[0], Tensor::empty_like(z));
  });
  return z;
}

Tensor conv3d_bias_relu_maxpool(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv3dParams& conv, const Pool3dParams& pool) {
  detail::check_conv_args(kPoolOp, x, w, b, 5);
  const std::string args = detail::describe_conv_args(x, w);
  const Conv3dShape s = detail::conv_shape(kPoolOp, x, w, conv, args);
  const Pool3dShape p = block_pool_shape(kPoolOp, s, pool, args);
  const bool keep_z = autograd::needs_grad({x, w, b});
  Tensor pooled = Tensor::empty(pool_output_shape(p), x.dtype(), x.device());
  const Tensor z = keep_z ? Tensor::empty(conv_output_shape(s), x.dtype(), x.device()) : Tensor();
  conv_relu_pool_forward(s, p, x, w, b, z, pooled, args);
  if (!keep_z) return pooled;
  autograd::record(kPoolOp, {x, w, b}, {pooled},
                   [s, p, x, w, b, z, pooled](const std::vector<Tensor>& g) {
                     // The pool's and the ReLU's backward in one pass, then the conv's.
                     const Tensor dconv = Tensor::empty_like(z);
                     detail::pool_relu_backward_kernel(kPoolOp, p, z, pooled, g[0], dconv);
                     return detail::conv_backward(kPoolOp, s, x, w, b, dconv);
                   });
  return pooled;
}

Tensor conv3d_bias_layernorm_relu(const Tensor& x, const Tensor& w, const Tensor& b,
                                  const Tensor& gamma, const Tensor& beta, const Conv3dParams& conv,
                                  const LayerNormParams& norm) {
  return norm_block(kNormOp, x, w, b, gamma, beta, conv, norm, std::nullopt);
}

Tensor conv3d_bias_layernorm_relu_maxpool(const Tensor& x, const Tensor& w, const Tensor& b,
                                          const Tensor& gamma, const Tensor& beta,
                                          const Conv3dParams& conv, const LayerNormParams& norm,
                                          const Pool3dParams& pool) {
  return norm_block(kNormPoolOp, x, w, b, gamma, beta, conv, norm, pool);
}

}  // namespace cu3d
