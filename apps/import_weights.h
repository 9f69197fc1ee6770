// `cu3d train --init` with weights from another framework: a Keras HDF5 file (.h5, layers/
// import_keras.h) or a PyTorch C3D state dict saved as safetensors (a .safetensors without cu3d's
// model config, layers/import_pytorch.h). cu3d's own checkpoints are left to the trainer.
#pragma once

#include <filesystem>
#include <string>

#include "layers/checkpoint.h"

namespace cu3d::apps {

// Imports `path` into `model` (built from `spec`) and returns true when it is another framework's
// file; false, touching nothing, when it is a cu3d checkpoint. The head (the last Dense, or C3D's
// fc8) stays as initialised when the file's class count differs. `keras_order` is the
// --keras-order flag: "dhwc", or "hwdc" for weights trained on (H, W, D, C) clips.
bool init_from_foreign_weights(const std::filesystem::path& path, const ModelSpec& spec,
                               Module& model, const std::string& keras_order);

}  // namespace cu3d::apps
