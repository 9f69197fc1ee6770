// PyTorch C3D weight import: a state dict in PyTorch's layout (written here with random values,
// as c3d-pytorch would save it) lands transposed in our layout, fc6's columns follow our
// flatten order (checked by computing fc6 both ways), the head can be replaced, and every
// mismatch is a named error that copies nothing.
#include <cmath>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cpu/error_testing.h"
#include "engine/autograd.h"
#include "engine/ops/dense.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/import_pytorch.h"

namespace cu3d {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct TempFile {
  explicit TempFile(const std::string& name)
      : path(fs::temp_directory_path() / fmt::format("cu3d_test_{}_{}", ::getpid(), name)) {}
  ~TempFile() { fs::remove(path); }
  fs::path path;
};

// C3D at 1/16 of the width on 48x48 frames: pool5 gives 1x2x2x32, so fc6's column permutation
// mixes both channels and positions.
ModelSpec small_c3d(const std::string& preset = "c3d", int classes = 5) {
  json config = preset_config(preset);
  for (json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / 16;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / 16;
  }
  return {config, classes, {16, 48, 48, 3}};
}

std::string torch_name(const std::string& ours) {
  if (ours.starts_with("conv1a.")) return "conv1." + ours.substr(7);
  if (ours.starts_with("conv2a.")) return "conv2." + ours.substr(7);
  return ours;
}

// A random state dict in PyTorch's layout for the C3D of `spec`, with `head_classes` in fc8.
NamedTensors torch_state(const ModelSpec& spec, int head_classes, Generator& gen) {
  auto model = build_model(spec.config, spec.num_classes, spec.input);
  NamedTensors state;
  for (const auto& [name, p] : model->named_parameters()) {
    if (name.starts_with("norm")) continue;
    Shape shape = p.shape();
    if (shape.size() == 5) shape = {shape[0], shape[4], shape[1], shape[2], shape[3]};
    if (name.starts_with("fc8.")) shape[0] = head_classes;
    state.emplace_back(torch_name(name), Tensor::uniform(shape, -1.0, 1.0, gen));
  }
  return state;
}

using testing::error_of;
using testing::find;

TEST(ImportPytorch, FiltersArriveTransposedToChannelsLast) {
  Generator gen(21);
  const ModelSpec spec = small_c3d();
  const NamedTensors state = torch_state(spec, 5, gen);
  TempFile file("c3d.safetensors");
  save_safetensors(file.path, state);
  auto model = build_model(spec.config, 5, spec.input);
  import_pytorch_c3d(file.path, spec, *model);
  const NamedTensors params = model->named_parameters();

  const Tensor& theirs = find(state, "conv2.weight");  // (Cout, Cin, KD, KH, KW)
  const Tensor& ours = find(params, "conv2a.weight");  // (Cout, KD, KH, KW, Cin)
  const Shape& s = theirs.shape();
  const float* t = theirs.data<float>();
  const float* o = ours.data<float>();
  int64_t mismatches = 0;
  for (int64_t co = 0; co < s[0]; ++co)
    for (int64_t ci = 0; ci < s[1]; ++ci)
      for (int64_t k = 0; k < s[2] * s[3] * s[4]; ++k)
        mismatches += t[(co * s[1] + ci) * 27 + k] != o[(co * 27 + k) * s[1] + ci];
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(find(params, "conv5b.bias").to_vector<float>(),
            find(state, "conv5b.bias").to_vector<float>());
  EXPECT_EQ(find(params, "fc8.weight").to_vector<float>(),
            find(state, "fc8.weight").to_vector<float>());
}

TEST(ImportPytorch, Fc6GivesPytorchsOutputOnOurFlattenOrder) {
  Generator gen(22);
  const ModelSpec spec = small_c3d();
  const NamedTensors state = torch_state(spec, 5, gen);
  TempFile file("fc6.safetensors");
  save_safetensors(file.path, state);
  auto model = build_model(spec.config, 5, spec.input);
  import_pytorch_c3d(file.path, spec, *model);

  // pool5's output for one clip, channels-last (1, D=1, H=2, W=2, C=32).
  const Tensor a = Tensor::uniform({1, 1, 2, 2, 32}, -1.0, 1.0, gen);
  const float* pa = a.data<float>();
  const Tensor& w = find(state, "fc6.weight");  // (256, 128), columns in (C, D, H, W) order
  const float* pw = w.data<float>();
  const float* pb = find(state, "fc6.bias").data<float>();
  autograd::NoGradGuard no_grad;
  const NamedTensors params = model->named_parameters();
  const std::vector<float> ours =
      dense(a.flatten(1), find(params, "fc6.weight"), find(params, "fc6.bias")).to_vector<float>();
  for (int64_t r = 0; r < 256; ++r) {
    double expected = pb[r];
    for (int64_t c = 0; c < 32; ++c)
      for (int64_t p = 0; p < 4; ++p)
        expected += double(pw[r * 128 + c * 4 + p]) * pa[p * 32 + c];
    ASSERT_NEAR(ours[r], expected, 1e-4) << "fc6 output " << r;
  }
}

TEST(ImportPytorch, ANewHeadFineTunesOnOtherClasses) {
  Generator gen(23);
  const ModelSpec spec = small_c3d("c3d", 5);
  const NamedTensors state = torch_state(spec, 487, gen);  // Sports-1M's 487 classes
  TempFile file("sports1m.safetensors");
  save_safetensors(file.path, state);
  auto model = build_model(spec.config, 5, spec.input);
  const std::string error = error_of([&] { import_pytorch_c3d(file.path, spec, *model); });
  EXPECT_NE(error.find("'fc8.weight' [487,256] (as [487,256] in our layout) does not fit "
                       "'fc8.weight' [5,256]; to fine-tune on other classes, take a new head"),
            std::string::npos)
      << error;
  const std::vector<float> head = find(model->named_parameters(), "fc8.weight").to_vector<float>();
  import_pytorch_c3d(file.path, spec, *model, /*new_head=*/true);
  EXPECT_EQ(find(model->named_parameters(), "fc8.weight").to_vector<float>(), head);
  EXPECT_EQ(find(model->named_parameters(), "fc7.bias").to_vector<float>(),
            find(state, "fc7.bias").to_vector<float>());
}

TEST(ImportPytorch, EveryMismatchIsNamedAndNothingIsCopied) {
  Generator gen(24);
  const ModelSpec spec = small_c3d();
  NamedTensors state = torch_state(spec, 5, gen);
  std::erase_if(state, [](const auto& entry) { return entry.first == "conv3b.bias"; });
  state.emplace_back("fc9.weight", Tensor::zeros({2, 2}));
  TempFile file("broken.safetensors");
  save_safetensors(file.path, state);
  auto model = build_model(spec.config, 5, spec.input);
  const std::vector<float> before = model->named_parameters().front().second.to_vector<float>();
  const std::string error = error_of([&] { import_pytorch_c3d(file.path, spec, *model); });
  EXPECT_NE(error.find(file.path.string()), std::string::npos) << error;
  EXPECT_NE(error.find("missing key 'conv3b.bias' (for 'conv3b.bias')"), std::string::npos)
      << error;
  EXPECT_NE(error.find("unexpected key 'fc9.weight' [2,2]"), std::string::npos) << error;
  EXPECT_EQ(model->named_parameters().front().second.to_vector<float>(), before);

  // The layer-norm C3D has parameters the PyTorch C3D does not.
  const ModelSpec ln = small_c3d("c3d-ln");
  TempFile plain("plain.safetensors");
  save_safetensors(plain.path, torch_state(ln, 5, gen));
  auto ln_model = build_model(ln.config, 5, ln.input);
  const std::string ln_error = error_of([&] { import_pytorch_c3d(plain.path, ln, *ln_model); });
  EXPECT_NE(ln_error.find("'norm1a.beta' has no counterpart in the PyTorch C3D"), std::string::npos)
      << ln_error;

  // A model without C3D's layers is refused before anything is read into it.
  const ModelSpec keras{preset_config("keras3d"), 5, {}};
  auto keras_model = build_model(keras.config, 5);
  EXPECT_NE(error_of([&] {
              import_pytorch_c3d(file.path, keras, *keras_model);
            }).find("no fc6 fed by a flatten layer"),
            std::string::npos);
}

}  // namespace
}  // namespace cu3d
