#include "layers/module.h"

#include "engine/numerics.h"
#include "engine/profile_scope.h"
#include "layers/conv_block.h"

namespace cu3d {

Tensor& Module::register_parameter(std::string name, Tensor value) {
  value.set_requires_grad(true);
  parameters_.emplace_back(std::move(name), std::move(value));
  return parameters_.back().second;
}

Tensor& Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), std::move(value));
  return buffers_.back().second;
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, tensor] : parameters ? parameters_ : buffers_)
    out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_)
    child->collect(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters())
    out.push_back(tensor);
  return out;
}

int64_t Module::parameter_count() const {
  int64_t count = 0;
  for (const auto& [name, tensor] : named_parameters())
    count += tensor.numel();
  return count;
}

void Module::train(bool training) {
  training_ = training;
  for (auto& [name, child] : children_)
    child->train(training);
}

void Module::zero_grad() {
  for (auto& [name, tensor] : named_parameters())
    tensor.zero_grad();
}

void Module::to(Device device) {
  for (auto& [name, tensor] : named_parameters())
    tensor.move_to_(device);
  for (auto& [name, tensor] : named_buffers())
    tensor.move_to_(device);
}

namespace {

// "conv1a", or "conv1a+relu1a+pool1" for a fused run: the profile scope's name.
std::string joined_names(const NamedModules& children, std::size_t first, std::size_t count) {
  std::string names = children[first].first;
  for (std::size_t i = first + 1; i < first + count; ++i)
    names += "+" + children[i].first;
  return names;
}

}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  const NamedModules& layers = children();
  for (std::size_t i = 0; i < layers.size();) {
    const std::size_t count = fused_layer_count(layers, i);
    const ProfileScope scope(joined_names(layers, i, count));
    h = count == 1 ? layers[i].second->forward(h) : run_fused_layers(layers, i, count, h);
    // The checking mode never fuses (fused_layer_count), so this is one layer's output.
    if (check_numerics()) check_finite(h, "forward: the output of layer '" + layers[i].first + "'");
    i += count;
  }
  return h;
}

}  // namespace cu3d
