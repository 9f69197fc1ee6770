// TensorBoard event files, `cu3d export` (ONNX) and `cu3d visualize` end to end on a tiny
// generated dataset: framing and CRCs of the event file and the scalars it holds (also read back
// by TensorBoard's own reader when Python has it), the ONNX file's structure and, when Python has
// onnxruntime, its probabilities against cu3d's, the activation that visualize raises, and bad
// arguments failing with a one-line reason. The Python checks use $CU3D_PYTHON (default python3)
// and skip, saying why, when it cannot import the module.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "apps/app.h"
#include "apps/model_io.h"
#include "apps/tensorboard_events.h"
#include "cpu/cli_testing.h"
#include "cpu/protobuf_reader.h"
#include "engine/autograd.h"
#include "engine/protobuf_writer.h"
#include "engine/rng.h"
#include "layers/export_onnx.h"
#include "layers/models.h"

namespace cu3d::apps {
namespace {

namespace fs = std::filesystem;
namespace pb = cu3d::testing_proto;
using json = nlohmann::json;

// Every layer type and padding form the exporter handles, on a small odd-sized input: explicit
// and "same" padding, strides, ceil-mode pooling, both layer norms, batch norm on a convolution's
// output (channels first in ONNX) and on a dense one, softmax over channels, dropout.
constexpr const char* kMixedModel = R"({
  "name": "mixed", "input": [6, 12, 10, 2], "init": "pytorch",
  "layers": [
    {"type": "conv3d", "name": "c1", "filters": 5, "kernel": [3, 3, 2], "stride": [1, 2, 1],
     "padding": [1, 0, 1]},
    {"type": "layer_norm", "name": "ln1", "variant": "per_position", "eps": 0.001},
    {"type": "leaky_relu", "name": "lrelu1", "alpha": 0.2},
    {"type": "max_pool3d", "name": "p1", "window": [2, 2, 3], "stride": [2, 1, 2],
     "ceil_mode": true},
    {"type": "batch_norm", "name": "bn1"},
    {"type": "conv3d", "name": "c2", "filters": 4, "kernel": 3, "padding": "same"},
    {"type": "layer_norm", "name": "ln2"},
    {"type": "sigmoid", "name": "sig2"},
    {"type": "softmax", "name": "sm2"},
    {"type": "max_pool3d", "name": "p2", "window": 2, "padding": "same"},
    {"type": "flatten", "name": "flatten"},
    {"type": "dense", "name": "fc1", "units": 7},
    {"type": "batch_norm", "name": "bn_fc"},
    {"type": "relu", "name": "relu3"},
    {"type": "dropout", "name": "drop3", "rate": 0.5},
    {"type": "dense", "name": "fc2", "units": "classes"}]})";

// ---- Python ----

std::string python() {
  const char* p = std::getenv("CU3D_PYTHON");
  return p != nullptr && *p != '\0' ? p : "python3";
}

std::string quoted(const std::string& s) {
  return "'" + s + "'";  // test paths hold no quotes
}

// Empty when `module` imports, else the reason to skip.
std::string python_lacks(const std::string& module) {
  const std::string command =
      quoted(python()) + " -c " + quoted("import " + module) + " > /dev/null 2>&1";
  if (std::system(command.c_str()) == 0) return {};
  return python() + " cannot import " + module +
         " (set CU3D_PYTHON to an interpreter that has it, e.g. /work/venv/bin/python)";
}

// Runs `script` with `args`; returns its stdout, failing the test on a non-zero status.
std::string run_python(const fs::path& script, const std::vector<std::string>& args) {
  std::string command = quoted(python()) + " " + quoted(script.string());
  for (const std::string& a : args)
    command += " " + quoted(a);
  std::FILE* pipe = ::popen((command + " 2>/dev/null").c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return {};
  }
  std::string out;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
    out.append(buffer, n);
  EXPECT_EQ(::pclose(pipe), 0) << command << " failed; stdout: " << out;
  return out;
}

// ---- fixture: one dataset and one short training run ----

