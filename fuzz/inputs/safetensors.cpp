// The safetensors target's entry point (declared in fuzz/parser_inputs.h).
#include "fuzz/parser_inputs.h"

#include <cstdint>

#include "engine/safetensors.h"

namespace cu3d::fuzz {

// engine/safetensors: checkpoint files from other people and frameworks.
bool parse_safetensors_input(Bytes bytes) {
  return accepted([&] {
    const SafetensorsContents contents = parse_safetensors(bytes, "fuzz.safetensors");
    uint64_t tensor_bytes = 0;
    for (const auto& [name, tensor] : contents.tensors)
      tensor_bytes += tensor.nbytes();
    require(tensor_bytes <= bytes.size(), "safetensors: tensors hold more bytes than the file");
  });
}

}  // namespace cu3d::fuzz
