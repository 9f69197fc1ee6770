// Shared helpers of the data-pipeline tests: a temporary folder that cleans itself up, and small
// videos with known content written through the same OpenCV writer the synthetic dataset uses.
#pragma once

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>

#include <unistd.h>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/videoio.hpp>

#include "data/synth.h"

namespace cu3d::data::testing {

// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "t";
    path_ = std::filesystem::temp_directory_path() /
            ("cu3d-" + name + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The BGR colour of quadrant q (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) in frame
// t of a quadrant video: flat areas that survive JPEG within a few levels, and different in every
// channel, frame and quadrant so that a swapped channel, frame or row shows.
inline cv::Vec3b quadrant_colour(int q, int t) {
  return cv::Vec3b(uint8_t(30 + 40 * q), uint8_t(200 - 40 * q), uint8_t(20 + 10 * t));
}

inline cv::Mat quadrant_frame(int height, int width, int t) {
  cv::Mat frame(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      frame.at<cv::Vec3b>(y, x) = quadrant_colour((y >= height / 2) * 2 + (x >= width / 2), t);
  return frame;
}

// Writes an MJPG .avi of `frames` quadrant frames.
inline void write_quadrant_video(const std::filesystem::path& path, int frames, int height,
                                 int width) {
  cv::VideoWriter writer(path.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('M', 'J', 'P', 'G'),
                         25, cv::Size(width, height), true);
  ASSERT_TRUE(writer.isOpened()) << path;
  for (int t = 0; t < frames; ++t)
    writer.write(quadrant_frame(height, width, t));
}

inline void write_bytes(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A small synthetic dataset for tests: 3 classes x 4 groups x 2 clips of 20 frames at 32x40.
inline SynthOptions tiny_synth_options() {
  SynthOptions options;
  options.classes = 3;
  options.groups = 4;
  options.clips_per_group = 2;
  options.frames = 20;
  options.height = 32;
  options.width = 40;
  options.seed = 7;
  return options;
}

}  // namespace cu3d::data::testing
