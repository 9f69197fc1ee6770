#include "data/color_order.h"

#include <fmt/format.h>

#include "kernels/error.h"

namespace cu3d::data {

std::string_view color_order_name(ColorOrder color) {
  switch (color) {
    case ColorOrder::rgb:
      return "rgb";
    case ColorOrder::bgr:
      return "bgr";
    case ColorOrder::gray:
      return "gray";
  }
  return "?";
}

ColorOrder parse_color_order(std::string_view name) {
  if (name == "rgb") return ColorOrder::rgb;
  if (name == "bgr") return ColorOrder::bgr;
  if (name == "gray") return ColorOrder::gray;
  throw Error(fmt::format("unknown colour order '{}'; use rgb, bgr or gray", name));
}

}  // namespace cu3d::data
