#include <set>

#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/split_list.h"
#include "data/synth.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::set<std::string> groups_of(const std::vector<VideoEntry>& entries) {
  std::set<std::string> groups;
  for (const VideoEntry& entry : entries)
    groups.insert(entry.group);
  return groups;
}

void expect_no_group_on_both_sides(const Dataset& dataset) {
  for (const std::string& group : groups_of(dataset.train))
    EXPECT_EQ(groups_of(dataset.test).count(group), 0u) << "group " << group << " on both sides";
}

std::vector<int> clips_per_class(const std::vector<VideoEntry>& entries, int classes) {
  std::vector<int> counts(size_t(classes), 0);
  for (const VideoEntry& entry : entries)
    ++counts[size_t(entry.label)];
  return counts;
}

// load_dataset never decodes, so empty files with the right names are enough for layouts.
void touch(const fs::path& path) {
  fs::create_directories(path.parent_path());
  testing::write_bytes(path, "");
}

// A flat folder: `classes` classes x `groups` groups x 2 clips named the UCF101 way.
void make_flat(const fs::path& root, int classes, int groups) {
  for (int c = 0; c < classes; ++c)
    for (int g = 1; g <= groups; ++g)
      for (int k = 1; k <= 2; ++k)
        touch(root / fmt::format("v_Class{}_g{:02d}_c{:02d}.avi", c, g, k));
}

TEST(DataDataset, UcfLayoutUsesTheOfficialListsInClassIndOrder) {
  TempDir dir;
  const SynthOptions synth = testing::tiny_synth_options();
  write_synth_dataset(dir.path(), synth);
  const Dataset split1 = load_dataset(dir.path(), {});
  EXPECT_EQ(split1.layout, Layout::ucf101);
  EXPECT_EQ(split1.classes, (std::vector<std::string>{"MoveLeft", "MoveRight", "MoveUp"}));
  EXPECT_EQ(split1.train.size(), 3u * 3 * 2);
  EXPECT_EQ(split1.test.size(), 3u * 1 * 2);
  EXPECT_EQ(groups_of(split1.test), std::set<std::string>{"g01"});
  expect_no_group_on_both_sides(split1);
  EXPECT_EQ(split1.test.front().path, dir.path() / "MoveLeft" / "v_MoveLeft_g01_c01.avi");

  const Dataset split3 = load_dataset(dir.path(), {.split = 3});
  EXPECT_EQ(groups_of(split3.test), std::set<std::string>{"g03"});
  EXPECT_THROW(load_dataset(dir.path(), {.split = 4}), Error);

  const Dataset two = load_dataset(dir.path(), {.nclass = 2});
  EXPECT_EQ(two.classes.size(), 2u);
  for (const auto* side : {&two.train, &two.test})
    for (const VideoEntry& entry : *side)
      EXPECT_LT(entry.label, 2);
  EXPECT_EQ(two.train.size() + two.test.size(), 2u * 4 * 2);
  EXPECT_THROW(load_dataset(dir.path(), {.nclass = 4}), Error);
}

TEST(DataDataset, FlatLayoutSplitsByGroupStratifiedAndSeeded) {
  TempDir dir;
  make_flat(dir.path(), 3, 10);
  const Dataset dataset = load_dataset(dir.path(), {.seed = 5});
  EXPECT_EQ(dataset.layout, Layout::flat);
  EXPECT_EQ(dataset.classes, (std::vector<std::string>{"Class0", "Class1", "Class2"}));
  expect_no_group_on_both_sides(dataset);
  // 20 clips per class, target 6 test clips = 3 whole groups of 2 clips in every class.
  EXPECT_EQ(clips_per_class(dataset.test, 3), (std::vector<int>{6, 6, 6}));
  EXPECT_EQ(clips_per_class(dataset.train, 3), (std::vector<int>{14, 14, 14}));

  const Dataset same = load_dataset(dir.path(), {.seed = 5});
  const Dataset other = load_dataset(dir.path(), {.seed = 6});
  EXPECT_EQ(groups_of(same.test), groups_of(dataset.test));
  EXPECT_NE(groups_of(other.test), groups_of(dataset.test));
}

