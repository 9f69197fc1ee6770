// libFuzzer target for data/shard_reader (the input's journey: fuzz/inputs/shard.cpp;
// docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_shard_input({data, size});
  return 0;
}
