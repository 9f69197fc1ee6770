// Replays the fuzz targets' inputs through the same entry points (fuzz/parser_inputs.h) in the
// normal build, so every developer runs them: each seed in fuzz/corpus/<target>/ (written by the
// project's own writers) must still be accepted, and each crash the fuzzers once found, kept in
// tests/fuzz_regressions/<target>/, must now be accepted or rejected with a cu3d::Error.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz/import_names_input.h"
#include "fuzz/parser_inputs.h"

namespace cu3d::fuzz {
namespace {

namespace fs = std::filesystem;

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path().parent_path();

struct Target {
  const char* name;
  bool (*parse)(Bytes);
};

// CTest lists each case with its parameter: the parser's name, not the struct's bytes.
void PrintTo(const Target& target, std::ostream* os) {
  *os << target.name;
}

const Target kTargets[] = {{"safetensors", parse_safetensors_input},
                           {"split_list", parse_split_list_input},
                           {"ucf_name", parse_ucf_name_input},
                           {"recipe", parse_recipe_input},
                           {"shard", parse_shard_input},
                           {"model_config", parse_model_config_input},
                           {"checkpoint", parse_checkpoint_input},
                           {"cli", parse_command_line_input},
                           {"import_names", parse_import_names_input}};

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  if (!fs::is_directory(folder)) return files;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder))
    if (entry.is_regular_file() && entry.path().filename() != ".gitignore")
      files.push_back(entry.path());
  return files;
}

class FuzzInputs : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzInputs, SeedsWrittenByTheProjectAreAccepted) {
  const std::vector<fs::path> seeds = files_in(kRepo / "fuzz" / "corpus" / GetParam().name);
  ASSERT_FALSE(seeds.empty()) << "no seeds; run scripts/fuzz.sh --seeds";
  for (const fs::path& seed : seeds) {
    const std::vector<uint8_t> bytes = read_bytes(seed);
    EXPECT_TRUE(GetParam().parse(bytes)) << seed << " is rejected; if the format changed on "
                                         << "purpose, regenerate with scripts/fuzz.sh --seeds";
  }
}

TEST_P(FuzzInputs, CrashesFoundByFuzzingStayFixed) {
  const std::vector<fs::path> inputs =
      files_in(kRepo / "tests" / "fuzz_regressions" / GetParam().name);
  if (inputs.empty()) GTEST_SKIP() << "the fuzzer has found no crash in this parser";
  for (const fs::path& input : inputs) {
    const std::vector<uint8_t> bytes = read_bytes(input);
    EXPECT_NO_THROW(GetParam().parse(bytes)) << input;
  }
}

INSTANTIATE_TEST_SUITE_P(Parsers, FuzzInputs, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace cu3d::fuzz