TEST(DataDataset, TreeLayoutWithoutGroupsSplitsEachClassByItsShare) {
  TempDir dir;
  for (int k = 0; k < 10; ++k)
    touch(dir.path() / "wave" / fmt::format("clip{}.mp4", k));
  for (int k = 0; k < 7; ++k)
    touch(dir.path() / "jump" / fmt::format("Clip{}.MKV", k));
  touch(dir.path() / "jump" / "notes.txt");
  fs::create_directories(dir.path() / "empty_class");
  const Dataset dataset = load_dataset(dir.path(), {.test_fraction = 0.2});
  EXPECT_EQ(dataset.layout, Layout::tree);
  EXPECT_EQ(dataset.classes, (std::vector<std::string>{"jump", "wave"}));
  EXPECT_EQ(clips_per_class(dataset.test, 2), (std::vector<int>{1, 2}));
  EXPECT_EQ(clips_per_class(dataset.train, 2), (std::vector<int>{6, 8}));
}

TEST(DataDataset, ClipLevelSplitOnlyOnRequestAndWithAWarning) {
  TempDir dir;
  make_flat(dir.path(), 2, 5);
  ::testing::internal::CaptureStderr();
  const Dataset grouped = load_dataset(dir.path(), {});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  expect_no_group_on_both_sides(grouped);

  ::testing::internal::CaptureStderr();
  const Dataset leaky = load_dataset(dir.path(), {.seed = 3, .clip_level_split = true});
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("warning: clip-level"),
            std::string::npos);
  EXPECT_NE(leaky.split.find("leaky"), std::string::npos);
  EXPECT_EQ(leaky.train.size() + leaky.test.size(), 2u * 5 * 2);
}

TEST(DataDataset, MissingFolderEmptyFolderAndUnparsableFlatNamesAreClearErrors) {
  TempDir dir;
  EXPECT_THROW(load_dataset(dir.path() / "nope", {}), Error);
  try {
    load_dataset(dir.path(), {});
    FAIL() << "an empty folder must be an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("no videos"), std::string::npos) << error.what();
  }
  touch(dir.path() / "holiday.avi");
  EXPECT_THROW(load_dataset(dir.path(), {.layout = Layout::flat}), Error);
  EXPECT_THROW(parse_layout("hmdb"), Error);
}

// The message of the cu3d::Error that `f` throws, or "" when it does not throw.
template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

TEST(DataDataset, ClassIndexIsParsedAsHostileInput) {
  EXPECT_EQ(parse_class_index("1 A\r\n2 B\r\n\r\n", "classInd.txt"),
            (std::vector<std::string>{"A", "B"}));
  EXPECT_NE(error_of([] { parse_class_index("1 A\n3 B\n", "ci"); }).find("ci:2"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_class_index("1 A\n2 A\n", "ci"); }).find("twice"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_class_index("x A\n", "ci"); }).find("ci:1"), std::string::npos);
  EXPECT_NE(error_of([] { parse_class_index("1 ..\n", "ci"); }).find("class name"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_class_index("\n\n", "ci"); }).find("no classes"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_class_index("1 " + std::string(5000, 'a'), "ci"); }).find("longer"),
            std::string::npos);
}

TEST(DataDataset, SplitListIsParsedAsHostileInput) {
  const auto entries = parse_split_list("A/v_A_g01_c01.avi 1\r\nB/v_B_g02_c01.avi\n", "tl");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].class_name, "A");
  EXPECT_EQ(entries[0].label, 1);
  EXPECT_EQ(entries[1].label, 0);
  EXPECT_EQ(entries[1].line, 2);
  for (const char* bad : {"../../etc/passwd 1", "/etc/passwd", "A/../../x.avi", "noslash.avi 1",
                          "A/x.avi -1", "A/x.avi 1 2", "A/x.avi 99999999999"})
    EXPECT_NE(error_of([bad] { parse_split_list(bad, "tl"); }).find("tl:1"), std::string::npos)
        << bad;
}

TEST(DataDataset, ListedButMissingVideoAndLabelMismatchNameFileAndLine) {
  TempDir dir;
  write_synth_dataset(dir.path(), testing::tiny_synth_options());
  fs::remove(dir.path() / "MoveUp" / "v_MoveUp_g01_c02.avi");
  EXPECT_NE(error_of([&] { load_dataset(dir.path(), {}); }).find("testlist01.txt:6"),
            std::string::npos);
  testing::write_bytes(dir.path() / "ucfTrainTestlist" / "trainlist01.txt",
                       "MoveLeft/v_MoveLeft_g02_c01.avi 2\n");
  EXPECT_NE(error_of([&] { load_dataset(dir.path(), {.split = 1}); }).find("trainlist01.txt:1"),
            std::string::npos);
}

}  // namespace
}  // namespace cu3d::data
