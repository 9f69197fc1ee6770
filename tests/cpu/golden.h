#pragma once
// tests/golden: fixtures written once by PyTorch and Keras (tests/golden/make_golden.py), checked
// in.
#include <filesystem>

namespace cu3d::testing {

inline const std::filesystem::path kGoldenDir =
    std::filesystem::path(__FILE__).parent_path().parent_path() / "golden";

}  // namespace cu3d::testing
