// Fused conv blocks: conv3d + bias + ReLU, and the same followed by a 3D max-pool, as one op on
// the tape; and the layer-norm C3D's conv + bias + layer norm + ReLU (+ max-pool) at the end. They
// compute exactly the chain conv3d -> relu (-> max_pool3d) of conv.h, activation.h and pool.h (same
// shapes, parameters and errors; x (n, d, h, w, c), w (k, kd, kh, kw, c), b (k) or undefined) with
// less memory traffic:
//   CUDA, conv backend cu3d (or auto when it times cu3d's forward faster for the shape): one
//     kernel (kernels/cuda/conv3d.cuh's conv3d_fwd_bias_relu and conv3d_fwd_bias_relu_maxpool)
//     writes the ReLU output, or only the pooled output when no gradient is needed;
//   CUDA with cuDNN: the conv, then ReLU in place on its output (no second tensor), then the
//     max-pool; the CPU: the conv kernel applying ReLU as it stores (kernels/cpu/conv3d.h), then
//     the max-pool.
// Backward reads the ReLU mask from the saved ReLU output z (z > 0), so the block keeps z only
// (the conv output before ReLU is never kept); with a pool, the pool's backward and the ReLU's
// run as one pass (maxpool3d_relu_bwd: a window's gradient goes on only where its max is
// positive); then the conv's own backward. Sequential uses these ops where a Conv3d is followed by
// a ReLU (and a MaxPool3d) unless compute_options().fuse is off (docs/ENGINE.md).
#pragma once

#include "engine/ops/conv.h"
#include "engine/ops/norm.h"
#include "engine/ops/pool.h"
#include "engine/tensor.h"

namespace cu3d {

// relu(conv3d(x, w, b)). Saves its output for backward.
Tensor conv3d_bias_relu(const Tensor& x, const Tensor& w, const Tensor& b,
                        const Conv3dParams& conv = {});

// max_pool3d(relu(conv3d(x, w, b))). When a gradient is needed it keeps z = relu(conv3d(...))
// for backward (max-pool's and ReLU's backward in one pass, then the conv's); without
// (NoGradGuard, or no input requiring a gradient) z is not kept, and on CUDA with the fused
// kernel never written.
Tensor conv3d_bias_relu_maxpool(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv3dParams& conv, const Pool3dParams& pool);

// The layer norm between conv and ReLU of the layer-norm C3D (c3d-ln), as layer_norm takes it.
struct LayerNormParams {
  double eps = 1e-5;
  LayerNormVariant variant = LayerNormVariant::per_sample;
};

// relu(layer_norm(conv3d(x, w, b), gamma, beta)), gamma and beta (k). On CUDA with cu3d the conv's
// epilogue computes the layer-norm statistics (conv3d_fwd_bias_ln_stats) and one pass normalizes
// and applies ReLU (layer_norm_relu_maxpool_fwd with a 1x1x1 window). Saves the conv's output,
// the statistics and its own output for backward (ReLU's, then layer norm's, then the conv's).
Tensor conv3d_bias_layernorm_relu(const Tensor& x, const Tensor& w, const Tensor& b,
                                  const Tensor& gamma, const Tensor& beta, const Conv3dParams& conv,
                                  const LayerNormParams& norm);

// max_pool3d of the above; the pool reads z = relu(layer_norm(...)), which is kept for backward
// when a gradient is needed, and otherwise not kept (on CUDA with cu3d: never written).
Tensor conv3d_bias_layernorm_relu_maxpool(const Tensor& x, const Tensor& w, const Tensor& b,
                                          const Tensor& gamma, const Tensor& beta,
                                          const Conv3dParams& conv, const LayerNormParams& norm,
                                          const Pool3dParams& pool);

}  // namespace cu3d
