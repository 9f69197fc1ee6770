// C3D's max-pools as they follow its conv layers (layers/presets.cpp): 1x2x2 after conv1a,
// 2x2x2 after conv2a, conv3b, conv4b and conv5b, pool5 padding H and W by 1 (2x7x7 -> 1x4x4).
#pragma once

#include <string>

#include "gpu/cases.h"

namespace cu3d::bench {

inline bool followed_by_pool(const std::string& layer) {
  return layer == "conv1a" || layer == "conv2a" || layer == "conv3b" || layer == "conv4b" ||
         layer == "conv5b";
}

inline Pool3dShape pool_after(const cases::ConvLayer& layer) {
  const Conv3dShape& s = layer.shape;
  const Dims3 window = layer.name == "conv1a" ? Dims3{1, 2, 2} : Dims3{2, 2, 2};
  const Dims3 pad = layer.name == "conv5b" ? Dims3{0, 1, 1} : Dims3{0, 0, 0};
  return Pool3dShape::make(s.n, s.out, s.k, window, window, Padding::explicit_, pad);
}

}  // namespace cu3d::bench
