// Skips a GPU test, with the reason cuda_available gives, on a machine without a usable GPU.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "engine/device.h"

#define CU3D_REQUIRE_GPU()                                      \
  do {                                                          \
    std::string reason;                                         \
    if (!cu3d::cuda_available(&reason)) GTEST_SKIP() << reason; \
  } while (0)
