// A tiny generated dataset shared by the ranks of cu3d_dist_tests (rank 0 makes it, the others
// wait at a barrier), and in-process training runs with the single-process or the job's
// communicator.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "apps/trainer.h"
#include "data/shard.h"
#include "engine/dist/communicator.h"

namespace cu3d::testing_dist {

namespace fs = std::filesystem;

// 3 classes x 4 groups x 2 clips of 12 frames, 32x32, gray, depth 10 (the keras recipe): 18
// training and 6 test videos.
class DistData : public testing::Test {
 public:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  static dist::Communicator& world() { return dist::world(); }
  // A folder of this test run that all ranks see; `name` made unique per rank when asked.
  static fs::path dir(const std::string& name, bool per_rank = false);

  struct Run {
    int batch = 4;  // per rank
    int epochs = 2;
    std::string optimizer = "adam";
    double lr = 1e-3;
    bool sync_bn = false;
    bool resume = false;
    int64_t stop_at_step = 0;  // asks the run to stop after this step (as Ctrl-C does)
  };
  // Trains `model` on the shared shards, in-process, into `output`; `comm` null for a single
  // process. stdout is swallowed.
  static apps::TrainOutcome train(const ModelConfig& model, dist::Communicator* comm,
                                  const fs::path& output, const Run& run);

  static fs::path root_;
  static fs::path shards_;
};

// `config` with every dropout rate set to 0 (dropout masks are per rank; the equality of a
// 2-rank and a 1-rank run holds without them).
ModelConfig without_dropout(ModelConfig config);

// How far two checkpoints' tensors are apart: |a - b| / |a| (L2) over all the model's weights
// taken as one vector, and the largest per tensor (optimizer state included). Fails the test when
// their tensor names differ.
struct Difference {
  double weights = 0;
  double worst_tensor = 0;
  std::string worst_name;
};
Difference relative_difference(const fs::path& a, const fs::path& b);

}  // namespace cu3d::testing_dist
