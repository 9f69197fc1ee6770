// The pieces of the conv, max-pool, ReLU and layer-norm ops that the fused blocks (conv_block.cpp)
// are built from, so that a block checks, runs and differentiates exactly as the chain of separate
// ops does. Internal to engine/ops: callers use the ops of conv.h, pool.h, activation.h and
// conv_block.h.
#pragma once

#include <string>
#include <vector>

#include "engine/ops/conv.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"
#include "kernels/cpu/layer_norm.h"

namespace cu3d::detail {

// conv.cpp. The argument checks of conv2d/conv3d on `dims`-axis x and w (errors name `op`).
void check_conv_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int dims);
// The kernel's shape for 5D x and w; `args` names the caller's tensors in errors.
Conv3dShape conv_shape(const char* op, const Tensor& x, const Tensor& w, const Conv3dParams& p,
                       const std::string& args);
// "x f32[...], w f32[...]" for error messages.
std::string describe_conv_args(const Tensor& x, const Tensor& w);
// y = conv(x, w) + b (b may be undefined) on x's device, through the configured conv backend;
// with `relu`, y = relu(conv(x, w) + b): on the CPU the conv kernel applies ReLU as it stores
// (kernels/cpu/conv3d.h), on CUDA (the backend's plain conv) ReLU runs in place on y after it.
void conv_forward_kernel(const char* op, const Conv3dShape& s, const Tensor& x, const Tensor& w,
                         const Tensor& b, const Tensor& y, bool relu = false);
// The conv's backward from dy: {dx, dw, db}, each only where its input requires a gradient
// (undefined otherwise).
std::vector<Tensor> conv_backward(const char* op, const Conv3dShape& s, const Tensor& x,
                                  const Tensor& w, const Tensor& b, const Tensor& dy);

// pool.cpp. The kernel's shape for a 5D input of shape `x`; `args` names the caller's tensors
// in errors.
Pool3dShape pool_shape(const char* op, const Shape& x, const Pool3dParams& p,
                       const std::string& args);
void pool_forward_kernel(const char* op, const Pool3dShape& s, const Tensor& x, const Tensor& y);
// dx from the pool's input x, its output y and dy.
void pool_backward_kernel(const char* op, const Pool3dShape& s, const Tensor& x, const Tensor& y,
                          const Tensor& dy, const Tensor& dx);
// The same for x a ReLU's output, with the ReLU's backward folded in: dx at ReLU's input.
void pool_relu_backward_kernel(const char* op, const Pool3dShape& s, const Tensor& x,
                               const Tensor& y, const Tensor& dy, const Tensor& dx);

// activation.cpp. y = relu(x); y may be x (in place).
void relu_forward_kernel(const Tensor& x, const Tensor& y);
// dx = dy where y > 0, else 0; dx may be dy (in place).
void relu_backward_kernel(const Tensor& y, const Tensor& dy, const Tensor& dx);

// norm.cpp. The kernels' shape for a layer norm over a (n, ..., c) tensor of shape `x`.
cpu::LayerNormShape layer_norm_shape(const Shape& x, LayerNormVariant variant);
// y = layer_norm(x), saving mean and rstd (s.groups each).
void layer_norm_forward_kernel(const cpu::LayerNormShape& s, const Tensor& x, const Tensor& gamma,
                               const Tensor& beta, double eps, const Tensor& y, const Tensor& mean,
                               const Tensor& rstd);
// dx, dgamma and dbeta from the forward's input x, its saved statistics and dy.
void layer_norm_backward(const cpu::LayerNormShape& s, const Tensor& x, const Tensor& gamma,
                         const Tensor& mean, const Tensor& rstd, const Tensor& dy, const Tensor& dx,
                         const Tensor& dgamma, const Tensor& dbeta);

}  // namespace cu3d::detail
