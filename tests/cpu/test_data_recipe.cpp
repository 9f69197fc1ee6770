#include <set>

#include <gtest/gtest.h>

#include "data/clip_plan.h"
#include "data/recipe.h"
#include "kernels/error.h"
#include "test_data_fixtures.h"

namespace cu3d::data {
namespace {

using Shape = std::array<int, 4>;

TEST(DataRecipe, NamedRecipesHaveTheirClipShapesAndDecodeSizes) {
  EXPECT_EQ(clip_shape(recipe_by_name("c3d")), (Shape{16, 112, 112, 3}));
  EXPECT_EQ(clip_shape(recipe_by_name("keras")), (Shape{10, 32, 32, 1}));  // the tool's --depth
  EXPECT_EQ(clip_shape(keras_recipe(10, true, true)), (Shape{10, 32, 32, 3}));
  EXPECT_EQ(clip_shape(recipe_by_name("tf-c3d")), (Shape{16, 112, 112, 3}));
  const DecodeOptions c3d = decode_options(c3d_recipe());
  EXPECT_EQ(c3d.height, 128);
  EXPECT_EQ(c3d.width, 171);
  const DecodeOptions tf = decode_options(tf_c3d_recipe());
  EXPECT_EQ(tf.height, 120);
  EXPECT_EQ(tf.width, 160);
  EXPECT_EQ(decode_options(keras_recipe()).color, ColorOrder::gray);
  EXPECT_THROW(recipe_by_name("i3d"), Error);
  for (const char* name : {"c3d", "keras", "tf-c3d"})
    EXPECT_NO_THROW(check_recipe(recipe_by_name(name)));
}

bool consecutive(const std::vector<int>& frames) {
  for (size_t i = 1; i < frames.size(); ++i)
    if (frames[i] != frames[i - 1] + 1) return false;
  return true;
}

TEST(DataRecipe, C3dTrainingClipsAreRandomWindowsCropsAndFlipsFromTheSeed) {
  const Recipe recipe = c3d_recipe();
  std::set<int> starts, ys, xs, flips;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const ClipPlan plan = plan_train_clip(recipe, 50, seed);
    ASSERT_EQ(plan.frames.size(), 16u);
    EXPECT_TRUE(consecutive(plan.frames));
    EXPECT_GE(plan.frames.front(), 0);
    EXPECT_LE(plan.frames.back(), 49);
    EXPECT_LE(plan.y + 112, 128);
    EXPECT_LE(plan.x + 112, 171);
    EXPECT_FALSE(plan.looped);
    starts.insert(plan.frames.front());
    ys.insert(plan.y);
    xs.insert(plan.x);
    flips.insert(plan.flip);
  }
  EXPECT_GT(starts.size(), 20u);
  EXPECT_GT(ys.size(), 10u);
  EXPECT_GT(xs.size(), 30u);
  EXPECT_EQ(flips.size(), 2u);
  const ClipPlan a = plan_train_clip(recipe, 50, 42), b = plan_train_clip(recipe, 50, 42);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(std::tie(a.y, a.x, a.flip), std::tie(b.y, b.x, b.flip));
}

TEST(DataRecipe, C3dEvaluationIsCentreCropWindowsOfStride8) {
  const std::vector<ClipPlan> plans = plan_eval_clips(c3d_recipe(), 40);
  ASSERT_EQ(plans.size(), 4u);  // starts 0, 8, 16, 24; 32 + 16 > 40
  for (size_t i = 0; i < plans.size(); ++i) {
    EXPECT_EQ(plans[i].frames.front(), int(8 * i));
    EXPECT_TRUE(consecutive(plans[i].frames));
    EXPECT_EQ(plans[i].y, 8);   // (128 - 112) / 2
    EXPECT_EQ(plans[i].x, 29);  // (171 - 112) / 2, rounded down
    EXPECT_FALSE(plans[i].flip);
  }
}

TEST(DataRecipe, TfC3dCropsRows4To116Columns24To136OnAStride8Grid) {
  const Recipe recipe = tf_c3d_recipe();
  for (uint64_t seed = 0; seed < 50; ++seed) {
    const ClipPlan plan = plan_train_clip(recipe, 45, seed);
    EXPECT_EQ(plan.y, 4);
    EXPECT_EQ(plan.x, 24);
    EXPECT_FALSE(plan.flip);
    EXPECT_EQ(plan.frames.front() % 8, 0);
    EXPECT_LE(plan.frames.back(), 44);
  }
  const std::vector<ClipPlan> plans = plan_eval_clips(recipe, 45);
  ASSERT_EQ(plans.size(), 4u);  // starts 0, 8, 16, 24
  EXPECT_EQ(plans.back().frames.front(), 24);
}

TEST(DataRecipe, KerasTakesEvenlySpacedOrFirstFramesInBothModes) {
  const std::vector<int> spaced = plan_train_clip(keras_recipe(8, true), 20, 1).frames;
  EXPECT_EQ(spaced, (std::vector<int>{0, 2, 5, 7, 10, 12, 15, 17}));  // floor(i * 20 / 8)
  EXPECT_EQ(plan_eval_clips(keras_recipe(8, true), 20).front().frames, spaced);
  EXPECT_EQ(plan_eval_clips(keras_recipe(4, false), 20).front().frames,
            (std::vector<int>{0, 1, 2, 3}));
}

TEST(DataRecipe, ShortVideosLoopAndSaySo) {
  const ClipPlan train = plan_train_clip(c3d_recipe(), 5, 3);
  EXPECT_TRUE(train.looped);
  EXPECT_EQ(train.frames, (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0}));
  const std::vector<ClipPlan> eval = plan_eval_clips(c3d_recipe(), 5);
  ASSERT_EQ(eval.size(), 1u);
  EXPECT_TRUE(eval.front().looped);
  EXPECT_FALSE(plan_train_clip(c3d_recipe(), 16, 3).looped);
  EXPECT_THROW(plan_train_clip(c3d_recipe(), 0, 3), Error);
}

