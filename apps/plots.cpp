#include "apps/plots.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/core.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "engine/atomic_file.h"
#include "kernels/error.h"

namespace cu3d::apps {
namespace {

const cv::Scalar kBlack(0, 0, 0), kGrid(220, 220, 220), kWhite(255, 255, 255);
// Matplotlib's first four colours (BGR), as the Keras tool's plots used.
const cv::Scalar kColours[] = {{180, 119, 31}, {14, 127, 255}, {44, 160, 44}, {40, 39, 214}};
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<uchar> bytes;
  CU3D_CHECK(cv::imencode(".png", image, bytes), "{}: PNG encoding failed", path.string());
  write_atomically(path,
                   std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void put_text(cv::Mat& image, const std::string& text, cv::Point at, double scale = 0.45) {
  cv::putText(image, text, at, kFont, scale, kBlack, 1, cv::LINE_AA);
}

}  // namespace

void write_curves_png(const std::filesystem::path& path, const std::string& title,
                      const std::string& y_label, const std::vector<Series>& series) {
  constexpr int kWidth = 640, kHeight = 480, kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;
  cv::Mat image(kHeight, kWidth, CV_8UC3, kWhite);
  size_t epochs = 1;
  double low = INFINITY, high = -INFINITY;
  for (const Series& s : series) {
    epochs = std::max(epochs, s.values.size());
    for (double v : s.values)
      if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
  }
  if (!std::isfinite(low)) low = 0, high = 1;
  if (high - low < 1e-9) low -= 0.5, high += 0.5;
  const int plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto to_pixel = [&](double epoch, double v) {
    const double fx = epochs == 1 ? 0.5 : (epoch - 1) / double(epochs - 1);
    return cv::Point(kLeft + int(fx * plot_w), kTop + int((high - v) / (high - low) * plot_h));
  };
  for (int tick = 0; tick <= 4; ++tick) {
    const double v = low + (high - low) * tick / 4;
    const cv::Point p = to_pixel(1, v);
    cv::line(image, {kLeft, p.y}, {kLeft + plot_w, p.y}, kGrid);
    put_text(image, fmt::format("{:.3g}", v), {5, p.y + 5});
  }
  for (size_t e = 1; e <= epochs; e += std::max<size_t>(1, epochs / 10))
    put_text(image, std::to_string(e), {to_pixel(double(e), low).x - 4, kTop + plot_h + 20});
  cv::rectangle(image, {kLeft, kTop}, {kLeft + plot_w, kTop + plot_h}, kBlack);
  put_text(image, title, {kLeft + plot_w / 2 - 60, 25}, 0.6);
  put_text(image, "epoch", {kLeft + plot_w / 2 - 20, kHeight - 10});
  put_text(image, y_label, {5, 25});
  for (size_t i = 0; i < series.size(); ++i) {
    const cv::Scalar colour = kColours[i % 4];
    const std::vector<double>& v = series[i].values;
    for (size_t e = 0; e < v.size(); ++e) {
      const cv::Point p = to_pixel(double(e + 1), v[e]);
      cv::circle(image, p, 3, colour, cv::FILLED, cv::LINE_AA);
      if (e > 0) cv::line(image, to_pixel(double(e), v[e - 1]), p, colour, 2, cv::LINE_AA);
    }
    const cv::Point legend(kLeft + plot_w - 120, kTop + 20 + 20 * int(i));
    cv::line(image, legend, legend + cv::Point(25, 0), colour, 2, cv::LINE_AA);
    put_text(image, series[i].name, legend + cv::Point(32, 5));
  }
  write_png(path, image);
}

void write_confusion_png(const std::filesystem::path& path,
                         const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& classes) {
  const int n = int(classes.size());
  CU3D_CHECK(n > 0 && int(confusion.size()) == n, "confusion matrix: {} rows for {} classes",
             confusion.size(), n);
  // Cells shrink for many classes so that UCF101's 101 stay within ~2000 pixels.
  const int cell = std::clamp(1600 / n, 16, 48), label_w = 170, top = 40;
  cv::Mat image(top + n * cell + 10, label_w + n * cell + 10, CV_8UC3, kWhite);
  put_text(image, "confusion matrix (rows: true class, columns: predicted)", {10, 25}, 0.5);
  for (int t = 0; t < n; ++t) {
    int64_t row_total = 0;
    for (int64_t v : confusion[t])
      row_total += v;
    put_text(image, classes[t].substr(0, 22), {5, top + t * cell + cell / 2 + 5}, 0.4);
    for (int p = 0; p < n; ++p) {
      const double share = row_total == 0 ? 0 : double(confusion[t][p]) / double(row_total);
      const cv::Rect box(label_w + p * cell, top + t * cell, cell, cell);
      const double shade = 255 * (1 - share);
      cv::rectangle(image, box, cv::Scalar(255, shade, shade), cv::FILLED);
      cv::rectangle(image, box, kGrid);
      if (cell >= 24 && confusion[t][p] > 0)
        cv::putText(image, std::to_string(confusion[t][p]), {box.x + 3, box.y + cell / 2 + 5},
                    kFont, 0.4, share > 0.5 ? kWhite : kBlack, 1, cv::LINE_AA);
    }
  }
  write_png(path, image);
}

}  // namespace cu3d::apps

namespace cu3d::apps {

// dot writes the PNG to a pipe and cu3d commits it like every other file: atomically, and with a
// write error that names model.png and a full disk instead of Graphviz's own message.
bool render_dot(const std::filesystem::path& dot_file, const std::filesystem::path& png) {
  if (std::system("command -v dot > /dev/null 2>&1") != 0) return false;
  CU3D_CHECK(dot_file.string().find('\'') == std::string::npos,
             "{}: a path with a quote cannot be passed to dot", dot_file.string());
  const std::string command = fmt::format("dot -Tpng '{}'", dot_file.string());
  std::FILE* pipe = ::popen(command.c_str(), "r");
  CU3D_CHECK(pipe != nullptr, "could not start dot for {}", dot_file.string());
  std::string bytes;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
    bytes.append(buffer, n);
  CU3D_CHECK(::pclose(pipe) == 0 && !bytes.empty(), "dot failed to render {}", dot_file.string());
  write_atomically(png, bytes);
  return true;
}

}  // namespace cu3d::apps
