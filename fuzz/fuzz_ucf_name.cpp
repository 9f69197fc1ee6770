// libFuzzer target for data/ucf_name (the input's journey: fuzz/inputs/ucf_name.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_ucf_name_input({data, size});
  return 0;
}
