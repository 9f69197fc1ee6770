#include "data/synth.h"

#include <array>
#include <cmath>
#include <numbers>

#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "data/random.h"
#include "data/ucf_name.h"
#include "engine/atomic_file.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace {

constexpr double kPi = std::numbers::pi;
// Sub-pixel bits for cv::fillPoly, so slow motion moves the shape smoothly rather than in steps.
constexpr int kSubpixelBits = 4;
// UCF101 holds out 7 of 25 groups per split; we round 30% of the groups.
constexpr int kTestGroupPercent = 30;

void check_options(const SynthOptions& o) {
  CU3D_CHECK(o.classes >= 1 && o.classes <= kSynthMotions, "synth: classes={} must be in 1..{}",
             o.classes, kSynthMotions);
  CU3D_CHECK(o.groups >= 2 && o.groups <= 99, "synth: groups={} must be in 2..99", o.groups);
  CU3D_CHECK(o.clips_per_group >= 1 && o.clips_per_group <= 99,
             "synth: clips_per_group={} must be in 1..99", o.clips_per_group);
  CU3D_CHECK(o.frames >= 2 && o.frames <= 10000, "synth: frames={} must be in 2..10000", o.frames);
  CU3D_CHECK(o.height >= 16 && o.width >= 16 && o.height <= 4096 && o.width <= 4096,
             "synth: size {}x{} must be between 16 and 4096 on each side", o.height, o.width);
  CU3D_CHECK(o.fps > 0 && o.fps <= 1000, "synth: fps={} must be in (0, 1000]", o.fps);
}

double luminance(const cv::Scalar& bgr) {
  return 0.114 * bgr[0] + 0.587 * bgr[1] + 0.299 * bgr[2];
}

cv::Scalar random_colour(SeededRandom& random) {
  return {random.uniform(0, 256), random.uniform(0, 256), random.uniform(0, 256)};
}

// A colour at least `contrast` luminance levels away from `from`, so the shape stays visible.
cv::Scalar contrasting_colour(SeededRandom& random, const cv::Scalar& from, double contrast) {
  for (int attempt = 0; attempt < 64; ++attempt) {
    const cv::Scalar colour = random_colour(random);
    if (std::abs(luminance(colour) - luminance(from)) >= contrast) return colour;
  }
  return luminance(from) < 128 ? cv::Scalar(255, 255, 255) : cv::Scalar(0, 0, 0);
}

// 3 to 5 vertices at jittered angles and radii: no rotational symmetry, so spin is visible.
std::vector<cv::Point2d> irregular_polygon(SeededRandom& random) {
  const int vertices = 3 + int(random.below(3));
  std::vector<cv::Point2d> shape;
  for (int i = 0; i < vertices; ++i) {
    const double angle = 2 * kPi * (i + random.uniform(-0.3, 0.3)) / vertices;
    const double radius = random.uniform(0.55, 1.0);
    shape.emplace_back(radius * std::cos(angle), radius * std::sin(angle));
  }
  return shape;
}

// The scene a group shares: background, colours, shape, distractor.
void draw_group_scene(const SynthOptions& o, int class_index, int group, SynthClip& clip) {
  SeededRandom random(mix_seed(o.seed, uint64_t(class_index) * 1000 + uint64_t(group)));
  clip.background = random_colour(random);
  clip.foreground = contrasting_colour(random, clip.background, 80);
  clip.distractor = contrasting_colour(random, clip.background, 40);
  clip.shape = irregular_polygon(random);
  const double side = std::min(o.height, o.width);
  clip.distractor_radius = random.uniform(0.05, 0.1) * side;
  clip.distractor_centre = {random.uniform(0, o.width), random.uniform(0, o.height)};
}

// Radii of the shape, as fractions of the frame's shorter side, shared by every class: a frame's
// shape size must not tell "rotates" (big) from "moves" (small).
constexpr double kMinRadius = 0.08, kMaxRadius = 0.30;

