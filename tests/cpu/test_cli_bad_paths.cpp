// Every subcommand given a path it cannot use (missing, a file where a folder must be, a folder
// where a file must be, an output folder that cannot be created) exits non-zero with one line
// that names the path. (Unreadable folders cannot be made as root, which CI runs as: a path under
// a regular file is the unreadable folder every user can build.)
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "apps/app.h"
#include "cpu/cli_testing.h"
#include "test_data_fixtures.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

void expect_one_line_naming(const std::vector<std::string>& args, const std::string& path) {
  SCOPED_TRACE(args.at(0) + " " + path);
  const Captured c = cli(args);
  const std::string& err = c.err;
  EXPECT_NE(c.status, 0);
  EXPECT_EQ(err.rfind("cu3d: error: ", 0), 0u) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find(path), std::string::npos) << err;
}

TEST(CliBadPaths, EverySubcommandNamesThePathItCannotUse) {
  data::testing::TempDir dir;
  const fs::path file = dir.path() / "a-file";
  std::ofstream(file) << "not a folder";
  const std::string under_file = (file / "sub").string();  // cannot be created or read
  const std::string folder = dir.path().string();
  const std::string missing = (dir.path() / "missing.safetensors").string();

  expect_one_line_naming({"synth", under_file, "--classes", "2", "--groups", "2", "--clips", "1",
                          "--frames", "4", "--size", "16"},
                         under_file);
  expect_one_line_naming({"prep", file.string(), (dir.path() / "out").string()}, file.string());
  expect_one_line_naming({"prep", under_file, (dir.path() / "out").string()}, under_file);
  expect_one_line_naming({"train", "--data", under_file, "--output", folder}, under_file);
  expect_one_line_naming({"train", "--model", folder, "--data", folder, "--output", folder},
                         folder);
  expect_one_line_naming({"eval", folder, "--data", folder}, folder);
  expect_one_line_naming({"eval", missing, "--data", folder}, missing);
  expect_one_line_naming({"predict", missing, "clip.avi"}, missing);
  expect_one_line_naming({"summary", "--model", under_file}, under_file);
}

}  // namespace
}  // namespace cu3d::apps
