// Keras weight import beyond the golden logits (test_golden_import.cpp): the axis order matters,
// kernels land transposed, a new head keeps the model's, and every mismatch or damaged file is an
// error naming the file, dataset and tensor, with nothing copied.
#include <hdf5.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

#include "cpu/error_testing.h"
#include "cpu/golden.h"
#include "engine/autograd.h"
#include "engine/safetensors.h"
#include "layers/import_keras.h"

namespace cu3d {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using cu3d::testing::kGoldenDir;

struct TempFile {
  explicit TempFile(const std::string& name)
      : path(fs::temp_directory_path() / fmt::format("cu3d_test_{}_{}", ::getpid(), name)) {}
  ~TempFile() { fs::remove(path); }
  fs::path path;
};

// keras3d at the golden fixtures' widths, with `filter_div` for other widths.
ModelSpec small_keras3d(const std::string& preset = "keras3d", int classes = 5,
                        int filter_div = 4) {
  json config = preset_config(preset);
  for (json& layer : config["layers"]) {
    if (layer.contains("filters")) layer["filters"] = layer["filters"].get<int>() / filter_div;
    if (layer.contains("units") && layer["units"].is_number())
      layer["units"] = layer["units"].get<int>() / 16;
  }
  return {config, classes, {10, 16, 20, 3}};
}

using testing::error_of;
using testing::find;

#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE((text).find(part), std::string::npos) << "missing: " << (part) << "\nin: " << (text)

TEST(ImportKeras, HwdcKernelsReadAsDhwcGiveOtherLogits) {
  const ModelSpec spec = small_keras3d();
  auto as_hwdc = build_model(spec.config, 5, spec.input);
  auto as_dhwc = build_model(spec.config, 5, spec.input);
  import_keras(kGoldenDir / "keras3d_hwdc_model.h5", spec, *as_hwdc, {KerasAxisOrder::hwdc});
  import_keras(kGoldenDir / "keras3d_hwdc_model.h5", spec, *as_dhwc, {KerasAxisOrder::dhwc});
  const Tensor input =
      load_safetensors(kGoldenDir / "keras3d_hwdc_io.safetensors").tensors[0].second;
  autograd::NoGradGuard no_grad;
  as_hwdc->eval();
  as_dhwc->eval();
  const std::vector<float> a = (*as_hwdc)(input).to_vector<float>();
  const std::vector<float> b = (*as_dhwc)(input).to_vector<float>();
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
  EXPECT_GT(diff, 1e-3) << "the axis order changed nothing: the test cannot tell them apart";
}

TEST(ImportKeras, KernelsArriveTransposedToOurLayout) {
  const ModelSpec spec = small_keras3d();
  auto model = build_model(spec.config, 5, spec.input);
  import_keras(kGoldenDir / "keras3d.weights.h5", spec, *model);
  const KerasWeights file = read_keras_h5(kGoldenDir / "keras3d.weights.h5");
  EXPECT_EQ(file.source, "Keras 3 weights " + (kGoldenDir / "keras3d.weights.h5").string());
  const Tensor& theirs = file.layers.at(1).weights.at(0).second;  // conv3d_1: (3,3,3,8,8)
  const Tensor ours =
      find(model->named_parameters(), "conv1b.weight");  // a handle: the list is a temporary
  ASSERT_EQ(theirs.shape(), (Shape{3, 3, 3, 8, 8}));
  const float* t = theirs.data<float>();
  const float* o = ours.data<float>();
  int64_t mismatches = 0;
  for (int64_t tap = 0; tap < 27; ++tap)
    for (int64_t in = 0; in < 8; ++in)
      for (int64_t out = 0; out < 8; ++out)
        mismatches += t[(tap * 8 + in) * 8 + out] != o[(out * 27 + tap) * 8 + in];
  EXPECT_EQ(mismatches, 0);
  const Tensor& dense = file.layers.back().weights.at(0).second;  // (in, out)
  EXPECT_EQ(find(model->named_parameters(), "fc2.weight").shape(),
            (Shape{dense.size(1), dense.size(0)}));
}

TEST(ImportKeras, ANewHeadKeepsTheModelsOwnForAnotherClassCount) {
  const ModelSpec spec = small_keras3d("keras3d", 7);
  auto model = build_model(spec.config, 7, spec.input);
  const fs::path path = kGoldenDir / "keras3d_keras2.h5";
  const std::string error = error_of([&] { import_keras(path, spec, *model); });
  EXPECT_CONTAINS(error,
                  "dataset 'dense_1/dense_1/kernel:0' [32,5] (as [5,32] in our layout) "
                  "does not fit 'fc2.weight' [7,32]; to fine-tune on another class count, "
                  "take a new head");
  const std::vector<float> head = find(model->named_parameters(), "fc2.weight").to_vector<float>();
  import_keras(path, spec, *model, {KerasAxisOrder::dhwc, /*new_head=*/true});
  EXPECT_EQ(find(model->named_parameters(), "fc2.weight").to_vector<float>(), head);
  const KerasWeights file = read_keras_h5(path);
  EXPECT_EQ(find(model->named_parameters(), "fc1.bias").to_vector<float>(),
            file.layers.at(4).weights.at(1).second.to_vector<float>());
}

TEST(ImportKeras, AnotherModelIsRefusedNamingEveryLayerAndNothingIsCopied) {
  const ModelSpec bn = small_keras3d("keras3d-bn");
  auto model = build_model(bn.config, 5, bn.input);
  const std::vector<float> before =
      find(model->named_parameters(), "conv1a.weight").to_vector<float>();
  const fs::path path = kGoldenDir / "keras3d.weights.h5";
  const std::string error = error_of([&] { import_keras(path, bn, *model); });
  EXPECT_CONTAINS(error, path.string());
  EXPECT_CONTAINS(error,
                  "the file has 4 Conv3D layer(s) (conv3d, conv3d_1, conv3d_2, conv3d_3) "
                  "and model 'keras3d-bn' 6 (conv1a, conv1b, conv2a, conv2b, conv3a, "
                  "conv3b): import into the model the weights were trained with");
  EXPECT_CONTAINS(error,
                  "the file has 0 BatchNormalization layer(s) and model 'keras3d-bn' 1 "
                  "(fc1_bn)");
  EXPECT_EQ(find(model->named_parameters(), "conv1a.weight").to_vector<float>(), before);

  const ModelSpec wide = small_keras3d("keras3d", 5, /*filter_div=*/2);
  auto wide_model = build_model(wide.config, 5, wide.input);
  const std::string wide_error = error_of([&] { import_keras(path, wide, *wide_model); });
  EXPECT_CONTAINS(wide_error,
                  "dataset 'layers/conv3d/vars/0' [3,3,3,3,8] (as [8,3,3,3,3] in our "
                  "layout) does not fit 'conv1a.weight' [16,3,3,3,3]");
  EXPECT_CONTAINS(wide_error, "dataset 'layers/conv3d/vars/1' [8] does not fit 'conv1a.bias' [16]");

  auto c3d = build_model(preset_config("c3d-ln"), 5, {16, 32, 32, 3});
  EXPECT_CONTAINS(error_of([&] {
                    import_keras(path, {preset_config("c3d-ln"), 5, {16, 32, 32, 3}}, *c3d);
                  }),
                  "'norm1a.gamma' [64] has no counterpart in the Keras file");
}

TEST(ImportKeras, LayersOtherThanTheImportedKindsAreNamed) {
  const ModelSpec spec = small_keras3d();
  auto model = build_model(spec.config, 5, spec.input);
  KerasWeights file{"test file",
                    {{"conv3d", {{"layers/conv3d/vars/0", Tensor::zeros({3, 3, 3, 3, 8})}}}}};
  EXPECT_CONTAINS(error_of([&] { map_keras_weights(file, spec, model->named_parameters()); }),
                  "layer 'conv3d' holds 'layers/conv3d/vars/0' [3,3,3,3,8]: not a Conv3D, Conv2D "
                  "or Dense with bias");
  EXPECT_CONTAINS(error_of([] { parse_keras_axis_order("dwhc", "--keras-order"); }),
                  "--keras-order 'dwhc': give dhwc");
}

// A small HDF5 file written with the C API, for the damage a Keras file can carry.
class H5Writer {
 public:
  explicit H5Writer(const fs::path& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) {}
  ~H5Writer() { H5Fclose(file_); }
  void group(const char* path) {
    H5Gclose(H5Gcreate2(file_, path, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  }
  // A dataset of `type` whose storage is allocated only when written: declared dims cost nothing.
  void dataset(const char* path, hid_t type, std::vector<hsize_t> dims) {
    const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
    const hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(plist, H5D_ALLOC_TIME_LATE);
    H5Dclose(H5Dcreate2(file_, path, type, space, H5P_DEFAULT, plist, H5P_DEFAULT));
    H5Pclose(plist);
    H5Sclose(space);
  }
  // A root attribute of fixed-length strings, as Keras 2 writes `layer_names`.
  void names(const char* attribute, const std::vector<std::string>& values) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, 16);
    std::vector<char> bytes(values.size() * 16, '\0');
    for (size_t i = 0; i < values.size(); ++i)
      values[i].copy(bytes.data() + i * 16, 16);
    const hsize_t n = values.size();
    const hid_t space = H5Screate_simple(1, &n, nullptr);
    const hid_t attr = H5Acreate2(file_, attribute, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(attr, type, bytes.data());
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  }

 private:
  hid_t file_;
};

TEST(ImportKeras, DamagedFilesAreRefusedNamingFileAndDataset) {
  TempFile text("not.h5");
  std::ofstream(text.path) << "not an HDF5 file";
  EXPECT_CONTAINS(error_of([&] { read_keras_h5(text.path); }), "not a readable HDF5 file");
  EXPECT_CONTAINS(error_of([&] { read_keras_h5(text.path.string() + ".gone"); }), "no such file");

  TempFile ints("ints.h5");
  {
    H5Writer h5(ints.path);
    h5.group("layers");
    h5.group("layers/conv3d");
    h5.group("layers/conv3d/vars");
    h5.dataset("layers/conv3d/vars/0", H5T_STD_I32LE, {3, 3, 3, 1, 4});
  }
  EXPECT_CONTAINS(error_of([&] { read_keras_h5(ints.path); }),
                  "dataset 'layers/conv3d/vars/0' is not float32 or float64");

  TempFile huge("huge.h5");
  {
    H5Writer h5(huge.path);
    h5.group("layers");
    h5.group("layers/dense");
    h5.group("layers/dense/vars");
    h5.dataset("layers/dense/vars/0", H5T_IEEE_F32LE, {1u << 20, 1u << 20});
  }
  EXPECT_CONTAINS(error_of([&] { read_keras_h5(huge.path); }),
                  "dataset 'layers/dense/vars/0' declares more data than the");

  TempFile listed("listed.h5");
  {
    H5Writer h5(listed.path);
    h5.names("layer_names", {"conv3d", "dense"});
    h5.group("conv3d");
  }
  const std::string error = error_of([&] { read_keras_h5(listed.path); });
  EXPECT_CONTAINS(error, listed.path.string());
  EXPECT_CONTAINS(error, "layer 'conv3d' has no weight_names attribute");

  TempFile neither("neither.h5");
  { H5Writer h5(neither.path); }
  EXPECT_CONTAINS(error_of([&] { read_keras_h5(neither.path); }),
                  "neither Keras 2's 'layer_names' nor Keras 3's 'layers' group");
}

}  // namespace
}  // namespace cu3d