class AppExportVisualize : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("cu3d-test-export-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    std::ofstream(root_ / "tiny3d.json") << kTinyModelNoDropout;
    ASSERT_EQ(cli({"synth", (root_ / "videos").string(), "--classes", "3", "--groups", "3",
                   "--clips", "2", "--frames", "12", "--size", "32"})
                  .status,
              0);
    ASSERT_EQ(cli({"prep", (root_ / "videos").string(), (root_ / "shards").string(), "--depth", "4",
                   "--mean", "dataset"})
                  .status,
              0);
    // Batch 1 for enough steps (12 a epoch) that the per-10-steps scalars appear.
    const Captured train = cli({"train", "--model", (root_ / "tiny3d.json").string(), "--data",
                                (root_ / "shards").string(), "--epochs", "2", "--batch", "1",
                                "--lr", "0.003", "--output", run().string()});
    ASSERT_EQ(train.status, 0) << train.err;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static fs::path run() { return root_ / "run"; }
  static fs::path checkpoint() { return run() / "checkpoint-last.safetensors"; }

  static fs::path root_;
};

fs::path AppExportVisualize::root_;

// ---- the protobuf encoder ----

TEST(ProtoWriter, EncodesTheWireFormatAsTheProtobufDocs) {
  // protobuf.dev/programming-guides/encoding: field 1 = 150 is 08 96 01; field 2 = "testing" is
  // 12 07 followed by the bytes; a message nests as a length-delimited field.
  EXPECT_EQ(ProtoWriter().varint(1, 150).data(), std::string("\x08\x96\x01"));
  EXPECT_EQ(ProtoWriter().bytes(2, "testing").data(), std::string("\x12\x07testing"));
  EXPECT_EQ(ProtoWriter().message(3, ProtoWriter().varint(1, 150)).data(),
            std::string("\x1a\x03\x08\x96\x01"));
  // A negative int64 is its two's complement: ten bytes after the key.
  EXPECT_EQ(ProtoWriter().varint(1, uint64_t(int64_t(-1))).data().size(), 11u);
  const std::vector<pb::Field> f =
      pb::parse(ProtoWriter().float32(4, 1.5f).float64(5, -2.25).data());
  EXPECT_EQ(pb::one(f, 4).wire, 5);
  EXPECT_EQ(pb::one(f, 4).as_float(), 1.5f);
  EXPECT_EQ(pb::one(f, 5).wire, 1);
  EXPECT_EQ(pb::one(f, 5).as_double(), -2.25);
}

// ---- TensorBoard events ----

