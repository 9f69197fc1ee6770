#include "engine/ops/conv_block.h"

#include <functional>

#include "engine/autograd.h"
#include "engine/compute.h"
#include "engine/dispatch.h"
#include "engine/ops/detail.h"
#ifdef CU3D_CUDA
#include "kernels/cuda/conv3d.cuh"
#endif

namespace cu3d {
namespace {

constexpr const char* kReluOp = "conv3d_bias_relu";
constexpr const char* kPoolOp = "conv3d_bias_relu_maxpool";

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
// cu3d's own kernels. cuDNN's conv (configured, or timed faster by auto for this shape) has no
// epilogue to fuse into, so the block stays the chain of separate ops there. A shape that auto
// has not timed yet is timed now, into `scratch()`.
bool fused_kernel_runs(const Conv3dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                       const std::function<float*()>& scratch) {
  return x.device().is_cuda() && conv3d_fwd_backend(s, x.data<float>(), w.data<float>(),
                                                    bias_or_null(b), scratch) == ConvBackend::cu3d;
}
#else
bool fused_kernel_runs(const Conv3dShape&, const Tensor&, const Tensor&, const Tensor&,
                       const std::function<float*()>&) {
  return false;
}
#endif

// z = relu(conv(x, w) + b) by the separate kernels, ReLU in place on the conv's output.
void conv_then_relu(const char* op, const Conv3dShape& s, const Tensor& x, const Tensor& w,
                    const Tensor& b, const Tensor& z) {
  detail::conv_forward_kernel(op, s, x, w, b, z);
  detail::relu_forward_kernel(z, z);
}

void conv_relu_forward(const Conv3dShape& s, const Tensor& x, const Tensor& w, const Tensor& b,
                       const Tensor& z) {
  if (fused_kernel_runs(s, x, w, b, [&] { return z.data<float>(); })) {
    CU3D_CUDA_CALL(kReluOp, cuda::conv3d_fwd_bias_relu(
                                s, x.data<float>(), w.data<float>(), bias_or_null(b),
                                z.data<float>(), compute_options().precision, compute_stream()));
    return;
  }
  conv_then_relu(kReluOp, s, x, w, b, z);
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
                                compute_options().precision, compute_stream()));
    return;
  }
  const Tensor relu_out =
      z.defined() ? z : Tensor::empty(conv_output_shape(s), x.dtype(), x.device());
  conv_then_relu(kPoolOp, s, x, w, b, relu_out);
  try {
    detail::pool_forward_kernel(kPoolOp, p, relu_out, pooled);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {} ({})", kPoolOp, e.what(), args));
  }
}

// The gradients of x, w and b from dz, the gradient at the ReLU's output z: ReLU's backward into
// `dconv` (which may be dz itself, when the block owns dz), then the conv's.
std::vector<Tensor> relu_conv_backward(const char* op, const Conv3dShape& s, const Tensor& x,
                                       const Tensor& w, const Tensor& b, const Tensor& z,
                                       const Tensor& dz, const Tensor& dconv) {
  detail::relu_backward_kernel(z, dz, dconv);
  return detail::conv_backward(op, s, x, w, b, dconv);
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
  const Pool3dShape p = detail::pool_shape(kPoolOp, conv_output_shape(s), pool,
                                           fmt::format("{}, pooling the conv's output [{}]", args,
                                                       fmt::join(conv_output_shape(s), ",")));
  const bool keep_z = autograd::needs_grad({x, w, b});
  Tensor pooled = Tensor::empty(pool_output_shape(p), x.dtype(), x.device());
  const Tensor z = keep_z ? Tensor::empty(conv_output_shape(s), x.dtype(), x.device()) : Tensor();
  conv_relu_pool_forward(s, p, x, w, b, z, pooled, args);
  if (!keep_z) return pooled;
  autograd::record(kPoolOp, {x, w, b}, {pooled},
                   [s, p, x, w, b, z, pooled](const std::vector<Tensor>& g) {
                     Tensor dz = Tensor::empty_like(z);
                     detail::pool_backward_kernel(kPoolOp, p, z, pooled, g[0], dz);
                     return relu_conv_backward(kPoolOp, s, x, w, b, z, dz, dz);
                   });
  return pooled;
}

}  // namespace cu3d