uint8_t coded(int t, int y, int x, int c) {
  return uint8_t((t * 31 + y * 7 + x * 3 + c) % 251);
}

// A small crop recipe on frames whose every byte encodes its (t, y, x, c).
TEST(DataRecipe, CutClipTakesExactlyThePlannedFramesCropAndFlip) {
  Recipe recipe = c3d_recipe();
  recipe.depth = 3;
  recipe.resize_height = 9;
  recipe.resize_width = 11;
  recipe.crop_height = 4;
  recipe.crop_width = 5;
  Clip video{6, 9, 11, 3, {}};
  for (int t = 0; t < 6; ++t)
    for (int y = 0; y < 9; ++y)
      for (int x = 0; x < 11; ++x)
        for (int c = 0; c < 3; ++c)
          video.pixels.push_back(coded(t, y, x, c));
  for (bool flip : {false, true}) {
    const ClipPlan plan{{4, 1, 5}, 2, 3, flip, false};
    std::vector<uint8_t> out(3 * 4 * 5 * 3);
    cut_clip(video.view(), recipe, plan, out.data());
    size_t i = 0;
    for (int t : plan.frames)
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 5; ++x)
          for (int c = 0; c < 3; ++c, ++i) {
            const int source_x = plan.x + (flip ? 4 - x : x);
            ASSERT_EQ(out[i], coded(t, plan.y + y, source_x, c))
                << "flip " << flip << " t " << t << " y " << y << " x " << x << " c " << c;
          }
  }
  const ClipPlan outside{{0, 1, 2}, 6, 0, false, false};
  std::vector<uint8_t> out(3 * 4 * 5 * 3);
  EXPECT_THROW(cut_clip(video.view(), recipe, outside, out.data()), Error);
  EXPECT_THROW(
      cut_clip(video.view(), c3d_recipe(), plan_eval_clips(c3d_recipe(), 6)[0], out.data()), Error);
}

// The Keras tool reshaped (N,D,H,W,C) as (N,H,W,D,C), mixing colour and time. Here clip frame i
// must be video frame spaced[i] with its channels in order.
TEST(DataRecipe, KerasColourClipsKeepTimeAndChannelOrder) {
  testing::TempDir dir;
  const auto path = dir.path() / "quadrants.avi";
  testing::write_quadrant_video(path, 12, 64, 64);
  const Recipe recipe = keras_recipe(4, true, true);
  const Clip video = decode_video(path, decode_options(recipe));
  const ClipPlan plan = plan_eval_clips(recipe, video.frames).front();
  std::vector<uint8_t> clip(4 * 32 * 32 * 3);
  cut_clip(video.view(), recipe, plan, clip.data());
  for (int i = 0; i < 4; ++i) {
    const cv::Vec3b bgr = testing::quadrant_colour(3, plan.frames[size_t(i)]);
    const uint8_t* pixel = clip.data() + ((size_t(i) * 32 + 24) * 32 + 24) * 3;
    EXPECT_NEAR(pixel[0], bgr[2], 8) << "red of clip frame " << i;
    EXPECT_NEAR(pixel[1], bgr[1], 8) << "green of clip frame " << i;
    EXPECT_NEAR(pixel[2], bgr[0], 8) << "blue of clip frame " << i;
  }
}

TEST(DataRecipe, JsonRoundTripsAndRejectsHostileRecipes) {
  Recipe with_mean = c3d_recipe();
  with_mean.mean = {100.5f, 90.25f, 80};
  with_mean.mean_source = "dataset";
  for (const Recipe& recipe : {with_mean, keras_recipe(8, false, true), tf_c3d_recipe()}) {
    const nlohmann::json json = recipe_to_json(recipe);
    EXPECT_EQ(recipe_to_json(recipe_from_json(nlohmann::json::parse(json.dump()), "r.json")), json);
  }
  const nlohmann::json good = recipe_to_json(c3d_recipe());
  const auto rejects = [&](const char* field, nlohmann::json value) {
    nlohmann::json bad = good;
    bad[field] = value;
    EXPECT_THROW(recipe_from_json(bad, "r.json"), Error) << field << " = " << value;
  };
  rejects("depth", 0);
  rejects("depth", "16");
  rejects("crop_height", 200);
  rejects("crop", "diagonal");
  rejects("color", "cmyk");
  rejects("mean", {1, 2});
  rejects("mean", {1, 2, 1e9});
  rejects("stride", -8);
  rejects("scale", 0);
  nlohmann::json missing = good;
  missing.erase("sampling");
  EXPECT_THROW(recipe_from_json(missing, "r.json"), Error);
  EXPECT_THROW(recipe_from_json(nlohmann::json::array(), "r.json"), Error);
}

TEST(DataRecipe, Sports1mMeanFollowsTheColourOrder) {
  EXPECT_EQ(sports1m_mean(ColorOrder::bgr), (std::vector<float>{90.25f, 97.66f, 101.41f}));
  EXPECT_EQ(sports1m_mean(ColorOrder::rgb), (std::vector<float>{101.41f, 97.66f, 90.25f}));
  EXPECT_EQ(sports1m_mean(ColorOrder::gray).size(), 1u);
}

}  // namespace
}  // namespace cu3d::data
