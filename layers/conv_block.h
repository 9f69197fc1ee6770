// Where Sequential fuses layers: a Conv3d followed by a ReLU Activation (or by a LayerNorm and
// then a ReLU, the layer-norm C3D's), and the MaxPool3d after that if there is one, run as one op
// of engine/ops/conv_block.h (same parameters, same result;
// less memory traffic, and on CUDA one kernel). Fusion changes only how the forward runs: the
// modules, their names and parameters, checkpoints and the exporters see the separate layers.
#pragma once

#include <cstddef>
#include <functional>

#include "layers/module.h"

namespace cu3d {

// The layer kinds a fused block is made of; every other layer (and any index past the last) is
// `other`.
enum class BlockPart { conv3d, layer_norm, relu, max_pool3d, other };

// How many layers from `first` on one fused block covers: 2 to 4 (conv3d, [layer_norm,] relu,
// [max_pool3d]), or 0 when none starts there; `part(i)` is the kind of layer i. Sequential
// matches its children with it and the model summary its planned layers (layers/models.cpp), so
// the memory estimate fuses exactly what the engine fuses.
std::size_t fused_block_length(const std::function<BlockPart(std::size_t)>& part,
                               std::size_t first);

// Whether Sequential fuses: compute_options().fuse, and not in the numerics checking mode
// (engine/numerics.h), which tests every layer's own output.
bool fusion_enabled();

// How many of the children from `first` on one fused op computes: 2 to 4 (conv, [layer norm,]
// ReLU, [max-pool]), or 1 (no block starts there). Always 1 when fusion_enabled() is false.
std::size_t fused_layer_count(const NamedModules& children, std::size_t first);

// The output of children [first, first + count) for x, by one fused op; count is from
// fused_layer_count (more than 1).
Tensor run_fused_layers(const NamedModules& children, std::size_t first, std::size_t count,
                        const Tensor& x);

}  // namespace cu3d
