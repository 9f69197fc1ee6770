// libFuzzer target for layers/models (the input's journey: fuzz/inputs/model_config.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_model_config_input({data, size});
  return 0;
}
