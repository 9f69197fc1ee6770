// Test expectations on the checkpoints `cu3d train` writes, shared by the CPU suite's command-line
// tests and the GPU suite's training-loop tests.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "apps/model_io.h"
#include "engine/safetensors.h"

namespace cu3d::apps {

// The same training state: metadata and every tensor (weights, optimizer state) bit for bit.
inline void expect_same_checkpoints(const std::filesystem::path& first,
                                    const std::filesystem::path& second) {
  const SafetensorsContents a = load_safetensors(first);
  const SafetensorsContents b = load_safetensors(second);
  EXPECT_EQ(a.metadata.at(kStateKey), b.metadata.at(kStateKey));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& [name, x] = a.tensors[i];
    ASSERT_EQ(name, b.tensors[i].first);
    const Tensor& y = b.tensors[i].second;
    ASSERT_EQ(x.nbytes(), y.nbytes()) << name;
    EXPECT_EQ(std::memcmp(x.raw_data(), y.raw_data(), x.nbytes()), 0) << name << " differs";
  }
}

}  // namespace cu3d::apps
