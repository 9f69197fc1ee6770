#include "data/video.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "kernels/error.h"

namespace cu3d::data {
namespace {

// A declared frame count above this is treated as a lie when reserving memory (an hour at 30 fps).
constexpr int kMaxReserveFrames = 108000;
// Limits on what one video may claim (hostile or broken files): 8K UHD is 7680x4320, so a larger
// side is refused before the decoder allocates for it.
constexpr int kMaxFrameSide = 8192;

// What a path that exists but is no regular file is, for the warning (a FIFO would block the
// decoder forever, a looping symlink throws from std::filesystem).
std::string not_a_video_reason(const std::filesystem::path& path) {
  std::error_code error;
  const auto status = std::filesystem::status(path, error);
  if (error) return fmt::format("cannot be read ({})", error.message());
  switch (status.type()) {
    case std::filesystem::file_type::not_found:
      return "no such video file";
    case std::filesystem::file_type::directory:
      return "is a folder, not a video file";
    default:
      return "is not a regular file (a FIFO, socket or device)";
  }
}

cv::VideoCapture open_video(const std::filesystem::path& path, const DecodeOptions& options) {
  std::error_code error;
  CU3D_CHECK(std::filesystem::is_regular_file(path, error) && !error, "{}: {}", path.string(),
             not_a_video_reason(path));
  // FFmpeg's interrupt callback enforces these on a stalled open or read (a network file
  // system, a hostile stream), which the between-frames check below cannot. At least a second:
  // FFmpeg fails an interrupted read as a missing frame, so a tighter limit is left to that check.
  const int timeout_ms = int(std::clamp(options.time_limit_seconds * 1000, 1000.0, 2e9));
  cv::VideoCapture capture(
      path.string(), cv::CAP_FFMPEG,
      {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv::CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms});
  CU3D_CHECK(capture.isOpened(),
             "{}: cannot open the video (not a video, or a codec this FFmpeg lacks); "
             "re-encode it or remove it from the dataset",
             path.string());
  const double width = capture.get(cv::CAP_PROP_FRAME_WIDTH);
  const double height = capture.get(cv::CAP_PROP_FRAME_HEIGHT);
  CU3D_CHECK(width <= kMaxFrameSide && height <= kMaxFrameSide,
             "{}: the header declares {}x{} frames, above the {}x{} limit (a corrupt or hostile "
             "file); re-encode it or remove it",
             path.string(), width, height, kMaxFrameSide, kMaxFrameSide);
  return capture;
}

// A frame larger than any the header may declare, or a decode running past its time limit,
// stops the video.
void check_frame(const std::filesystem::path& path, const cv::Mat& frame, int index,
                 const DecodeOptions& options, std::chrono::steady_clock::time_point start) {
  CU3D_CHECK(frame.rows <= kMaxFrameSide && frame.cols <= kMaxFrameSide,
             "{}: frame {} is {}x{}, above the {}x{} limit; re-encode the video or remove it",
             path.string(), index, frame.cols, frame.rows, kMaxFrameSide, kMaxFrameSide);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CU3D_CHECK(elapsed <= options.time_limit_seconds,
             "{}: decoding took over {} s (stopped at frame {}); the file is damaged or far longer "
             "than a clip needs; re-encode or shorten it",
             path.string(), options.time_limit_seconds, index);
  CU3D_CHECK(index < kMaxReserveFrames,
             "{}: more than {} frames (an hour at 30 fps); cut the video into clips", path.string(),
             kMaxReserveFrames);
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
  const auto start = std::chrono::steady_clock::now();
  cv::VideoCapture capture = open_video(path, options);
  Clip clip;
  clip.channels = color_channels(options.color);
  cv::Mat frame, resized, converted;
  while (options.max_frames == 0 || clip.frames < options.max_frames) {
    if (!capture.read(frame) || frame.empty()) break;
    check_frame(path, frame, clip.frames, options, start);
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

Clip decode_video(const std::filesystem::path& path, const DecodeOptions& options) {
  CU3D_CHECK(options.height >= 0 && options.width >= 0 && options.max_frames >= 0 &&
                 options.time_limit_seconds > 0,
             "{}: decode size {}x{}, max_frames {} and time limit {} s must not be negative",
             path.string(), options.height, options.width, options.max_frames,
             options.time_limit_seconds);
  // A corrupt stream can make OpenCV itself throw; callers see the one cu3d error type.
  try {
    return decode_frames(path, options);
  } catch (const cv::Exception& error) {
    throw Error(fmt::format("{}: OpenCV failed while decoding: {}", path.string(), error.what()));
  }
}

int declared_frame_count(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error) || error) return 0;  // never open a FIFO
  cv::VideoCapture capture(path.string(), cv::CAP_FFMPEG);
  if (!capture.isOpened()) return 0;
  return std::max(0, int(capture.get(cv::CAP_PROP_FRAME_COUNT)));
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
