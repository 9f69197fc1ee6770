#include "data/recipe.h"

#include "data/json_fields.h"

#include <cmath>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

// Sanity bounds for untrusted recipes: far above any real use, low enough that a clip's byte
// count cannot overflow or exhaust memory (4096 x 4096 x 1024 x 3 < 2^36).
constexpr int kMaxDepth = 1024;
constexpr int kMaxSide = 4096;

template <class Enum, size_t N>
std::string_view name_of(Enum value, const std::array<std::string_view, N>& names) {
  return names[size_t(value)];
}

template <class Enum, size_t N>
Enum parse_named(std::string_view text, const std::array<std::string_view, N>& names,
                 const char* field, const std::string& source) {
  for (size_t i = 0; i < N; ++i)
    if (names[i] == text) return Enum(i);
  throw Error(fmt::format("{}: recipe field '{}' has unknown value '{}'", source, field, text));
}

constexpr std::array<std::string_view, 3> kSamplingNames = {"window", "spaced", "first"};
constexpr std::array<std::string_view, 3> kCropNames = {"none", "random", "fixed"};

}  // namespace

Recipe c3d_recipe() {
  Recipe recipe;
  recipe.name = "c3d";
  recipe.mean_source = "dataset";
  return recipe;
}

Recipe keras_recipe(int depth, bool skip, bool color) {
  Recipe recipe;
  recipe.name = "keras";
  recipe.depth = depth;
  recipe.resize_height = recipe.resize_width = 32;
  recipe.crop_height = recipe.crop_width = 32;
  recipe.crop = CropKind::none;
  recipe.flip = false;
  recipe.color = color ? ColorOrder::rgb : ColorOrder::gray;
  recipe.sampling = skip ? Sampling::spaced : Sampling::first;
  recipe.scale = 1.0f / 255;
  return recipe;
}

Recipe tf_c3d_recipe() {
  Recipe recipe;
  recipe.name = "tf-c3d";
  recipe.resize_height = 120;
  recipe.resize_width = 160;
  recipe.crop = CropKind::fixed;
  recipe.crop_y = 4;
  recipe.crop_x = 24;
  recipe.flip = false;
  recipe.aligned_train_start = true;
  recipe.mean_source = "dataset";  // the seed subtracted a mean computed from its training clips
  return recipe;
}

Recipe recipe_by_name(std::string_view name) {
  if (name == "c3d") return c3d_recipe();
  if (name == "keras") return keras_recipe();
  if (name == "tf-c3d") return tf_c3d_recipe();
  throw Error(fmt::format("unknown recipe '{}'; use c3d, keras or tf-c3d", name));
}

void check_recipe(const Recipe& r) {
  const std::string& n = r.name;
  CU3D_CHECK(r.depth >= 1 && r.depth <= kMaxDepth, "recipe '{}': depth {} must be in 1..{}", n,
             r.depth, kMaxDepth);
  CU3D_CHECK(r.resize_height >= 1 && r.resize_height <= kMaxSide && r.resize_width >= 1 &&
                 r.resize_width <= kMaxSide,
             "recipe '{}': resize {}x{} must be in 1..{} on each side", n, r.resize_height,
             r.resize_width, kMaxSide);
  CU3D_CHECK(r.crop_height >= 1 && r.crop_height <= r.resize_height && r.crop_width >= 1 &&
                 r.crop_width <= r.resize_width,
             "recipe '{}': crop {}x{} must fit in the resized {}x{} frame", n, r.crop_height,
             r.crop_width, r.resize_height, r.resize_width);
  CU3D_CHECK(r.crop != CropKind::none ||
                 (r.crop_height == r.resize_height && r.crop_width == r.resize_width),
             "recipe '{}': crop 'none' needs the crop size equal to the resize size", n);
  CU3D_CHECK(r.crop != CropKind::fixed ||
                 (r.crop_y >= 0 && r.crop_x >= 0 && r.crop_y <= r.resize_height - r.crop_height &&
                  r.crop_x <= r.resize_width - r.crop_width),
             "recipe '{}': fixed crop at ({}, {}) of {}x{} leaves the {}x{} frame", n, r.crop_y,
             r.crop_x, r.crop_height, r.crop_width, r.resize_height, r.resize_width);
  CU3D_CHECK(r.stride >= 1 && r.stride <= kMaxDepth, "recipe '{}': stride {} must be in 1..{}", n,
             r.stride, kMaxDepth);
  CU3D_CHECK(r.mean.empty() || int(r.mean.size()) == color_channels(r.color),
             "recipe '{}': mean has {} values for {} channels", n, r.mean.size(),
             color_channels(r.color));
  for (float m : r.mean)
    CU3D_CHECK(std::isfinite(m) && m >= 0 && m <= 255, "recipe '{}': mean {} is not in 0..255", n,
               m);
  CU3D_CHECK(r.mean_source.empty() || r.mean_source == "dataset" || r.mean_source == "sports1m",
             "recipe '{}': mean_source '{}' must be empty, 'dataset' or 'sports1m'", n,
             r.mean_source);
  CU3D_CHECK(std::isfinite(r.scale) && r.scale > 0, "recipe '{}': scale {} must be positive", n,
             r.scale);
}

