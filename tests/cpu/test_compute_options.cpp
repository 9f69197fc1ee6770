// The run-time compute choices (engine/compute.h): the backend names the command line takes, and
// the line each run's log prints, which names every conv kernel version switched on.
#include <gtest/gtest.h>

#include "engine/compute.h"

namespace cu3d {
namespace {

TEST(ComputeOptions, BackendNamesRoundTripAndAnUnknownOneSaysWhatToUse) {
  for (ConvBackend b : {ConvBackend::cu3d, ConvBackend::cudnn, ConvBackend::auto_select})
    EXPECT_EQ(parse_conv_backend(to_string(b)), b);
  try {
    parse_conv_backend("cublas");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use cu3d, cudnn or auto"), std::string::npos);
  }
}

TEST(ComputeOptions, TheDescriptionNamesTheKernelsSwitchedOn) {
  const ComputeOptions saved = compute_options();
  ComputeOptions& o = compute_options();
  o = ComputeOptions{};
  o.tma_conv = o.wgmma_conv = o.pipelined_bwd_filter = false;  // version 3 alone first
  o.precision = Precision::bf16;
  o.conv_backend = ConvBackend::cu3d;
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv), fusion on");
  o.wide_conv = o.pipelined_bwd_filter = true;
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, wide conv, pipelined bwd-filter), "
            "fusion on");
  o.wgmma_conv = true;  // version 5 before version 4: the wide kernel is not what runs
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, wgmma conv, pipelined bwd-filter), "
            "fusion on");
  o.wgmma_ws_conv = true;  // version 6 before version 5
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, warp-specialized wgmma conv, "
            "pipelined bwd-filter), fusion on");
  o.tma_conv = true;  // version 7 (the default) before version 6
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, TMA-fed wgmma conv, "
            "pipelined bwd-filter), fusion on");
  o.fp32_tensor_cores = true;  // 3xTF32 rides on versions 5-8
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, TMA-fed wgmma conv, fp32 as "
            "3xTF32, pipelined bwd-filter), fusion on");
  o.cluster_conv = true;  // version 8 before version 7
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, clustered TMA-fed wgmma conv, fp32 "
            "as 3xTF32, pipelined bwd-filter), fusion on");
  o.pipelined_conv = false;  // version 2 throughout: the others are off with it
  o.fuse = false;
  EXPECT_EQ(describe_compute_options(), "precision bf16, conv backend cu3d, fusion off");
  compute_options() = saved;
}

}  // namespace
}  // namespace cu3d
