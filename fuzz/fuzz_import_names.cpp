// libFuzzer target for the weight importers' name and shape mapping, Keras and PyTorch (the
// input's form: fuzz/import_names_input.h; docs/FUZZING.md).
#include "fuzz/import_names_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  cu3d::fuzz::parse_import_names_input({data, size});
  return 0;
}
