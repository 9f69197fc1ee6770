// ONNX export (opset 17) of a cu3d model, for ONNX Runtime, TensorRT and Triton. The graph takes
// the model's own input, "input" [N, D, H, W, C] float (a 2D model: [N, H, W, C]) with a dynamic
// batch N, and returns "probabilities" [N, classes]: the softmax of the logits, or an ensemble's
// mean of its members' softmax outputs, as `cu3d predict` reports them.
//
// cu3d is channels-last while ONNX's Conv, MaxPool and BatchNormalization are channels-first, so
// the builder tracks the layout of the running value and inserts a Transpose only where the next
// op needs the other one: the input is transposed before the first convolution, filters are
// stored (K, C, kd, kh, kw), and the value is transposed back to channels-last before Flatten so
// that the dense layers see features in cu3d's flatten order. Dropout is omitted (inference).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "layers/checkpoint.h"

namespace cu3d {

inline constexpr int kOnnxOpset = 17;
inline constexpr const char* kOnnxInput = "input";
inline constexpr const char* kOnnxOutput = "probabilities";

struct OnnxAttribute {
  enum class Kind { integer, integers, real };
  std::string name;
  Kind kind = Kind::integer;
  int64_t i = 0;
  std::vector<int64_t> ints;
  float f = 0;
};

struct OnnxNode {
  std::string op_type;  // "Conv"
  std::string name;     // "member0/conv1a"
  std::vector<std::string> inputs, outputs;
  std::vector<OnnxAttribute> attributes;
};

// An f32 constant (weights, and the per-channel vectors of the normalizations).
struct OnnxInitializer {
  std::string name;
  Shape dims;
  std::vector<float> values;
};

struct OnnxGraph {
  std::string name;  // the model's
  Shape input;       // per sample, channels-last (the batch axis is the dynamic "N")
  int64_t classes = 0;
  std::vector<OnnxNode> nodes;  // in topological order
  std::vector<OnnxInitializer> initializers;
  std::vector<std::pair<std::string, std::string>> metadata;  // ModelProto.metadata_props
};

// The graph of `model`, which must be built from `spec` (build_model) and hold its trained
// weights. Throws cu3d::Error naming the layer when something cannot be expressed in ONNX.
OnnxGraph build_onnx_graph(const ModelSpec& spec, const Module& model);

// The serialized ONNX ModelProto (IR version 8, default-domain opset kOnnxOpset).
std::string encode_onnx_model(const OnnxGraph& graph);

}  // namespace cu3d
