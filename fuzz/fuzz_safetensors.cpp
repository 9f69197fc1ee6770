// libFuzzer target for engine/safetensors (the input's journey: fuzz/inputs/safetensors.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_safetensors_input({data, size});
  return 0;
}