TEST(TensorBoardEvents, Crc32cMatchesTheCastagnoliCheckValue) {
  // The standard check value of CRC-32C over "123456789" (RFC 3720, appendix B.4).
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  const uint32_t crc = crc32c("abc");
  EXPECT_EQ(masked_crc32c("abc"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

struct Scalar {
  int64_t step;
  float value;
};
struct EventLog {
  std::string file_version;
  std::map<std::string, std::vector<Scalar>> scalars;
  std::map<std::string, std::vector<std::string>> images;  // encoded PNGs
};

uint64_t little_endian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;)
    value = value << 8 | uint8_t(bytes[i]);
  return value;
}

// Reads a TFRecord file of Event protos, checking every frame's length and both masked CRCs.
EventLog read_events(const fs::path& path) {
  const std::string data = read_file(path);
  EventLog log;
  for (size_t at = 0; at < data.size();) {
    if (data.size() - at < 12) {
      ADD_FAILURE() << path << ": truncated record header at " << at;
      break;
    }
    const std::string_view header(data.data() + at, 8);
    const uint64_t length = little_endian(header);
    EXPECT_EQ(little_endian(std::string_view(data.data() + at + 8, 4)), masked_crc32c(header));
    if (data.size() - at - 12 < length + 4) {
      ADD_FAILURE() << path << ": record at " << at << " runs past the end";
      break;
    }
    const std::string_view event(data.data() + at + 12, length);
    EXPECT_EQ(little_endian(std::string_view(data.data() + at + 12 + length, 4)),
              masked_crc32c(event));
    at += 12 + length + 4;
    const std::vector<pb::Field> fields = pb::parse(event);
    EXPECT_GT(pb::one(fields, 1).as_double(), 1e9);  // wall_time, seconds since 1970
    const int64_t step = int64_t(pb::one(fields, 2).value);
    for (const pb::Field& f : pb::all(fields, 3))
      log.file_version = std::string(f.bytes);
    for (const pb::Field& summary : pb::all(fields, 5))
      for (const pb::Field& value : pb::all(pb::parse(summary.bytes), 1)) {
        const std::vector<pb::Field> v = pb::parse(value.bytes);
        const std::string tag(pb::one(v, 1).bytes);
        for (const pb::Field& s : pb::all(v, 2))
          log.scalars[tag].push_back({step, s.as_float()});
        for (const pb::Field& image : pb::all(v, 4))
          log.images[tag].emplace_back(pb::one(pb::parse(image.bytes), 4).bytes);
      }
  }
  return log;
}

TEST(TensorBoardEvents, WriterFramesEventsThatReadBack) {
  const fs::path dir = fs::temp_directory_path() / ("cu3d-test-events-" + std::to_string(getpid()));
  fs::remove_all(dir);
  Generator gen(7);
  const std::vector<float> values = Tensor::uniform({3}, -5, 5, gen).to_vector<float>();
  fs::path first, second;
  {
    EventWriter writer(dir);
    writer.scalars({{"a", values[0]}, {"b", values[1]}}, 3);
    writer.scalars({{"a", values[2]}}, 17);
    first = writer.path();
    second = EventWriter(dir).path();  // a second writer in the same second gets its own file
  }
  EXPECT_NE(first, second);
  EXPECT_NE(first.filename().string().find("events.out.tfevents."), std::string::npos);
  const EventLog log = read_events(first);
  EXPECT_EQ(log.file_version, "brain.Event:2");
  ASSERT_EQ(log.scalars.at("a").size(), 2u);
  EXPECT_EQ(log.scalars.at("a")[0].step, 3);
  EXPECT_FLOAT_EQ(log.scalars.at("a")[0].value, values[0]);
  EXPECT_EQ(log.scalars.at("a")[1].step, 17);
  EXPECT_FLOAT_EQ(log.scalars.at("a")[1].value, values[2]);
  EXPECT_FLOAT_EQ(log.scalars.at("b").at(0).value, values[1]);
  fs::remove_all(dir);
}

std::vector<std::vector<double>> result_columns(const fs::path& result_txt) {
  std::istringstream in(read_file(result_txt));
  std::string header;
  std::getline(in, header);
  std::vector<std::vector<double>> columns(5);
  for (double epoch; in >> epoch;) {
    columns[0].push_back(epoch);
    for (size_t c = 1; c < columns.size(); ++c) {
      double v = NAN;
      in >> v;
      columns[c].push_back(v);
    }
  }
  return columns;
}

fs::path event_file(const fs::path& run) {
  for (const auto& entry : fs::directory_iterator(run))
    if (entry.path().filename().string().starts_with("events.out.tfevents.")) return entry.path();
  return {};
}

TEST_F(AppExportVisualize, TrainWritesEventsWithTheLoggedScalarsAndConfusionImages) {
  const fs::path file = event_file(run());
  ASSERT_FALSE(file.empty()) << "no event file in " << run();
  const EventLog log = read_events(file);
  const auto columns = result_columns(run() / "result.txt");  // epoch loss acc val_loss val_acc
  ASSERT_EQ(columns[0].size(), 2u);
  const std::vector<std::pair<const char*, int>> per_epoch = {
      {"epoch/loss", 1}, {"epoch/accuracy", 2}, {"epoch/val_loss", 3}, {"epoch/val_accuracy", 4}};
  for (const auto& [tag, column] : per_epoch) {
    ASSERT_EQ(log.scalars.count(tag), 1u) << tag;
    const std::vector<Scalar>& s = log.scalars.at(tag);
    ASSERT_EQ(s.size(), 2u) << tag;
    for (size_t e = 0; e < 2; ++e) {
      EXPECT_EQ(s[e].step, int64_t(e + 1)) << tag;
      EXPECT_NEAR(s[e].value, columns[size_t(column)][e], 1e-5) << tag;  // result.txt: 6 digits
    }
  }
  for (const char* tag : {"epoch/val_top5", "epoch/val_video_top1", "epoch/val_video_top5",
                          "epoch/learning_rate", "epoch/clips_per_second"})
    EXPECT_EQ(log.scalars.count(tag), 1u) << tag;
  EXPECT_FLOAT_EQ(log.scalars.at("epoch/learning_rate")[0].value, 0.003f);
  EXPECT_GT(log.scalars.at("epoch/clips_per_second")[0].value, 0);
  // 12 steps an epoch: the every-10-steps scalars at steps 10 and 20.
  for (const char* tag :
       {"train/loss", "train/accuracy", "train/learning_rate", "train/clips_per_second"}) {
    ASSERT_EQ(log.scalars.count(tag), 1u) << tag;
    ASSERT_EQ(log.scalars.at(tag).size(), 2u) << tag;
    EXPECT_EQ(log.scalars.at(tag)[0].step, 10);
    EXPECT_EQ(log.scalars.at(tag)[1].step, 20);
  }
  ASSERT_EQ(log.images.count("confusion_matrix"), 1u);
  const std::vector<std::string>& images = log.images.at("confusion_matrix");
  ASSERT_EQ(images.size(), 2u);
  const cv::Mat png =
      cv::imdecode(std::vector<uchar>(images[1].begin(), images[1].end()), cv::IMREAD_COLOR);
  EXPECT_FALSE(png.empty()) << "the confusion matrix image is not a PNG";
  EXPECT_EQ(images[1], read_file(run() / "confusion_matrix.png"));
}

constexpr const char* kReadEventsPy = R"(import json, sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.IMAGES: 0})
acc.Reload()
out = {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
out["images"] = {tag: len(acc.Images(tag)) for tag in acc.Tags()["images"]}
print(json.dumps(out))
)";

TEST_F(AppExportVisualize, TensorBoardsOwnReaderSeesTheScalars) {
  const std::string lacks = python_lacks("tensorboard.backend.event_processing.event_accumulator");
  if (!lacks.empty()) GTEST_SKIP() << lacks;
  const fs::path script = root_ / "read_events.py";
  std::ofstream(script) << kReadEventsPy;
  const json seen = json::parse(run_python(script, {run().string()}));
  const auto columns = result_columns(run() / "result.txt");
  ASSERT_EQ(seen.at("epoch/val_accuracy").size(), 2u) << seen.dump();
  for (size_t e = 0; e < 2; ++e) {
    EXPECT_EQ(seen["epoch/val_accuracy"][e][0], int64_t(e + 1));
    EXPECT_NEAR(seen["epoch/val_accuracy"][e][1].get<double>(), columns[4][e], 1e-5);
    EXPECT_NEAR(seen["epoch/loss"][e][1].get<double>(), columns[1][e], 1e-5);
  }
  EXPECT_EQ(seen.at("train/loss").size(), 2u);
  EXPECT_EQ(seen.at("images").at("confusion_matrix"), 2);
}

// ---- ONNX export ----

// A model of `config` with random weights everywhere: the 1-D tensors (biases, norm scales and
// offsets, batch-norm statistics) too, which start as zeros and ones and would hide a broadcast
// along the wrong axis.
std::shared_ptr<Module> random_model(const ModelSpec& spec, uint64_t seed) {
  std::shared_ptr<Module> model = build_model(spec.config, spec.num_classes, spec.input, seed);
  Generator gen(seed + 1);
  autograd::NoGradGuard no_grad;
  NamedTensors tensors = model->named_parameters();
  for (const auto& buffer : model->named_buffers())
    tensors.push_back(buffer);
  for (auto& [name, t] : tensors) {
    if (t.dim() != 1) continue;
    const bool positive = name.ends_with("gamma") || name.ends_with("running_var");
    t.copy_from(Tensor::uniform(t.shape(), positive ? 0.5 : -0.5, 1.5, gen));
  }
  model->eval();
  return model;
}

ModelSpec spec_of(const std::string& config_text_or_preset, int classes, Shape input = {}) {
  const ModelConfig config = config_text_or_preset.starts_with("{")
                                 ? ModelConfig(json::parse(config_text_or_preset))
                                 : preset_config(config_text_or_preset);
  return {config, classes, std::move(input)};
}

std::vector<std::string> op_types(const OnnxGraph& g) {
  std::vector<std::string> ops;
  for (const OnnxNode& n : g.nodes)
    ops.push_back(n.op_type);
  return ops;
}

int64_t count(const std::vector<std::string>& ops, const std::string& op) {
  return std::count(ops.begin(), ops.end(), op);
}

TEST(OnnxExport, FileHasTheModelsInputOutputOpsAndEveryWeight) {
  const ModelSpec spec = spec_of(kMixedModel, 3);
  const std::shared_ptr<Module> model = random_model(spec, 5);
  const OnnxGraph graph = build_onnx_graph(spec, *model);
  const std::vector<std::string> ops = op_types(graph);
  EXPECT_EQ(count(ops, "Conv"), 2);
  EXPECT_EQ(count(ops, "MaxPool"), 2);
  EXPECT_EQ(count(ops, "Gemm"), 2);
  EXPECT_EQ(count(ops, "BatchNormalization"), 2);
  EXPECT_EQ(count(ops, "LayerNormalization"), 1);  // per_position; per_sample is spelled out
  EXPECT_EQ(count(ops, "Dropout"), 0);
  EXPECT_EQ(ops.front(), "Transpose");
  EXPECT_EQ(ops.back(), "Softmax");
  EXPECT_EQ(graph.nodes.back().outputs, std::vector<std::string>{kOnnxOutput});
  // Flatten must see channels last, as cu3d flattens.
  const auto flatten = std::find(ops.begin(), ops.end(), "Flatten");
  ASSERT_NE(flatten, ops.end());
  const OnnxNode& before_flatten = graph.nodes[size_t(flatten - ops.begin()) - 1];
  ASSERT_EQ(before_flatten.op_type, "Transpose");
  EXPECT_EQ(before_flatten.attributes.at(0).ints, (std::vector<int64_t>{0, 2, 3, 4, 1}));

  const std::string bytes = encode_onnx_model(graph);
  const std::vector<pb::Field> model_proto = pb::parse(bytes);
  EXPECT_EQ(pb::one(model_proto, 1).value, 8u);  // ir_version
  const std::vector<pb::Field> opset = pb::parse(pb::one(model_proto, 8).bytes);
  EXPECT_EQ(pb::one(opset, 1).bytes, "");
  EXPECT_EQ(pb::one(opset, 2).value, uint64_t(kOnnxOpset));
  const std::vector<pb::Field> g = pb::parse(pb::one(model_proto, 7).bytes);
  EXPECT_EQ(pb::all(g, 1).size(), graph.nodes.size());

  // input: "input", float, dims [N, 6, 12, 10, 2]; output "probabilities" [N, 3].
  auto dims_of = [](const pb::Field& value_info, std::string& name) {
    const std::vector<pb::Field> v = pb::parse(value_info.bytes);
    name = std::string(pb::one(v, 1).bytes);
    const std::vector<pb::Field> tensor =
        pb::parse(pb::one(pb::parse(pb::one(v, 2).bytes), 1).bytes);
    EXPECT_EQ(pb::one(tensor, 1).value, 1u);  // FLOAT
    std::vector<std::string> dims;
    for (const pb::Field& d : pb::all(pb::parse(pb::one(tensor, 2).bytes), 1)) {
      const pb::Field f = pb::parse(d.bytes).at(0);
      dims.push_back(f.number == 2 ? std::string(f.bytes) : std::to_string(f.value));
    }
    return dims;
  };
  std::string name;
  EXPECT_EQ(dims_of(pb::one(g, 11), name), (std::vector<std::string>{"N", "6", "12", "10", "2"}));
  EXPECT_EQ(name, kOnnxInput);
  EXPECT_EQ(dims_of(pb::one(g, 12), name), (std::vector<std::string>{"N", "3"}));
  EXPECT_EQ(name, kOnnxOutput);

  // Every parameter and buffer is stored once (plus the layer norm's epsilon scalar), with
  // raw_data the size its dims say.
  int64_t stored = 0;
  for (const pb::Field& init : pb::all(g, 5)) {
    const std::vector<pb::Field> t = pb::parse(init.bytes);
    int64_t numel = 1;
    for (const pb::Field& d : pb::all(t, 1))
      numel *= int64_t(d.value);
    EXPECT_EQ(pb::one(t, 2).value, 1u);
    EXPECT_EQ(int64_t(pb::one(t, 9).bytes.size()), 4 * numel) << pb::one(t, 8).bytes;
    stored += numel;
  }
  int64_t expected = 1;  // ln2's epsilon
  for (const auto& [n, t] : model->named_parameters())
    expected += t.numel();
  for (const auto& [n, t] : model->named_buffers())
    expected += t.numel();
  EXPECT_EQ(stored, expected);
}

TEST(OnnxExport, ConvWeightsAreStoredChannelsFirst) {
  const ModelSpec spec = spec_of(kMixedModel, 3);
  const std::shared_ptr<Module> model = random_model(spec, 9);
  const OnnxGraph graph = build_onnx_graph(spec, *model);
  const auto found = std::find_if(graph.initializers.begin(), graph.initializers.end(),
                                  [](const OnnxInitializer& t) { return t.name == "c1/weight"; });
  ASSERT_NE(found, graph.initializers.end());
  EXPECT_EQ(found->dims, (Shape{5, 2, 3, 3, 2}));  // (K, C, kd, kh, kw) from (K, kd, kh, kw, C)
  const std::vector<float> w = model->named_parameters().at(0).second.to_vector<float>();
  // ONNX [k=4][c=1][kd=2][kh=0][kw=1] is cu3d [4][2][0][1][1].
  EXPECT_EQ(found->values[size_t((((4 * 2 + 1) * 3 + 2) * 3 + 0) * 2 + 1)],
            w[size_t((((4 * 3 + 2) * 3 + 0) * 2 + 1) * 2 + 1)]);
}

TEST(OnnxExport, UnknownTensorIsAnErrorNamingIt) {
  const ModelSpec spec = spec_of(kMixedModel, 3);
  const std::shared_ptr<Module> other =
      build_model(json::parse(kTinyModelNoDropout), 3, {6, 12, 10, 2});
  try {
    build_onnx_graph(spec, *other);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'c1.weight'"), std::string::npos) << e.what();
  }
}

constexpr const char* kRunOnnxPy = R"(import sys
import numpy as np
import onnxruntime as ort
model, inp, out, shape = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
x = np.fromfile(inp, dtype=np.float32).reshape([int(d) for d in shape.split(",")])
session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
session.run(["probabilities"], {"input": x})[0].astype(np.float32).tofile(out)
)";

