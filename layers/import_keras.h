// Weight import from Keras HDF5 files into the Keras-style models (keras3d*, cnn2d, or a config
// with their layer kinds). Three layouts are read:
//   - Keras 2 `model.save_weights("w.h5")`: the root's attribute `layer_names` lists the layers in
//     model order, each layer group's attribute `weight_names` its datasets, such as
//     `conv3d/conv3d/kernel:0`;
//   - Keras 2 `model.save("m.h5")` (and Keras 3's legacy `.h5` save): the same under the group
//     `model_weights`;
//   - Keras 3 `model.save_weights("w.weights.h5")`: `layers/<layer>/vars/0`, `1`, ..., where
//     <layer> is the layer's class and its index among the model's layers of that class (conv3d,
//     conv3d_1, ..., conv3d_10; keras/src/saving/saving_lib.py), whatever the layers were named:
//     ordering those names by stem and number gives the model order within each class.
// Layers are matched by kind, in order: the file's k-th Conv3D to the model's k-th conv3d, and so
// for Conv2D, Dense and BatchNormalization. Keras kernels are (kd, kh, kw, in, out), (kh, kw, in,
// out) and (in, out); ours (out, kd, kh, kw, in), (out, kh, kw, in) and (out, in).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "layers/checkpoint.h"

namespace cu3d {

// One weight-bearing layer of a Keras file, its weights in the file's order as f32 tensors, each
// named by its dataset path ("model_weights/dense/dense/kernel:0", "layers/dense/vars/0").
struct KerasLayer {
  std::string name;  // "conv3d_1"
  NamedTensors weights;
};

struct KerasWeights {
  std::string source;              // "Keras 3 weights <path>", for error messages
  std::vector<KerasLayer> layers;  // layers without weights (pooling, dropout) left out
};

// Reads the weights of a Keras HDF5 file. Hostile input: every declared size is checked against
// the file before anything is allocated; only float32 and float64 datasets are read.
KerasWeights read_keras_h5(const std::filesystem::path& path);

// The axis order of the clips the Keras model was trained on. The Keras 3D CNN scripts feed
// (H, W, D, C) clips: their Conv3D kernels are then (kh, kw, kd, in, out) and the Dense after the
// flatten has its rows in (H, W, D, C) order; both are reordered to our (D, H, W, C).
enum class KerasAxisOrder { dhwc, hwdc };

// "dhwc" or "hwdc"; anything else is an error naming `flag`.
KerasAxisOrder parse_keras_axis_order(const std::string& text, const std::string& flag);

struct KerasImportOptions {
  KerasAxisOrder order = KerasAxisOrder::dhwc;
  // When the file's last Dense (the classifier) differs in shape from the model's, keep the
  // model's initialised head (fine-tuning on another class count) instead of failing.
  bool new_head = false;
};

// The pure half of the import: the file's weights converted to our layout and paired with the
// names of `state` (the model's parameters and buffers), for the model `spec` describes. Strict:
// a layer without a counterpart, a tensor left unset or a shape that differs after conversion is
// an error naming the dataset, the tensor and both shapes.
NamedTensors map_keras_weights(const KerasWeights& file, const ModelSpec& spec,
                               const NamedTensors& state, const KerasImportOptions& options = {});

// Reads `path` and copies its weights into `model`, built from `spec`; nothing is copied unless
// everything matches.
void import_keras(const std::filesystem::path& path, const ModelSpec& spec, Module& model,
                  const KerasImportOptions& options = {});

}  // namespace cu3d
