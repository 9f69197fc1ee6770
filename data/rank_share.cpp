#include "data/rank_share.h"

#include <algorithm>

#include "kernels/error.h"

namespace cu3d::data {

std::size_t train_padding(std::size_t items, int world) {
  const std::size_t w = std::size_t(world);
  return (w - items % w) % w;
}

std::vector<std::size_t> train_share(std::size_t items, int batch_size, int rank, int world) {
  CU3D_CHECK(world >= 1 && rank >= 0 && rank < world && batch_size >= 1,
             "loader: rank {} of a world of {} (batch {}) is not a valid data-parallel share", rank,
             world, batch_size);
  const std::size_t total = items + train_padding(items, world);
  const std::size_t global = std::size_t(batch_size) * std::size_t(world);
  std::vector<std::size_t> share;
  share.reserve(total / std::size_t(world));
  for (std::size_t start = 0; start < total; start += global) {
    // The last global batch may be short; it is still split in equal parts (total divides).
    const std::size_t part = (std::min(total, start + global) - start) / std::size_t(world);
    for (std::size_t i = 0; i < part; ++i)
      share.push_back(start + std::size_t(rank) * part + i);
  }
  return share;
}

}  // namespace cu3d::data
