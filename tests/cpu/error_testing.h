// Small helpers the CPU tests share for checking errors and looking tensors up by name.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "engine/tensor.h"
#include "kernels/error.h"

namespace cu3d::testing {

// The message of the cu3d::Error that fn throws, or "(no error)".
inline std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Expects fn to throw a cu3d::Error whose message contains `fragment`.
inline void expect_error(const std::function<void()>& fn, const std::string& fragment) {
  try {
    fn();
    FAIL() << "expected an error containing: " << fragment;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// The tensor called `name` in a named list (parameters, a state dict); throws if there is none.
inline const Tensor& find(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw Error("no tensor " + name);
}

}  // namespace cu3d::testing