// Every frame of every class shows one shape at a uniform position on the torus (it wraps across
// the edges), with a log-uniform radius in [kMinRadius, kMaxRadius) and a uniform angle, so no
// single frame, at any time in the clip, tells the class: only the change between frames does. A
// start position on one side of the frame would give away the direction of a move, a small start
// radius a growth. Growth and shrinkage wrap too, in log radius: a shape that reaches the largest
// radius comes back at the smallest.
void draw_clip_motion(const SynthOptions& o, SynthClip& clip, SeededRandom& random) {
  const double side = std::min(o.height, o.width);
  const double steps = o.frames - 1;
  clip.angle = random.uniform(0, 2 * kPi);
  clip.min_radius = kMinRadius * side;
  clip.max_radius = kMaxRadius * side;
  clip.radius = clip.min_radius * std::pow(kMaxRadius / kMinRadius, random.uniform(0, 1));
  clip.start = {random.uniform(0, o.width), random.uniform(0, o.height)};
  switch (clip.motion) {
    case Motion::move_left:
    case Motion::move_right:
    case Motion::move_up:
    case Motion::move_down: {
      const bool horizontal = clip.motion == Motion::move_left || clip.motion == Motion::move_right;
      const int forward =
          clip.motion == Motion::move_right || clip.motion == Motion::move_down ? 1 : -1;
      const double travel = random.uniform(0.25, 0.45) * (horizontal ? o.width : o.height);
      (horizontal ? clip.velocity.x : clip.velocity.y) = forward * travel / steps;
      return;
    }
    case Motion::rotate_cw:
    case Motion::rotate_ccw: {
      // A quarter to 0.6 of a turn over the clip. Image y points down, so a growing angle turns
      // clockwise on screen.
      const double turn = random.uniform(0.25, 0.6) * 2 * kPi;
      clip.spin = (clip.motion == Motion::rotate_cw ? 1 : -1) * turn / steps;
      return;
    }
    case Motion::grow:
    case Motion::shrink: {
      const double factor = random.uniform(1.5, 2.0);
      clip.growth = std::pow(clip.motion == Motion::grow ? factor : 1 / factor, 1 / steps);
      return;
    }
  }
}

// x in [0, period).
double wrap(double x, double period) {
  const double r = std::fmod(x, period);
  return r < 0 ? r + period : r;
}

// The radius at frame t, wrapped in log space into [min_radius, max_radius).
double radius_at(const SynthClip& clip, int t) {
  const double log_min = std::log(clip.min_radius);
  const double span = std::log(clip.max_radius) - log_min;
  const double log_radius = std::log(clip.radius) + t * std::log(clip.growth);
  return std::exp(log_min + wrap(log_radius - log_min, span));
}

void add_noise(const SynthClip& clip, int t, cv::Mat& frame) {
  cv::RNG rng(mix_seed(clip.noise_seed, uint64_t(t)));
  cv::Mat noise(frame.size(), CV_16SC3), widened;
  rng.fill(noise, cv::RNG::NORMAL, 0, clip.noise_sigma);
  frame.convertTo(widened, CV_16SC3);
  widened += noise;
  widened.convertTo(frame, CV_8UC3);  // saturates to 0..255
}

void write_video(const std::filesystem::path& path, const SynthClip& clip, double fps) {
  // The temporary keeps the .avi extension: OpenCV picks the container from it.
  const std::filesystem::path partial = path.parent_path() / (path.stem().string() + ".tmp.avi");
  {
    cv::VideoWriter writer(partial.string(), cv::CAP_FFMPEG,
                           cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps,
                           cv::Size(clip.width, clip.height), true);
    CU3D_CHECK(writer.isOpened(),
               "{}: OpenCV cannot open an MJPG writer (is OpenCV built with FFmpeg?)",
               partial.string());
    for (int t = 0; t < clip.frames; ++t)
      writer.write(draw_synth_frame(clip, t));
  }
  std::filesystem::rename(partial, path);
}

std::string split_line(const std::string& class_name, const std::string& file, int label,
                       bool with_label) {
  const std::string entry = class_name + "/" + file;
  return with_label ? fmt::format("{} {}\n", entry, label) : entry + "\n";
}

