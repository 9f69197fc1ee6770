#include "apps/tensorboard_events.h"

#include <unistd.h>

#include <array>
#include <climits>
#include <iterator>

#include <fmt/core.h>

#include "engine/protobuf_writer.h"
#include "kernels/error.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;

// The reflected Castagnoli polynomial 0x1EDC6F41.
constexpr uint32_t kCastagnoli = 0x82f63b78u;
// tensorflow/core/lib/hash/crc32c.h: kMaskDelta.
constexpr uint32_t kMaskDelta = 0xa282ead8u;
// PNG's IHDR puts width and height (big-endian u32) at these offsets.
constexpr size_t kPngWidthOffset = 16, kPngHeightOffset = 20;
constexpr int kRgbColorspace = 3;  // Summary.Image.colorspace

std::array<uint32_t, 256> crc_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit)
      crc = (crc >> 1) ^ ((crc & 1) ? kCastagnoli : 0);
    table[i] = crc;
  }
  return table;
}

std::string little_endian(uint64_t value, int bytes) {
  std::string out(size_t(bytes), '\0');
  for (int i = 0; i < bytes; ++i)
    out[size_t(i)] = char(value >> (8 * i));
  return out;
}

uint32_t big_endian_u32(std::string_view bytes, size_t offset) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i)
    value = value << 8 | uint8_t(bytes[offset + i]);
  return value;
}

std::string host_name() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

ProtoWriter event_header(int64_t step) {
  ProtoWriter event;
  event.float64(1, wall_time()).varint(2, uint64_t(step));
  return event;
}

// A new file name; two writers started within one second (a quick resume) get ".1", ".2"...
fs::path new_event_file(const fs::path& dir) {
  const int64_t seconds = int64_t(wall_time());
  const fs::path base = dir / fmt::format("events.out.tfevents.{}.{}", seconds, host_name());
  fs::path path = base;
  for (int i = 1; fs::exists(path); ++i)
    path = base.string() + "." + std::to_string(i);
  return path;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  CU3D_CHECK(in.good(), "{}: cannot read the image for TensorBoard", path.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

uint32_t crc32c(std::string_view bytes) {
  static const std::array<uint32_t, 256> table = crc_table();
  uint32_t crc = 0xffffffffu;
  for (char byte : bytes)
    crc = table[(crc ^ uint8_t(byte)) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(std::string_view bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}

EventWriter::EventWriter(const fs::path& dir) {
  fs::create_directories(dir);
  path_ = new_event_file(dir);
  file_.open(path_, std::ios::binary);
  CU3D_CHECK(file_.good(),
             "{}: cannot create the TensorBoard event file; check the folder's "
             "permissions and free space",
             path_.string());
  write_record(event_header(0).bytes(3, "brain.Event:2").take());
}

void EventWriter::write_record(const std::string& event) {
  const std::string length = little_endian(event.size(), 8);
  file_ << length << little_endian(masked_crc32c(length), 4) << event
        << little_endian(masked_crc32c(event), 4);
  file_.flush();  // TensorBoard shows what is on disk
  CU3D_CHECK(file_.good(), "{}: writing the TensorBoard event failed; check free space",
             path_.string());
}

void EventWriter::scalars(const std::vector<std::pair<std::string, double>>& values, int64_t step) {
  ProtoWriter summary;
  for (const auto& [tag, value] : values)
    summary.message(1, ProtoWriter().bytes(1, tag).float32(2, float(value)));
  write_record(event_header(step).message(5, summary).take());
}

void EventWriter::image(const std::string& tag, std::string_view png, int64_t step) {
  CU3D_CHECK(png.size() > kPngHeightOffset + 4 && png.substr(1, 3) == "PNG",
             "TensorBoard image '{}' is not a PNG", tag);
  ProtoWriter image;
  image.varint(1, big_endian_u32(png, kPngHeightOffset))
      .varint(2, big_endian_u32(png, kPngWidthOffset))
      .varint(3, kRgbColorspace)
      .bytes(4, png);
  const ProtoWriter value = std::move(ProtoWriter().bytes(1, tag).message(4, image));
  write_record(event_header(step).message(5, ProtoWriter().message(1, value)).take());
}

void TrainingEvents::start_epoch() {
  last_ = Clock::now();
  window_ = epoch_ = {};
}

void TrainingEvents::on_step(int64_t step, int64_t clips, double loss, int64_t correct, double lr) {
  const Clock::time_point now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - last_).count();
  last_ = now;
  for (Window* w : {&window_, &epoch_}) {
    ++w->steps;
    w->clips += clips;
    w->correct += correct;
    w->loss_sum += loss * double(clips);
    w->seconds += seconds;
  }
  if (step % kStepsPerLog != 0) return;
  const double n = double(window_.clips);
  writer_.scalars({{"train/loss", window_.loss_sum / n},
                   {"train/accuracy", double(window_.correct) / n},
                   {"train/learning_rate", lr},
                   {"train/clips_per_second", window_.seconds > 0 ? n / window_.seconds : 0}},
                  step);
  window_ = {};
}

void TrainingEvents::on_epoch(int epoch, double loss, double accuracy, const EvalResult& eval,
                              double lr, const fs::path& confusion_png) {
  const double seconds = epoch_.seconds;
  writer_.scalars({{"epoch/loss", loss},
                   {"epoch/accuracy", accuracy},
                   {"epoch/val_loss", eval.loss},
                   {"epoch/val_accuracy", eval.clip_top1},
                   {"epoch/val_top5", eval.clip_top5},
                   {"epoch/val_video_top1", eval.video_top1},
                   {"epoch/val_video_top5", eval.video_top5},
                   {"epoch/learning_rate", lr},
                   {"epoch/clips_per_second", seconds > 0 ? double(epoch_.clips) / seconds : 0}},
                  epoch);
  writer_.image("confusion_matrix", read_bytes(confusion_png), epoch);
}

}  // namespace cu3d::apps
