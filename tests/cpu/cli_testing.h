// Running the cu3d command line in-process from a test: its exit status and what it printed.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "apps/app.h"

namespace cu3d::apps {

struct Captured {
  int status = 0;
  std::string out, err;
};

// `cu3d args...` with stdout and stderr captured.
inline Captured cli(const std::vector<std::string>& args) {
  ::testing::internal::CaptureStdout();
  ::testing::internal::CaptureStderr();
  Captured c;
  c.status = run_cli(args);
  c.out = ::testing::internal::GetCapturedStdout();
  c.err = ::testing::internal::GetCapturedStderr();
  return c;
}

// A whole file as bytes.
inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace cu3d::apps
