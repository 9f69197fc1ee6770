#include "data/video.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

// A declared frame count above this is treated as a lie when reserving memory (an hour at 30 fps).
constexpr int kMaxReserveFrames = 108000;

cv::VideoCapture open_video(const std::filesystem::path& path) {
  CU3D_CHECK(std::filesystem::is_regular_file(path), "{}: no such video file", path.string());
  cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG);
  CU3D_CHECK(capture.isOpened(),
             "{}: cannot open the video (not a video, or a codec this FFmpeg lacks); "
             "re-encode it or remove it from the dataset",
             path.string());
  return capture;
}

// Shrinking averages pixels (INTER_AREA, no aliasing of fine texture); enlarging interpolates.
void resize_frame(const cv::Mat& frame, int height, int width, cv::Mat& out) {
  if (frame.rows == height && frame.cols == width) {
    out = frame;
    return;
  }
  const bool shrinking = int64_t(height) * width < int64_t(frame.rows) * frame.cols;
  cv::resize(frame, out, cv::Size(width, height), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
}

// OpenCV's FFmpeg backend delivers BGR (or gray for some sources); convert to the wanted order.
void convert_color(const cv::Mat& frame, ColorOrder color, cv::Mat& out) {
  const bool gray_in = frame.channels() == 1;
  switch (color) {
    case ColorOrder::bgr:
      if (gray_in)
        cv::cvtColor(frame, out, cv::COLOR_GRAY2BGR);
      else
        out = frame;
      return;
    case ColorOrder::rgb:
      cv::cvtColor(frame, out, gray_in ? cv::COLOR_GRAY2RGB : cv::COLOR_BGR2RGB);
      return;
    case ColorOrder::gray:
      if (gray_in)
        out = frame;
      else
        cv::cvtColor(frame, out, cv::COLOR_BGR2GRAY);
      return;
  }
}

void append_frame(const cv::Mat& frame, Clip& clip) {
  const cv::Mat packed = frame.isContinuous() ? frame : frame.clone();
  clip.pixels.insert(clip.pixels.end(), packed.data, packed.data + clip.frame_bytes());
  ++clip.frames;
}

Clip decode_frames(const std::filesystem::path& path, const DecodeOptions& options) {
  cv::VideoCapture capture = open_video(path);
  Clip clip;
  clip.channels = color_channels(options.color);
  cv::Mat frame, resized, converted;
  while (options.max_frames == 0 || clip.frames < options.max_frames) {
    if (!capture.read(frame) || frame.empty()) break;
    if (clip.frames == 0) {
      clip.height = options.height > 0 ? options.height : frame.rows;
      clip.width = options.width > 0 ? options.width : frame.cols;
      const int declared = int(capture.get(cv::CAP_PROP_FRAME_COUNT));
      const int hint =
          std::clamp(options.max_frames > 0 ? options.max_frames : declared, 1, kMaxReserveFrames);
      clip.pixels.reserve(size_t(hint) * clip.frame_bytes());
    }
    resize_frame(frame, clip.height, clip.width, resized);
    convert_color(resized, options.color, converted);
    append_frame(converted, clip);
  }
  CU3D_CHECK(clip.frames > 0, "{}: the video has no decodable frame; re-encode it or remove it",
             path.string());
  return clip;
}

}  // namespace

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

Clip decode_video(const std::filesystem::path& path, const DecodeOptions& options) {
  CU3D_CHECK(options.height >= 0 && options.width >= 0 && options.max_frames >= 0,
             "{}: decode size {}x{} and max_frames {} must not be negative", path.string(),
             options.height, options.width, options.max_frames);
  // A corrupt stream can make OpenCV itself throw; callers see the one cu3d error type.
  try {
    return decode_frames(path, options);
  } catch (const cv::Exception& error) {
    throw Error(fmt::format("{}: OpenCV failed while decoding: {}", path.string(), error.what()));
  }
}

int declared_frame_count(const std::filesystem::path& path) {
  cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG);
  if (!capture.isOpened()) return 0;
  return std::max(0, int(capture.get(cv::CAP_PROP_FRAME_COUNT)));
}

std::string DecodeStats::summary() const {
  return fmt::format(
      "{} videos decoded, {} skipped (unreadable or empty), {} looped (shorter than a clip)",
      decoded.load(), skipped.load(), looped.load());
}

std::optional<Clip> try_decode_video(const std::filesystem::path& path,
                                     const DecodeOptions& options, DecodeStats& stats) {
  try {
    Clip clip = decode_video(path, options);
    ++stats.decoded;
    return clip;
  } catch (const Error& error) {
    fmt::print(stderr, "warning: skipping video: {}\n", error.what());
    ++stats.skipped;
    return std::nullopt;
  }
}

}  // namespace cu3d::data