// cu3d's probabilities and ONNX Runtime's for the same random input agree to rel 1e-4.
void expect_onnx_runtime_matches(const std::string& what, const ModelSpec& spec, int batch) {
  SCOPED_TRACE(what);
  const fs::path dir = fs::temp_directory_path() / ("cu3d-test-ort-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::shared_ptr<Module> model = random_model(spec, 11);
  std::ofstream(dir / "model.onnx", std::ios::binary)
      << encode_onnx_model(build_onnx_graph(spec, *model));
  Shape shape = {batch};
  const Shape input = spec.input.empty() ? config_input_shape(spec.config) : spec.input;
  shape.insert(shape.end(), input.begin(), input.end());
  Generator gen(13);
  const Tensor x = Tensor::uniform(shape, -1, 1, gen);
  const std::vector<float> xs = x.to_vector<float>();
  std::ofstream(dir / "input.bin", std::ios::binary)
      .write(reinterpret_cast<const char*>(xs.data()), std::streamsize(xs.size() * 4));
  std::ofstream(dir / "run_onnx.py") << kRunOnnxPy;
  std::string dims;
  for (int64_t d : shape)
    dims += (dims.empty() ? "" : ",") + std::to_string(d);
  run_python(dir / "run_onnx.py", {(dir / "model.onnx").string(), (dir / "input.bin").string(),
                                   (dir / "output.bin").string(), dims});
  const std::vector<float> ours = class_probabilities(*model, x, spec.num_classes);
  const std::string theirs_bytes = read_file(dir / "output.bin");
  ASSERT_EQ(theirs_bytes.size(), ours.size() * 4);
  std::vector<float> theirs(ours.size());
  std::memcpy(theirs.data(), theirs_bytes.data(), theirs_bytes.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < ours.size(); ++i) {
    diff = std::max(diff, double(std::abs(ours[i] - theirs[i])));
    scale = std::max(scale, double(std::abs(ours[i])));
  }
  EXPECT_LT(diff / scale, 1e-4) << "max |cu3d - onnxruntime| " << diff << " of " << scale;
  fs::remove_all(dir);
}

TEST(OnnxExport, OnnxRuntimeGivesCu3dsProbabilities) {
  const std::string lacks = python_lacks("onnxruntime");
  if (!lacks.empty()) GTEST_SKIP() << lacks;
  expect_onnx_runtime_matches("keras3d", spec_of("keras3d", 5), 2);
  expect_onnx_runtime_matches("cnn2d", spec_of("cnn2d", 4), 3);
  expect_onnx_runtime_matches("mixed", spec_of(kMixedModel, 3), 2);
  // The layer-norm C3D on 8 frames of 16x16: every layer of the full model, 0.4 GMAC a clip.
  expect_onnx_runtime_matches("c3d-ln", spec_of("c3d-ln", 6, {8, 16, 16, 3}), 1);
  ModelSpec ensemble = spec_of("keras3d-bn", 4);
  ensemble.config["ensemble"] = 2;
  expect_onnx_runtime_matches("keras3d-bn ensemble of 2", ensemble, 2);
}

TEST_F(AppExportVisualize, ExportWritesAnOnnxFileWithClassesInItsMetadata) {
  const fs::path out = root_ / "exported" / "tiny.onnx";
  const Captured c = cli({"export", checkpoint().string(), "--output", out.string()});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find(out.string()), std::string::npos) << c.out;
  const std::string bytes = read_file(out);  // the fields view these bytes
  const std::vector<pb::Field> model = pb::parse(bytes);
  std::map<std::string, std::string> metadata;
  for (const pb::Field& entry : pb::all(model, 14)) {
    const std::vector<pb::Field> kv = pb::parse(entry.bytes);
    metadata[std::string(pb::one(kv, 1).bytes)] = std::string(pb::one(kv, 2).bytes);
  }
  EXPECT_EQ(json::parse(metadata.at(kClassesKey)),
            json::parse(R"(["MoveLeft", "MoveRight", "MoveUp"])"));
  EXPECT_TRUE(json::parse(metadata.at(kRecipeKey)).contains("mean"));
  // Without --output: beside the checkpoint.
  ASSERT_EQ(cli({"export", checkpoint().string()}).status, 0);
  EXPECT_TRUE(fs::exists(run() / "checkpoint-last.onnx"));
}