// Official-style lists: split K tests groups (K-1)*held+1 .. K*held, trains on the rest.
void write_split_lists(const std::filesystem::path& root, const SynthOptions& o) {
  const std::filesystem::path lists = root / "ucfTrainTestlist";
  std::filesystem::create_directories(lists);
  const int held = std::max(1, (o.groups * kTestGroupPercent + 50) / 100);
  const int splits = std::min(3, (o.groups - 1) / held);
  std::string class_index;
  for (int c = 0; c < o.classes; ++c)
    class_index += fmt::format("{} {}\n", c + 1, synth_class_name(Motion(c)));
  write_atomically(lists / "classInd.txt", class_index);
  for (int split = 1; split <= splits; ++split) {
    std::string train, test;
    for (int c = 0; c < o.classes; ++c) {
      const std::string name = synth_class_name(Motion(c));
      for (int g = 1; g <= o.groups; ++g) {
        const bool tested = g > (split - 1) * held && g <= split * held;
        for (int k = 1; k <= o.clips_per_group; ++k) {
          const std::string file = format_ucf_name({name, g, k});
          (tested ? test : train) += split_line(name, file, c + 1, !tested);
        }
      }
    }
    write_atomically(lists / fmt::format("trainlist{:02d}.txt", split), train);
    write_atomically(lists / fmt::format("testlist{:02d}.txt", split), test);
  }
}

}  // namespace

std::string synth_class_name(Motion motion) {
  static const std::array<const char*, kSynthMotions> names = {
      "MoveLeft",        "MoveRight",           "MoveUp", "MoveDown",
      "RotateClockwise", "RotateAnticlockwise", "Grow",   "Shrink"};
  return names[size_t(motion)];
}

SynthClip synth_clip(const SynthOptions& options, int class_index, int group, int clip_number) {
  check_options(options);
  SynthClip clip;
  clip.motion = Motion(class_index);
  clip.frames = options.frames;
  clip.height = options.height;
  clip.width = options.width;
  draw_group_scene(options, class_index, group, clip);
  const uint64_t clip_id = (uint64_t(class_index) * 1000 + uint64_t(group)) * 1000 + clip_number;
  SeededRandom random(mix_seed(options.seed ^ 0x5eed5eed, clip_id));
  draw_clip_motion(options, clip, random);
  clip.noise_sigma = random.uniform(2, 8);
  clip.noise_seed = random.next();
  return clip;
}

cv::Mat draw_synth_frame(const SynthClip& clip, int t) {
  cv::Mat frame(clip.height, clip.width, CV_8UC3, clip.background);
  const double scale = 1 << kSubpixelBits;
  cv::circle(frame, cv::Point(clip.distractor_centre * scale), int(clip.distractor_radius * scale),
             clip.distractor, cv::FILLED, cv::LINE_AA, kSubpixelBits);
  const cv::Point2d moved = clip.start + clip.velocity * t;
  const cv::Point2d centre(wrap(moved.x, clip.width), wrap(moved.y, clip.height));
  const double radius = radius_at(clip, t);
  const double angle = clip.angle + clip.spin * t;
  const double c = std::cos(angle), s = std::sin(angle);
  // The shape on the torus: drawn at its place and at the 8 copies one frame away, so the part
  // that leaves through one edge comes in through the opposite one.
  std::vector<std::vector<cv::Point>> copies;
  for (int dy = -1; dy <= 1; ++dy)
    for (int dx = -1; dx <= 1; ++dx) {
      const cv::Point2d at = centre + cv::Point2d(dx * clip.width, dy * clip.height);
      std::vector<cv::Point>& polygon = copies.emplace_back();
      for (const cv::Point2d& v : clip.shape) {
        const cv::Point2d p = at + radius * cv::Point2d(c * v.x - s * v.y, s * v.x + c * v.y);
        polygon.emplace_back(cvRound(p.x * scale), cvRound(p.y * scale));
      }
    }
  cv::fillPoly(frame, copies, clip.foreground, cv::LINE_AA, kSubpixelBits);
  add_noise(clip, t, frame);
  return frame;
}

void write_synth_dataset(const std::filesystem::path& root, const SynthOptions& options) {
  check_options(options);
  for (int c = 0; c < options.classes; ++c) {
    const std::string name = synth_class_name(Motion(c));
    std::filesystem::create_directories(root / name);
    for (int g = 1; g <= options.groups; ++g)
      for (int k = 1; k <= options.clips_per_group; ++k)
        write_video(root / name / format_ucf_name({name, g, k}), synth_clip(options, c, g, k),
                    options.fps);
  }
  write_split_lists(root, options);
}

}  // namespace cu3d::data
