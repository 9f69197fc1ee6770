#include "data/dataset.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "data/group_split.h"
#include "data/split_list.h"
#include "data/ucf_name.h"
#include "kernels/error.h"

namespace cu3d::data {
namespace fs = std::filesystem;
namespace {

// Split lists and class indexes are a few hundred KiB at most; anything larger is not one.
constexpr uintmax_t kMaxListBytes = 64ull << 20;

std::string read_list_file(const fs::path& path) {
  CU3D_CHECK(fs::is_regular_file(path), "{}: split file not found", path.string());
  CU3D_CHECK(fs::file_size(path) <= kMaxListBytes, "{}: {} bytes is too large for a split file",
             path.string(), fs::file_size(path));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  CU3D_CHECK(in.good() || in.eof(), "{}: cannot read the file", path.string());
  return text.str();
}

// ucfTrainTestlist/ inside the root, or beside it as UCF101's two archives unpack.
std::optional<fs::path> find_ucf_lists(const fs::path& root) {
  for (const fs::path& folder :
       {root / "ucfTrainTestlist", root.parent_path() / "ucfTrainTestlist"})
    if (fs::is_regular_file(folder / "classInd.txt")) return folder;
  return std::nullopt;
}

// Every entry with a video extension, whatever it is: a folder, FIFO or looping symlink named
// like a video is refused by the decoder with one warning and counted as skipped, like any other
// unreadable video (asking its type here would throw for a symlink loop).
std::vector<fs::path> videos_in(const fs::path& folder) {
  std::vector<fs::path> videos;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder))
    if (is_video_file(entry.path())) videos.push_back(entry.path());
  std::sort(videos.begin(), videos.end());
  return videos;
}

// UCF names share group numbers across classes (the official lists split on them); other names
// have no group, so each clip is its own.
std::string group_of(const fs::path& video, const std::string& class_name) {
  if (const auto name = parse_ucf_name(video.filename().string()))
    return fmt::format("g{:02d}", name->group);
  return class_name + "/" + video.stem().string();
}

Layout detect_layout(const fs::path& root) {
  if (find_ucf_lists(root)) return Layout::ucf101;
  return videos_in(root).empty() ? Layout::tree : Layout::flat;
}

std::vector<VideoEntry> read_official_list(const fs::path& list, const fs::path& root,
                                           const std::map<std::string, int>& labels) {
  std::vector<VideoEntry> entries;
  for (const ListEntry& item : parse_split_list(read_list_file(list), list.string())) {
    const auto found = labels.find(item.class_name);
    CU3D_CHECK(found != labels.end(), "{}:{}: class '{}' is not in classInd.txt", list.string(),
               item.line, item.class_name);
    CU3D_CHECK(item.label == 0 || item.label == found->second + 1,
               "{}:{}: label {} disagrees with classInd.txt, which numbers '{}' as {}",
               list.string(), item.line, item.label, item.class_name, found->second + 1);
    const fs::path video = root / item.relative_path;
    // Present in any form (a broken file, a looping symlink) is the decoder's to warn about.
    std::error_code error;
    CU3D_CHECK(fs::exists(fs::symlink_status(video, error)),
               "{}:{}: {} is listed but missing; finish unpacking the dataset or use a list "
               "without it",
               list.string(), item.line, video.string());
    entries.push_back({video, found->second, group_of(video, item.class_name)});
  }
  return entries;
}

struct Found {
  std::vector<std::string> classes;
  std::vector<VideoEntry> entries;
};

Found find_flat(const fs::path& root) {
  std::map<std::string, std::vector<fs::path>> by_class;
  for (const fs::path& video : videos_in(root)) {
    const auto name = parse_ucf_name(video.filename().string());
    CU3D_CHECK(name.has_value(),
               "{}: cannot tell the class of this video; the flat layout needs names "
               "v_<Class>_g<GG>_c<CC>.<ext>",
               video.string());
    by_class[name->class_name].push_back(video);
  }
  Found found;
  for (const auto& [name, videos] : by_class) {
    for (const fs::path& video : videos)
      found.entries.push_back({video, int(found.classes.size()), group_of(video, name)});
    found.classes.push_back(name);
  }
  return found;
}

