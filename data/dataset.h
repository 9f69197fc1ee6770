// Dataset layouts and train/test splits. Three layouts are read:
//   ucf101 - <root>/<Class>/v_<Class>_g<GG>_c<CC>.avi with ucfTrainTestlist/ (classInd.txt,
//            trainlist0N.txt, testlist0N.txt) in <root> or next to it;
//   flat   - the Keras tool's single folder of v_<Class>_g<GG>_c<CC>.<ext>, class from the name;
//   tree   - any <root>/<class>/*.<video ext> (HMDB51-like).
// Splits: the official list when the layout has one; otherwise by group (all clips of a group on
// one side, so near-duplicate clips cut from one recording never straddle the split), stratified
// by class and seeded. A clip-level random split is available only on request, with a warning.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace cu3d::data {

enum class Layout { automatic, ucf101, flat, tree };
std::string_view layout_name(Layout layout);
Layout parse_layout(std::string_view name);  // throws cu3d::Error for an unknown name

struct VideoEntry {
  std::filesystem::path path;
  int label = 0;      // index into Dataset::classes
  std::string group;  // videos with equal groups stay on one side of a split
};

struct DatasetOptions {
  Layout layout = Layout::automatic;
  int split = 1;                  // official list number (1..3) where the layout has lists
  int nclass = 0;                 // keep the first N classes (classInd or sorted order); 0 = all
  double test_fraction = 0.3;     // for splits made here, per class
  uint64_t seed = 0;              // for splits made here
  bool clip_level_split = false;  // random per clip: leaks near-duplicates, prints a warning
};

struct Dataset {
  std::filesystem::path root;
  Layout layout = Layout::automatic;
  std::vector<std::string> classes;
  std::vector<VideoEntry> train;
  std::vector<VideoEntry> test;
  std::string split;  // how the split was made, for logs and manifests
};

// Finds the videos under `root`, their classes and the split. Throws cu3d::Error for a missing
// folder, a folder without videos, a malformed or inconsistent list, or options out of range.
Dataset load_dataset(const std::filesystem::path& root, const DatasetOptions& options);

// True for the video file extensions the loader accepts (.avi, .mp4, .mkv, ...), any case.
bool is_video_file(const std::filesystem::path& path);

}  // namespace cu3d::data
