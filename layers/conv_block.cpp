#include "layers/conv_block.h"

#include <algorithm>

#include "engine/compute.h"
#include "engine/numerics.h"
#include "engine/ops/conv_block.h"
#include "layers/basic.h"
#include "layers/norm.h"

namespace cu3d {
namespace {

template <typename M>
const M* child_as(const NamedModules& children, std::size_t i) {
  return i < children.size() ? dynamic_cast<const M*>(children[i].second.get()) : nullptr;
}

bool is_relu(const NamedModules& children, std::size_t i) {
  const auto* act = child_as<Activation>(children, i);
  return act != nullptr && act->kind() == ActivationKind::relu;
}

// The layers of the block that starts at `first`: Conv3d, [LayerNorm,] ReLU, [MaxPool3d].
struct BlockLayers {
  const Conv3d* conv = nullptr;
  const LayerNorm* norm = nullptr;
  const MaxPool3d* pool = nullptr;
  std::size_t count = 0;  // 0: no block starts there
};

BlockLayers block_at(const NamedModules& children, std::size_t first) {
  BlockLayers block{.conv = child_as<Conv3d>(children, first)};
  if (block.conv == nullptr) return {};
  std::size_t next = first + 1;
  block.norm = child_as<LayerNorm>(children, next);
  if (block.norm != nullptr) ++next;
  if (!is_relu(children, next++)) return {};
  block.pool = child_as<MaxPool3d>(children, next);
  if (block.pool != nullptr) ++next;
  block.count = next - first;
  return block;
}

Tensor run_norm_block(const BlockLayers& block, const Tensor& x) {
  const Conv3d& conv = *block.conv;
  const LayerNorm& norm = *block.norm;
  const LayerNormParams params{norm.eps(), norm.variant()};
  if (block.pool == nullptr)
    return conv3d_bias_layernorm_relu(x, conv.weight(), conv.bias(), norm.gamma(), norm.beta(),
                                      conv.params(), params);
  return conv3d_bias_layernorm_relu_maxpool(x, conv.weight(), conv.bias(), norm.gamma(),
                                            norm.beta(), conv.params(), params,
                                            block.pool->params());
}

}  // namespace

std::size_t fused_layer_count(const NamedModules& children, std::size_t first) {
  if (!compute_options().fuse || check_numerics()) return 1;
  return std::max<std::size_t>(block_at(children, first).count, 1);
}

Tensor run_fused_layers(const NamedModules& children, std::size_t first, std::size_t count,
                        const Tensor& x) {
  const BlockLayers block = block_at(children, first);
  CU3D_CHECK(block.count == count && count > 1,
             "run_fused_layers: the {} layers from '{}' are not one fused block", count,
             children[first].first);
  if (block.norm != nullptr) return run_norm_block(block, x);
  const Conv3d& conv = *block.conv;
  if (block.pool == nullptr) return conv3d_bias_relu(x, conv.weight(), conv.bias(), conv.params());
  return conv3d_bias_relu_maxpool(x, conv.weight(), conv.bias(), conv.params(),
                                  block.pool->params());
}

}  // namespace cu3d
