// Dims2: the (height, width) twin of kernels/shapes.h's Dims3, for the 2D ops' parameters
// (conv2d, max_pool2d), which run as their 3D versions with depth 1.
#pragma once

#include "kernels/shapes.h"

namespace cu3d {

struct Dims2 {
  int h = 1, w = 1;
  bool operator==(const Dims2&) const = default;
  // The 3D extent with `depth` along D.
  Dims3 with_depth(int depth) const { return {depth, h, w}; }
};

}  // namespace cu3d