// ---- visualize ----

TEST_F(AppExportVisualize, VisualizeRaisesTheUnitsActivationAndWritesFrames) {
  const fs::path out = root_ / "vis";
  const Captured c = cli({"visualize", checkpoint().string(), "--layer", "conv1", "--unit", "2",
                          "--iter", "20", "--lr", "0.1", "--output", out.string()});
  ASSERT_EQ(c.status, 0) << c.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(c.out, m, std::regex("activation (\\S+) -> (\\S+) after 20")))
      << c.out;
  EXPECT_GT(std::stod(m[2]), std::stod(m[1])) << c.out;
  EXPECT_NE(c.out.find("the model predicts "), std::string::npos) << c.out;
  for (int f = 0; f < 4; ++f) {
    const cv::Mat frame =
        cv::imread((out / ("frame_0" + std::to_string(f) + ".png")).string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(frame.empty()) << "frame " << f;
    EXPECT_EQ(frame.rows, 32);
  }
  const cv::Mat sheet = cv::imread((out / "contact_sheet.png").string(), cv::IMREAD_UNCHANGED);
  ASSERT_FALSE(sheet.empty());
  EXPECT_GE(sheet.rows, 128);
  EXPECT_GE(sheet.cols, 4 * sheet.rows);
}

TEST_F(AppExportVisualize, VisualizeListPrintsLayersWithShapes) {
  const Captured c = cli({"visualize", checkpoint().string(), "--list"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.out.find("conv1"), std::string::npos);
  EXPECT_NE(c.out.find("[4,32,32,4]"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("fc"), std::string::npos);
}

TEST_F(AppExportVisualize, BadArgumentsAndMissingFilesFailWithOneLineReason) {
  const std::string ckpt = checkpoint().string();
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"export", (root_ / "missing.safetensors").string()}, "missing.safetensors"},
      {{"export", (root_ / "tiny3d.json").string()}, "tiny3d.json"},
      {{"visualize", (root_ / "missing.safetensors").string(), "--layer", "conv1"},
       "missing.safetensors"},
      {{"visualize", ckpt, "--layer", "nosuch"}, "'nosuch'"},
      {{"visualize", ckpt, "--layer", "conv1", "--unit", "4"}, "--unit 4"},
      {{"visualize", ckpt, "--layer", "conv1", "--iter", "0"}, "--iter"},
      {{"visualize", ckpt}, "--layer"},
  };
  for (const auto& [args, needle] : cases) {
    const Captured c = cli(args);
    EXPECT_NE(c.status, 0) << args[0] << " " << needle;
    EXPECT_NE(c.err.find(needle), std::string::npos) << c.err;
    EXPECT_EQ(std::count(c.err.begin(), c.err.end(), '\n'), 1) << c.err;
  }
}

}  // namespace
}  // namespace cu3d::apps
