// The PNG figures of a run, drawn with OpenCV: the Keras tool's model_accuracy.png and
// model_loss.png (a curve per series over epochs) and a confusion matrix. Each file is written
// atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cu3d::apps {

struct Series {
  std::string name;            // legend, e.g. "val_acc"
  std::vector<double> values;  // one per epoch
};

// A line chart of `series` against epochs 1..n.
void write_curves_png(const std::filesystem::path& path, const std::string& title,
                      const std::string& y_label, const std::vector<Series>& series);

// Rows are true classes, columns predicted ones; each cell is shaded by its share of the row.
void write_confusion_png(const std::filesystem::path& path,
                         const std::vector<std::vector<int64_t>>& confusion,
                         const std::vector<std::string>& classes);

}  // namespace cu3d::apps

namespace cu3d::apps {

// Renders a Graphviz DOT file to PNG with `dot` when it is installed; false (and nothing written)
// when it is not.
bool render_dot(const std::filesystem::path& dot_file, const std::filesystem::path& png);

}  // namespace cu3d::apps
