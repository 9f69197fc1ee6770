// libFuzzer target for layers/checkpoint (the input's journey: fuzz/inputs/checkpoint.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_checkpoint_input({data, size});
  return 0;
}
