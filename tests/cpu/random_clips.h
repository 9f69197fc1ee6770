// A uint8 clip batch of random bytes, the input of normalize_clips' tests on both devices.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/tensor.h"

namespace cu3d::testing {

inline Tensor random_clips(const Shape& shape, uint32_t seed) {
  std::mt19937 random(seed);
  std::vector<uint8_t> bytes(size_t(shape_numel(shape)));
  for (uint8_t& byte : bytes)
    byte = uint8_t(random());
  return Tensor::from_vector(bytes, shape);
}

}  // namespace cu3d::testing
