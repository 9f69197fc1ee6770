// How one input reaches the weight importers' name and shape mapping: map_keras_weights
// (layers/import_keras.h) and map_pytorch_c3d (layers/import_pytorch.h), the code between a
// stranger's weight file and our parameters. One input is text:
//   keras keras3d [hwdc] [new_head]          importer, preset, options
//   conv3d layers/conv3d/vars/0 3,3,3,3,8    Keras: layer, dataset, shape (lines of one layer
//   conv3d layers/conv3d/vars/1 8            follow each other)
// or
//   pytorch c3d [new_head]
//   conv1.weight 2,3,3,3,3                   PyTorch: key, shape
// The model is the preset at the golden fixtures' widths (tests/golden/make_golden.py). Input in
// another form is rejected before the mapping runs; what the mapping accepts must assign each
// tensor of the model at most once, with the model's shape, and all of them without new_head.
#pragma once

#include "fuzz/parser_inputs.h"

namespace cu3d::fuzz {

bool parse_import_names_input(Bytes bytes);

}  // namespace cu3d::fuzz
