#pragma once
// tests/golden: fixtures that tests/golden/make_golden.py wrote with PyTorch and Keras.
#include <filesystem>

namespace cu3d::testing {

inline const std::filesystem::path kGoldenDir =
    std::filesystem::path(__FILE__).parent_path().parent_path() / "golden";

}  // namespace cu3d::testing