Found find_tree(const fs::path& root) {
  std::vector<fs::path> folders;
  for (const fs::directory_entry& entry : fs::directory_iterator(root)) {
    std::error_code error;
    const bool folder = entry.is_directory(error);
    if (error)
      std::fprintf(stderr, "warning: skipping %s: %s\n", entry.path().c_str(),
                   error.message().c_str());
    if (folder && entry.path().filename() != "ucfTrainTestlist") folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  Found found;
  for (const fs::path& folder : folders) {
    const std::vector<fs::path> videos = videos_in(folder);
    if (videos.empty()) continue;
    const std::string name = folder.filename().string();
    for (const fs::path& video : videos)
      found.entries.push_back({video, int(found.classes.size()), group_of(video, name)});
    found.classes.push_back(name);
  }
  return found;
}

void keep_first_classes(Dataset& dataset, int nclass) {
  if (nclass == 0) return;
  CU3D_CHECK(nclass <= int(dataset.classes.size()),
             "--nclass {} asks for more classes than the {} of {}", nclass, dataset.classes.size(),
             dataset.root.string());
  dataset.classes.resize(size_t(nclass));
  const auto dropped = [nclass](const VideoEntry& entry) { return entry.label >= nclass; };
  std::erase_if(dataset.train, dropped);
  std::erase_if(dataset.test, dropped);
}

void load_official_split(Dataset& dataset, const DatasetOptions& options) {
  const auto lists = find_ucf_lists(dataset.root);
  CU3D_CHECK(lists.has_value(),
             "{}: ucf101 layout but no ucfTrainTestlist/classInd.txt in or "
             "beside the folder",
             dataset.root.string());
  CU3D_CHECK(options.split >= 1 && options.split <= 3, "--split {} must be 1, 2 or 3",
             options.split);
  const fs::path class_index = *lists / "classInd.txt";
  dataset.classes = parse_class_index(read_list_file(class_index), class_index.string());
  std::map<std::string, int> labels;
  for (size_t i = 0; i < dataset.classes.size(); ++i)
    labels[dataset.classes[i]] = int(i);
  const auto list = [&](const char* kind) {
    return *lists / fmt::format("{}list{:02d}.txt", kind, options.split);
  };
  dataset.train = read_official_list(list("train"), dataset.root, labels);
  dataset.test = read_official_list(list("test"), dataset.root, labels);
  dataset.split = fmt::format("official split {} ({})", options.split, lists->string());
}

void make_split(Dataset& dataset, std::vector<VideoEntry> entries, const DatasetOptions& options) {
  const int classes = int(dataset.classes.size());
  std::erase_if(entries,
                [&](const VideoEntry& e) { return options.nclass && e.label >= options.nclass; });
  TrainTest split;
  if (options.clip_level_split) {
    fmt::print(stderr,
               "warning: clip-level random split of {}: clips cut from one recording land on "
               "both sides, which inflates test accuracy; do not report it as a result\n",
               dataset.root.string());
    split = split_by_clip(std::move(entries), classes, options.test_fraction, options.seed);
    dataset.split = fmt::format("clip-level random (leaky), test {:.0f}%, seed {}",
                                100 * options.test_fraction, options.seed);
  } else {
    split = split_by_group(std::move(entries), classes, options.test_fraction, options.seed);
    dataset.split = fmt::format("by group, stratified, test {:.0f}%, seed {}",
                                100 * options.test_fraction, options.seed);
  }
  dataset.train = std::move(split.train);
  dataset.test = std::move(split.test);
}

void check_options(const DatasetOptions& options) {
  CU3D_CHECK(options.nclass >= 0, "--nclass {} must not be negative", options.nclass);
  CU3D_CHECK(options.test_fraction > 0 && options.test_fraction < 1,
             "test fraction {} must be between 0 and 1", options.test_fraction);
}

}  // namespace

std::string_view layout_name(Layout layout) {
  switch (layout) {
    case Layout::automatic:
      return "auto";
    case Layout::ucf101:
      return "ucf101";
    case Layout::flat:
      return "flat";
    case Layout::tree:
      return "tree";
  }
  return "?";
}

Layout parse_layout(std::string_view name) {
  for (Layout layout : {Layout::automatic, Layout::ucf101, Layout::flat, Layout::tree})
    if (layout_name(layout) == name) return layout;
  throw Error(fmt::format("unknown dataset layout '{}'; use auto, ucf101, flat or tree", name));
}

bool is_video_file(const fs::path& path) {
  static constexpr std::array<std::string_view, 10> kExtensions = {
      ".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".flv", ".wmv"};
  std::string extension = path.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  return std::find(kExtensions.begin(), kExtensions.end(), extension) != kExtensions.end();
}

Dataset load_dataset(const fs::path& root, const DatasetOptions& options) {
  check_options(options);
  CU3D_CHECK(fs::is_directory(root), "{}: dataset folder not found", root.string());
  Dataset dataset;
  dataset.root = root;
  dataset.layout = options.layout == Layout::automatic ? detect_layout(root) : options.layout;
  if (dataset.layout == Layout::ucf101) {
    load_official_split(dataset, options);
    if (options.clip_level_split) {
      std::vector<VideoEntry> entries = std::move(dataset.train);
      entries.insert(entries.end(), dataset.test.begin(), dataset.test.end());
      make_split(dataset, std::move(entries), options);
    }
  } else {
    Found found = dataset.layout == Layout::flat ? find_flat(root) : find_tree(root);
    dataset.classes = std::move(found.classes);
    make_split(dataset, std::move(found.entries), options);
  }
  keep_first_classes(dataset, options.nclass);
  CU3D_CHECK(!dataset.train.empty() || !dataset.test.empty(),
             "{}: no videos found (looked for .avi, .mp4, .mkv, .mov, .webm, .mpg, .mpeg, .m4v, "
             ".flv, .wmv as the {} layout)",
             root.string(), layout_name(dataset.layout));
  return dataset;
}

}  // namespace cu3d::data
