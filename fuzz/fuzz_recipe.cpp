// libFuzzer target for data/recipe (the input's journey: fuzz/inputs/recipe.cpp; docs/FUZZING.md).
#include "fuzz/parser_inputs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_recipe_input({data, size});
  return 0;
}
