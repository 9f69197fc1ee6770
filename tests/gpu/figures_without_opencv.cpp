// The run's figures (apps/plots.h) for the GPU suite, which links the training loop
// (cu3d_training) without apps/plots.cpp: that draws with OpenCV, and the GPU machines' image has
// none. Each figure is a 1 x 1 white PNG, written atomically where the real one would be, so the
// trainer's files (and the TensorBoard log, which embeds the confusion matrix) are all there; the
// figures themselves are checked by the CPU suite
// (AppCli.TrainEvalPredictSummaryWriteValidOutputs).
#include <string_view>

#include "apps/plots.h"
#include "engine/atomic_file.h"

namespace cu3d::apps {
namespace {

// IHDR 1 x 1, 8-bit RGB; IDAT one white pixel (zlib); IEND.
constexpr unsigned char kWhitePixelPng[] = {
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00,
    0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9c, 0x63, 0xf8, 0xff, 0xff, 0x3f, 0x00, 0x05, 0xfe, 0x02, 0xfe, 0x0d, 0xef, 0x46,
    0xb8, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};

void write_white_pixel(const std::filesystem::path& path) {
  write_atomically(path, std::string_view(reinterpret_cast<const char*>(kWhitePixelPng),
                                          sizeof(kWhitePixelPng)));
}

}  // namespace

void write_curves_png(const std::filesystem::path& path, const std::string&, const std::string&,
                      const std::vector<Series>&) {
  write_white_pixel(path);
}

void write_confusion_png(const std::filesystem::path& path,
                         const std::vector<std::vector<int64_t>>&,
                         const std::vector<std::string>&) {
  write_white_pixel(path);
}

bool render_dot(const std::filesystem::path&, const std::filesystem::path&) {
  return false;  // as on a machine without Graphviz: model.dot only
}

}  // namespace cu3d::apps
