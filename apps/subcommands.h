// Each `cu3d` subcommand lives in its own file and registers itself on the CLI11 app here.
#pragma once

#include <CLI/CLI.hpp>

namespace cu3d::apps {

// `cu3d synth`: writes the synthetic motion dataset (real videos, UCF101 layout).
void add_synth_command(CLI::App& app);
// `cu3d prep`: decodes a video folder once into shards, with a summary.
void add_prep_command(CLI::App& app);
// `cu3d train`: trains a model on shards or a video folder into an output folder.
void add_train_command(CLI::App& app);
// `cu3d eval`: accuracy of a checkpoint on a test split, per class, with a confusion matrix.
void add_eval_command(CLI::App& app);
// `cu3d predict`: the top classes of one or more videos.
void add_predict_command(CLI::App& app);
// `cu3d export`: a checkpoint to ONNX for serving.
void add_export_command(CLI::App& app);
// `cu3d visualize`: activation maximization of one unit of one layer (the Keras tool's
// visualize_input).
void add_visualize_command(CLI::App& app);
// `cu3d summary`: a model's layer table, totals, memory estimate and diagram.
void add_summary_command(CLI::App& app);
// `cu3d toy`: trains a small 3D CNN on generated motion tensors (the engine's smoke run).
void add_toy_command(CLI::App& app);

}  // namespace cu3d::apps
