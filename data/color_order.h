// The colour order of decoded frames, apart from the decoder (data/video.h) so that code that
// only reads shards and recipes does not link OpenCV.
#pragma once

#include <string_view>

namespace cu3d::data {

// RGB is the house order; BGR is what OpenCV decodes and what imported Caffe C3D weights expect.
enum class ColorOrder { rgb, bgr, gray };

std::string_view color_order_name(ColorOrder color);
// Parses "rgb", "bgr" or "gray"; throws cu3d::Error naming the value otherwise.
ColorOrder parse_color_order(std::string_view name);
inline int color_channels(ColorOrder color) {
  return color == ColorOrder::gray ? 1 : 3;
}

}  // namespace cu3d::data