nlohmann::json recipe_to_json(const Recipe& r) {
  return {{"name", r.name},
          {"depth", r.depth},
          {"resize_height", r.resize_height},
          {"resize_width", r.resize_width},
          {"crop_height", r.crop_height},
          {"crop_width", r.crop_width},
          {"crop", name_of(r.crop, kCropNames)},
          {"crop_y", r.crop_y},
          {"crop_x", r.crop_x},
          {"flip", r.flip},
          {"color", color_order_name(r.color)},
          {"sampling", name_of(r.sampling, kSamplingNames)},
          {"stride", r.stride},
          {"aligned_train_start", r.aligned_train_start},
          {"mean", r.mean},
          {"mean_source", r.mean_source},
          {"scale", r.scale}};
}

Recipe recipe_from_json(const nlohmann::json& json, const std::string& source) {
  Recipe r;
  try {
    r.name = json.at("name").get<std::string>();
    r.depth = get_integer<int>(json, "depth", source);
    r.resize_height = get_integer<int>(json, "resize_height", source);
    r.resize_width = get_integer<int>(json, "resize_width", source);
    r.crop_height = get_integer<int>(json, "crop_height", source);
    r.crop_width = get_integer<int>(json, "crop_width", source);
    r.crop = parse_named<CropKind>(json.at("crop").get<std::string>(), kCropNames, "crop", source);
    r.crop_y = get_integer<int>(json, "crop_y", source);
    r.crop_x = get_integer<int>(json, "crop_x", source);
    r.flip = json.at("flip").get<bool>();
    r.color = parse_color_order(json.at("color").get<std::string>());
    r.sampling = parse_named<Sampling>(json.at("sampling").get<std::string>(), kSamplingNames,
                                       "sampling", source);
    r.stride = get_integer<int>(json, "stride", source);
    r.aligned_train_start = json.at("aligned_train_start").get<bool>();
    r.mean = json.at("mean").get<std::vector<float>>();
    r.mean_source = json.at("mean_source").get<std::string>();
    r.scale = json.at("scale").get<float>();
  } catch (const nlohmann::json::exception& error) {
    throw Error(fmt::format("{}: malformed recipe: {}", source, error.what()));
  }
  check_recipe(r);
  return r;
}

std::array<int, 4> clip_shape(const Recipe& recipe) {
  return {recipe.depth, recipe.crop_height, recipe.crop_width, color_channels(recipe.color)};
}

DecodeOptions decode_options(const Recipe& recipe) {
  return {.color = recipe.color, .height = recipe.resize_height, .width = recipe.resize_width};
}

std::vector<float> sports1m_mean(ColorOrder color) {
  const auto [b, g, r] = kSports1mMeanBgr;
  switch (color) {
    case ColorOrder::bgr:
      return {b, g, r};
    case ColorOrder::rgb:
      return {r, g, b};
    case ColorOrder::gray:
      return {0.114f * b + 0.587f * g + 0.299f * r};
  }
  return {};
}

}  // namespace cu3d::data
