// Weight import from the widely used PyTorch C3D (the Sports-1M weights of c3d-pytorch): a state
// dict with keys conv1, conv2, conv3a, conv3b, conv4a, conv4b, conv5a, conv5b, fc6, fc7, fc8
// (".weight" and ".bias"), convolutions in PyTorch's (Cout, Cin, KD, KH, KW) and fc6's columns in
// the order of PyTorch's flatten of (C, D, H, W), saved as safetensors. A pickle converts with
//   python -c "import torch, safetensors.torch as st; st.save_file({k: v.contiguous() for k, v in
//              torch.load('c3d.pickle', map_location='cpu').items()}, 'c3d.safetensors')"
// The importer maps conv1 -> conv1a and conv2 -> conv2a, transposes the filters to ours
// (Cout, KD, KH, KW, Cin), and permutes fc6's columns to our channels-last flatten (D, H, W, C).
#pragma once

#include <filesystem>
#include <string>

#include "layers/checkpoint.h"

namespace cu3d {

// Copies the file's weights into `model`, built from `spec` (a `c3d` preset or a variant with
// the same layer names; `spec` gives fc6's input shape). With `new_head`, fc8 is left as
// initialised, for fine-tuning on another class count; the file's fc8 is then ignored. Strict:
// any key without a counterpart, any parameter left unset, any shape that differs after the
// transposition is an error naming both names and shapes; nothing is copied unless all match.
void import_pytorch_c3d(const std::filesystem::path& path, const ModelSpec& spec, Module& model,
                        bool new_head = false);

// The pure half of the import: the file's tensors (`file`, as stored) converted to our layout and
// paired with the names of `params` (the model's parameters); `source` names the file in errors.
NamedTensors map_pytorch_c3d(const NamedTensors& file, const ModelSpec& spec,
                             const NamedTensors& params, bool new_head, const std::string& source);

}  // namespace cu3d
