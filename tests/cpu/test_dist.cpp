// Data-parallel pieces that a single process can check (the 2-rank tests are tests/dist, run by
// mpirun): launcher detection, the tape's grad-ready hook, the gradient reducer in a world of one,
// the learning-rate scaling rule.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "apps/distributed.h"
#include "engine/autograd.h"
#include "engine/dist/communicator.h"
#include "engine/dist/grad_reducer.h"
#include "engine/dist/launch.h"
#include "engine/dist/sync_batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/rng.h"
#include "layers/basic.h"

namespace cu3d {
namespace {

dist::LaunchInfo launch_with(const std::map<std::string, std::string>& env) {
  return dist::detect_launch([&](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistLaunch, AloneWithoutLauncherVariables) {
  const dist::LaunchInfo info = launch_with({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}});
  EXPECT_FALSE(info.launched()) << "a batch script's shell is not rank 0 of SLURM_NTASKS";
  EXPECT_EQ(info.world_size, 1);
}

TEST(DistLaunch, ReadsMpirunSrunAndGenericVariables) {
  dist::LaunchInfo info = launch_with({{"OMPI_COMM_WORLD_RANK", "3"},
                                       {"OMPI_COMM_WORLD_SIZE", "8"},
                                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                                       {"RANK", "0"},
                                       {"WORLD_SIZE", "2"}});
  EXPECT_EQ(info.launcher, "mpirun");
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.world_size, 8);
  EXPECT_EQ(info.local_rank, 1);
  info = launch_with({{"PMIX_RANK", "5"}, {"SLURM_STEP_NUM_TASKS", "16"}, {"SLURM_LOCALID", "1"}});
  EXPECT_EQ(info.launcher, "srun");
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.world_size, 16);
  info = launch_with({{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "1"}});
  EXPECT_EQ(info.launcher, "env");
  EXPECT_EQ(info.local_rank, 1);
}

TEST(DistLaunch, RejectsInconsistentVariablesByName) {
  try {
    launch_with({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
    FAIL() << "rank 2 of 2 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("WORLD_SIZE"), std::string::npos) << e.what();
  }
  EXPECT_THROW(launch_with({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), Error);
}

// The hook sees each leaf once, when its gradient is already complete: here `w` is used twice,
// its first use in tape order is its last in backward.
TEST(GradReadyHook, FiresOncePerLeafWithTheFinalGradient) {
  Generator gen(3);
  Tensor w = Tensor::normal({5}, 0, 1, gen).set_requires_grad(true);
  Tensor v = Tensor::normal({5}, 0, 1, gen).set_requires_grad(true);
  const Tensor x = Tensor::normal({5}, 0, 1, gen);
  const Tensor loss = sum(add(mul(mul(x, w), v), mul(w, w)));
  std::map<const TensorImpl*, std::vector<float>> at_hook;
  autograd::backward(loss, Tensor(), [&](const Tensor& leaf) {
    EXPECT_TRUE(at_hook.emplace(leaf.impl(), leaf.grad().to_vector<float>()).second)
        << "hook called twice for one leaf";
  });
  ASSERT_EQ(at_hook.size(), 2u);
  EXPECT_EQ(at_hook.at(w.impl()), w.grad().to_vector<float>());
  EXPECT_EQ(at_hook.at(v.impl()), v.grad().to_vector<float>());
}

TEST(GradReducer, WorldOfOneKeepsGradientsAndBucketsBySize) {
  const std::unique_ptr<dist::Communicator> one = dist::make_local_communicator();
  Generator gen(4);
  std::vector<Tensor> params;
  for (int64_t n : {300000, 10, 300000, 7})  // 1.2 MB, 40 B, 1.2 MB, 28 B
    params.push_back(Tensor::normal({n}, 0, 1, gen).set_requires_grad(true));
  // Params 2 and 3 get no gradient.
  const Tensor loss = add(sum(mul(params[0], params[0])), sum(params[1]));
  dist::GradReducer reducer(*one, params, {.bucket_mb = 1});
  // In backward order, {params 3, 2} and {1, 0}: a bucket closes once it holds >= 1 MB.
  EXPECT_EQ(reducer.bucket_count(), 2u);
  autograd::backward(loss, Tensor(), reducer.hook());
  const std::vector<float> before = params[0].grad().to_vector<float>();
  reducer.finish();
  EXPECT_EQ(params[0].grad().to_vector<float>(), before);
  EXPECT_EQ(reducer.launched_during_backward(), 1u) << "bucket {1, 0} filled during backward";
  for (size_t i = 2; i < params.size(); ++i) {
    ASSERT_TRUE(params[i].grad().defined()) << "a parameter without gradient contributes zeros";
    for (float g : params[i].grad().to_vector<float>())
      EXPECT_EQ(g, 0.f);
  }
}

// In a world of one, synchronized batch norm is batch norm: output, running statistics and all
// three gradients agree with engine/ops' batch_norm.
TEST(SyncBatchNorm, WorldOfOneEqualsBatchNorm) {
  const std::unique_ptr<dist::Communicator> one = dist::make_local_communicator();
  Generator gen(8);
  const Tensor x0 = Tensor::normal({3, 2, 4, 5}, 0.5, 2, gen);
  const Tensor dy = Tensor::normal({3, 2, 4, 5}, 0, 1, gen);
  struct Result {
    std::vector<float> y, mean, var, dx, dgamma, dbeta;
  };
  auto run = [&](bool sync) {
    Tensor x = x0.clone().set_requires_grad(true);
    Generator init(9);
    Tensor gamma = Tensor::normal({5}, 1, 0.2, init).set_requires_grad(true);
    Tensor beta = Tensor::normal({5}, 0, 0.2, init).set_requires_grad(true);
    Tensor mean = Tensor::zeros({5}), var = Tensor::full({5}, 1.0);
    const Tensor y = sync ? dist::sync_batch_norm(x, gamma, beta, mean, var, 0.1, 1e-5, *one)
                          : batch_norm(x, gamma, beta, mean, var, true, 0.1, 1e-5);
    autograd::backward(y, dy);
    return Result{y.to_vector<float>(),
                  mean.to_vector<float>(),
                  var.to_vector<float>(),
                  x.grad().to_vector<float>(),
                  gamma.grad().to_vector<float>(),
                  beta.grad().to_vector<float>()};
  };
  const Result a = run(false), b = run(true);
  auto expect_near = [](const std::vector<float>& u, const std::vector<float>& v,
                        const char* what) {
    ASSERT_EQ(u.size(), v.size()) << what;
    for (size_t i = 0; i < u.size(); ++i)
      EXPECT_NEAR(u[i], v[i], 1e-5 * (1 + std::abs(u[i]))) << what << " " << i;
  };
  expect_near(a.y, b.y, "y");
  expect_near(a.mean, b.mean, "running_mean");
  expect_near(a.var, b.var, "running_var");
  expect_near(a.dx, b.dx, "dx");
  expect_near(a.dgamma, b.dgamma, "dgamma");
  expect_near(a.dbeta, b.dbeta, "dbeta");
}

TEST(DistDropout, RanksOtherThanZeroGetTheirOwnSeeds) {
  auto seeds = [](int rank) {
    Sequential model;
    model.add("a", std::make_shared<Dropout>(0.5, 11));
    model.add("b", std::make_shared<Dropout>(0.5, 12));
    apps::decorrelate_dropout(model, rank);
    std::vector<uint64_t> out;
    for (const auto& [name, child] : model.children())
      out.push_back(dynamic_cast<Dropout&>(*child).seed());
    return out;
  };
  EXPECT_EQ(seeds(0), (std::vector<uint64_t>{11, 12}));
  const std::vector<uint64_t> one = seeds(1), two = seeds(2);
  EXPECT_NE(one[0], 11u);
  EXPECT_NE(one[0], one[1]);
  EXPECT_NE(one, two);
  EXPECT_EQ(seeds(1), one) << "the same rank must draw the same masks again (resume)";
}

TEST(DistSettings, LinearScalingMultipliesByTheWorldSize) {
  apps::DistSettings s;
  EXPECT_EQ(apps::scaled_lr(1e-3, s, 8), 1e-3);
  s.lr_scaling = "linear";
  EXPECT_DOUBLE_EQ(apps::scaled_lr(1e-3, s, 8), 8e-3);
  s.lr_scaling = "sqrt";
  EXPECT_THROW(apps::scaled_lr(1e-3, s, 8), Error);
}

}  // namespace
}  // namespace cu3d
