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

// A small 3D CNN with dropout (so resume tests cover dropout counters) for 4-frame 32x32 gray
// clips; a step takes milliseconds.
inline constexpr const char* kTinyModel = R"({
  "name": "tiny3d", "input": [4, 32, 32, 1], "init": "pytorch",
  "layers": [
    {"type": "conv3d", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1},
    {"type": "relu", "name": "relu1"},
    {"type": "max_pool3d", "name": "pool1", "window": [2, 4, 4]},
    {"type": "flatten", "name": "flatten"},
    {"type": "dropout", "name": "drop", "rate": 0.3},
    {"type": "dense", "name": "fc", "units": "classes"}]})";

// The same without dropout: runs that must equal another computation (an exported model, a
// checked run) step for step.
inline constexpr const char* kTinyModelNoDropout = R"({
  "name": "tiny3d", "input": [4, 32, 32, 1], "init": "pytorch",
  "layers": [
    {"type": "conv3d", "name": "conv1", "filters": 4, "kernel": 3, "padding": 1},
    {"type": "relu", "name": "relu1"},
    {"type": "max_pool3d", "name": "pool1", "window": [2, 4, 4]},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc", "units": "classes"}]})";

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
