// A generated corpus of bad videos for the robustness tests: truncated files, random bytes with a
// video extension, zero frames, one frame, frames of differing sizes, huge declared dimensions,
// a wrong extension, a FIFO and a folder named like videos, and symlink loops. The MJPEG AVIs are
// assembled by hand (RIFF chunks around JPEG frames) so that the header can say what the frames
// do not: OpenCV's writer would refuse both differing sizes and a 100000-pixel-wide header.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include "test_data_fixtures.h"

namespace cu3d::data::testing {

// What a decoder must do with a case: decode it, or refuse it with one warning; `either` where
// FFmpeg versions differ (a file cut in the middle may or may not still open).
enum class Expect { decoded, skipped, either };

struct HostileVideo {
  std::string name;            // the case, for messages
  std::filesystem::path path;  // where it lies
  Expect expect;
};

namespace avi {

inline void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out += char((v >> (8 * i)) & 0xff);
}
inline void put_u16(std::string& out, uint16_t v) {
  out += char(v & 0xff);
  out += char(v >> 8);
}
inline std::string chunk(const std::string& id, const std::string& body) {
  std::string out = id;
  put_u32(out, uint32_t(body.size()));
  out += body;
  if (body.size() % 2) out += '\0';
  return out;
}
inline std::string list(const std::string& type, const std::string& body) {
  return chunk("LIST", type + body);
}

// An MJPEG AVI holding `frames` as JPEGs, with `width` x `height` written in its headers.
inline std::string mjpeg(const std::vector<cv::Mat>& frames, uint32_t width, uint32_t height) {
  std::string avih;
  for (uint32_t v :
       {40000u, 0u, 0u, 0x10u, uint32_t(frames.size()), 0u, 1u, 0u, width, height, 0u, 0u, 0u, 0u})
    put_u32(avih, v);
  std::string strh = "vidsMJPG";
  for (uint32_t v : {0u, 0u, 0u, 1u, 25u, 0u, uint32_t(frames.size()), 0u, 0xffffffffu, 0u})
    put_u32(strh, v);
  for (int i = 0; i < 4; ++i)
    put_u16(strh, 0);
  std::string strf;
  put_u32(strf, 40);
  put_u32(strf, width);
  put_u32(strf, height);
  put_u16(strf, 1);
  put_u16(strf, 24);
  strf += "MJPG";
  for (int i = 0; i < 5; ++i)
    put_u32(strf, 0);
  std::string movi = "movi", index;
  for (const cv::Mat& frame : frames) {
    std::vector<uint8_t> jpeg;
    cv::imencode(".jpg", frame, jpeg);
    put_u32(index, 0x63643030);  // "00dc"
    put_u32(index, 0x10);        // key frame
    put_u32(index, uint32_t(movi.size()));
    put_u32(index, uint32_t(jpeg.size()));
    movi += chunk("00dc", std::string(jpeg.begin(), jpeg.end()));
  }
  const std::string hdrl =
      list("hdrl", chunk("avih", avih) + list("strl", chunk("strh", strh) + chunk("strf", strf)));
  return chunk("RIFF", "AVI " + hdrl + chunk("LIST", movi) + chunk("idx1", index));
}

}  // namespace avi

// Writes the corpus into `dir` (which must exist); `good` is a valid video to cut and rename.
inline std::vector<HostileVideo> write_hostile_videos(const std::filesystem::path& dir,
                                                      const std::filesystem::path& good) {
  namespace fs = std::filesystem;
  std::vector<HostileVideo> corpus;
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto add = [&](const std::string& name, const std::string& file, const std::string& contents,
                 Expect expect) {
    write_bytes(dir / file, contents);
    corpus.push_back({name, dir / file, expect});
  };
  add("truncated to its first 200 bytes", "truncated_header.avi", bytes.substr(0, 200),
      Expect::skipped);
  std::mt19937 gen(7);
  std::string noise(4096, '\0');
  for (char& c : noise)
    c = char(gen());
  add("random bytes", "noise.avi", noise, Expect::skipped);
  add("empty file", "empty.mp4", "", Expect::skipped);
  add("zero frames", "zero_frames.avi", avi::mjpeg({}, 32, 32), Expect::skipped);
  add("one frame", "one_frame.avi", avi::mjpeg({quadrant_frame(32, 32, 0)}, 32, 32),
      Expect::decoded);
  add("frames of differing sizes", "differing_sizes.avi",
      avi::mjpeg({quadrant_frame(32, 32, 0), quadrant_frame(48, 64, 1), quadrant_frame(16, 8, 2),
                  quadrant_frame(32, 32, 3)},
                 32, 32),
      Expect::decoded);
  // A header larger than its frames: FFmpeg refuses a picture above 2^28 / 8 pixels ("Picture
  // size ... is invalid") and decodes the real frames; at 10000x10000 it fails to decode them.
  const std::vector<cv::Mat> two = {quadrant_frame(32, 32, 0), quadrant_frame(32, 32, 1)};
  add("huge declared dimensions", "huge_header.avi", avi::mjpeg(two, 10000, 10000),
      Expect::skipped);
  add("dimensions FFmpeg refuses", "absurd_header.avi", avi::mjpeg(two, 100000, 100000),
      Expect::either);
  // Frames really that wide (a few KB as JPEG): cu3d's own limit refuses them.
  add("frames above the size limit", "too_wide.avi",
      avi::mjpeg({quadrant_frame(16, 8200, 0)}, 8200, 16), Expect::skipped);
  add("a valid video with the wrong extension", "really_an_avi.mp4", bytes, Expect::decoded);

  fs::create_directories(dir / "folder.avi");
  corpus.push_back({"a folder named like a video", dir / "folder.avi", Expect::skipped});
  EXPECT_EQ(::mkfifo((dir / "fifo.avi").c_str(), 0600), 0);  // opening it would block forever
  corpus.push_back({"a FIFO named like a video", dir / "fifo.avi", Expect::skipped});
  add("truncated in the middle", "truncated_middle.avi", bytes.substr(0, bytes.size() / 2),
      Expect::either);
  fs::create_symlink("loop_b.avi", dir / "loop_a.avi");
  fs::create_symlink("loop_a.avi", dir / "loop_b.avi");
  corpus.push_back({"a symlink loop", dir / "loop_a.avi", Expect::skipped});
  corpus.push_back({"the other end of the symlink loop", dir / "loop_b.avi", Expect::skipped});
  // As root (the CI container) permissions do not stop reads, so the case needs another user.
  if (::geteuid() != 0) {
    add("unreadable permissions", "unreadable.avi", bytes, Expect::skipped);
    fs::permissions(dir / "unreadable.avi", fs::perms::none);
  }
  return corpus;
}

}  // namespace cu3d::data::testing
