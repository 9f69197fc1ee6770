#include "layers/conv_block.h"

#include "engine/compute.h"
#include "engine/numerics.h"
#include "engine/ops/conv_block.h"
#include "layers/basic.h"

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

}  // namespace

std::size_t fused_layer_count(const NamedModules& children, std::size_t first) {
  if (!compute_options().fuse || check_numerics()) return 1;
  if (child_as<Conv3d>(children, first) == nullptr || !is_relu(children, first + 1)) return 1;
  return child_as<MaxPool3d>(children, first + 2) != nullptr ? 3 : 2;
}

Tensor run_fused_layers(const NamedModules& children, std::size_t first, std::size_t count,
                        const Tensor& x) {
  const Conv3d& conv = *child_as<Conv3d>(children, first);
  if (count == 2) return conv3d_bias_relu(x, conv.weight(), conv.bias(), conv.params());
  CU3D_CHECK(count == 3, "run_fused_layers: {} layers from '{}' are no fused block", count,
             children[first].first);
  const MaxPool3d& pool = *child_as<MaxPool3d>(children, first + 2);
  return conv3d_bias_relu_maxpool(x, conv.weight(), conv.bias(), conv.params(), pool.params());
}

}  // namespace cu3d
