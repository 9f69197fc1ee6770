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

BlockPart part_of(const NamedModules& children, std::size_t i) {
  if (child_as<Conv3d>(children, i) != nullptr) return BlockPart::conv3d;
  if (child_as<LayerNorm>(children, i) != nullptr) return BlockPart::layer_norm;
  if (child_as<MaxPool3d>(children, i) != nullptr) return BlockPart::max_pool3d;
  const auto* act = child_as<Activation>(children, i);
  return act != nullptr && act->kind() == ActivationKind::relu ? BlockPart::relu : BlockPart::other;
}

// The layers of the block that starts at `first`: Conv3d, [LayerNorm,] ReLU, [MaxPool3d].
struct BlockLayers {
  const Conv3d* conv = nullptr;
  const LayerNorm* norm = nullptr;
  const MaxPool3d* pool = nullptr;
  std::size_t count = 0;  // 0: no block starts there
};

BlockLayers block_at(const NamedModules& children, std::size_t first) {
  const std::size_t count =
      fused_block_length([&](std::size_t i) { return part_of(children, i); }, first);
  if (count == 0) return {};
  return {.conv = child_as<Conv3d>(children, first),
          .norm = child_as<LayerNorm>(children, first + 1),
          .pool = child_as<MaxPool3d>(children, first + count - 1),
          .count = count};
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

std::size_t fused_block_length(const std::function<BlockPart(std::size_t)>& part,
                               std::size_t first) {
  if (part(first) != BlockPart::conv3d) return 0;
  std::size_t next = first + 1;
  if (part(next) == BlockPart::layer_norm) ++next;
  if (part(next++) != BlockPart::relu) return 0;
  if (part(next) == BlockPart::max_pool3d) ++next;
  return next - first;
}

bool fusion_enabled() {
  return compute_options().fuse && !check_numerics();
}

std::size_t fused_layer_count(const NamedModules& children, std::size_t first) {
  if (!fusion_enabled()) return 1;
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
