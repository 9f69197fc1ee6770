// How one input reaches each parser of outside input. The libFuzzer targets (fuzz/fuzz_*.cpp) and
// the CPU suite's replay of the seed corpora and regression inputs (tests/cpu/
// test_fuzz_regressions.cpp) run the same functions, so a crash found by clang's fuzzer replays in
// every developer's gcc build.
//
// Each function returns true when the parser accepted the input and false when it rejected it
// with a cu3d::Error: the two expected outcomes. Anything else is a bug in the parser: another
// exception escaping (std::bad_alloc, nlohmann::json::exception, std::out_of_range), a crash, a
// sanitizer report, or a PropertyViolation thrown by these functions when an accepted result breaks
// a promise the parser makes (a class name with a '/', a tensor larger than the file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string_view>

#include "kernels/error.h"

namespace cu3d::fuzz {

using Bytes = std::span<const uint8_t>;

// Not a cu3d::Error, so neither the parsers nor `accepted` can swallow it: libFuzzer
// reports it as a crash (uncaught exception), GoogleTest as a failure.
struct PropertyViolation : std::logic_error {
  using std::logic_error::logic_error;
};

inline void require(bool property, const char* what) {
  if (!property) throw PropertyViolation(what);
}

inline std::string_view as_text(Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// Runs `parse`; a cu3d::Error is a rejection, everything else propagates.
template <class Parse>
bool accepted(Parse parse) {
  try {
    parse();
    return true;
  } catch (const Error&) {
    return false;
  }
}

// The input of the shard target: the three files of a one-shard folder, joined by these lines.
constexpr std::string_view kShardIndexSeparator = "\n--- shard-00000.json ---\n";
constexpr std::string_view kShardBinSeparator = "\n--- shard-00000.bin ---\n";

// Models small enough to build and run once per input at thousands of inputs a second; larger
// accepted configs stop after shape inference.
constexpr int64_t kMaxBuiltParameters = 20'000;
constexpr int64_t kMaxBuiltMacs = 200'000;
constexpr int kFuzzClasses = 3;

// A folder of this process's own for the parsers that read files (tmpfs when there is one),
// removed at exit; and a whole file written there.
const std::filesystem::path& scratch_folder();
void write_file(const std::filesystem::path& path, std::string_view bytes);

// One entry point per target, each in its own file, fuzz/inputs/<target>.cpp, which says what it
// checks: a target then links only its own parser's code. libFuzzer scans every coverage counter
// in the binary after each input; with all the parsers linked in, ucf_name ran 4x fewer inputs
// a second.
bool parse_safetensors_input(Bytes bytes);
bool parse_split_list_input(Bytes bytes);
bool parse_ucf_name_input(Bytes bytes);
bool parse_recipe_input(Bytes bytes);
bool parse_shard_input(Bytes bytes);
bool parse_model_config_input(Bytes bytes);
bool parse_checkpoint_input(Bytes bytes);
bool parse_command_line_input(Bytes bytes);

}  // namespace cu3d::fuzz
