// libFuzzer target for the `cu3d` command line (apps/), one argument per line of the input (the
// input's journey: fuzz/inputs/cli.cpp; docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_command_line_input({data, size});
  return 0;
}
