#include "layers/init.h"

#include <cmath>

namespace cu3d::init {

Tensor glorot_uniform(const Shape& shape, int64_t fan_in, int64_t fan_out, Generator& gen) {
  const double limit = std::sqrt(6.0 / double(fan_in + fan_out));
  return Tensor::uniform(shape, -limit, limit, gen);
}

Tensor pytorch_uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double limit = 1.0 / std::sqrt(double(fan_in));
  return Tensor::uniform(shape, -limit, limit, gen);
}

}  // namespace cu3d::init
