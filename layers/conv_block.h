// Where Sequential fuses layers: a Conv3d followed by a ReLU Activation (or by a LayerNorm and
// then a ReLU, the layer-norm C3D's), and the MaxPool3d after that if there is one, run as one op
// of engine/ops/conv_block.h (same parameters, same result;
// less memory traffic, and on CUDA one kernel). Fusion changes only how the forward runs: the
// modules, their names and parameters, checkpoints and the exporters see the separate layers.
#pragma once

#include <cstddef>

#include "layers/module.h"

namespace cu3d {

// How many of the children from `first` on one fused op computes: 2 to 4 (conv, [layer norm,]
// ReLU, [max-pool]), or 1 (no block starts there). Always 1 when compute_options().fuse is off,
// and in the numerics checking mode (engine/numerics.h), which tests every layer's own output.
std::size_t fused_layer_count(const NamedModules& children, std::size_t first);

// The output of children [first, first + count) for x, by one fused op; count is from
// fused_layer_count (more than 1).
Tensor run_fused_layers(const NamedModules& children, std::size_t first, std::size_t count,
                        const Tensor& x);

}  // namespace cu3d
