// libFuzzer target for data/split_list (the input's journey: fuzz/inputs/split_list.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_split_list_input({data, size});
  return 0;
}
