// The run-time compute choices (engine/compute.h): the backend names the command line takes, and
// the line each run's log prints, which names every conv kernel version switched on.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/compute.h"

namespace cu3d {
namespace {

TEST(ComputeOptions, BackendNamesRoundTripAndAnUnknownOneSaysWhatToUse) {
  for (Backend b : {Backend::cu3d, Backend::cudnn, Backend::auto_select})
    EXPECT_EQ(parse_backend(to_string(b)), b);
  try {
    parse_backend("cublas");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use cu3d, cudnn or auto"), std::string::npos);
  }
}

// --backend: a backend for every op or op=backend for one, applied in order to the defaults
// (conv auto, the memory-bound ops cu3d).
TEST(ComputeOptions, BackendsParsePerOpInOrder) {
  const OpBackends defaults;
  EXPECT_EQ(defaults[BackendOp::conv], Backend::auto_select);
  for (BackendOp op :
       {BackendOp::pool, BackendOp::activation, BackendOp::softmax, BackendOp::batch_norm})
    EXPECT_EQ(defaults[op], Backend::cu3d) << to_string(op);
  EXPECT_EQ(parse_backends("conv=auto"), defaults);
  EXPECT_EQ(parse_backends("cudnn"), OpBackends::all(Backend::cudnn));

  OpBackends expected = OpBackends::all(Backend::cudnn);
  expected[BackendOp::conv] = Backend::auto_select;
  expected[BackendOp::batch_norm] = Backend::cu3d;
  EXPECT_EQ(parse_backends("cudnn,conv=auto,batch_norm=cu3d"), expected);

  expected = defaults;
  expected[BackendOp::pool] = Backend::cudnn;
  EXPECT_EQ(parse_backends("pool=cudnn"), expected);
  EXPECT_EQ(parse_backends("pool=cudnn,cu3d"), OpBackends::all(Backend::cu3d)) << "in order";
  for (BackendOp op : kBackendOps)  // every op's name parses
    EXPECT_EQ(parse_backends(fmt::format("{}=cudnn", to_string(op)))[op], Backend::cudnn);
}

TEST(ComputeOptions, BackendErrorsNameTheItemAndWhatItMayBe) {
  const auto message = [](const char* spec) {
    try {
      parse_backends(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("norm=cudnn"),
            "'norm=cudnn': unknown op 'norm': use conv, pool, activation, softmax or batch_norm "
            "(e.g. pool=cudnn)");
  EXPECT_EQ(message("pool=cublas"),
            "'pool=cublas': unknown backend 'cublas': use cu3d, cudnn or auto");
  EXPECT_EQ(message("cudnn,"), "unknown backend '': use cu3d, cudnn or auto");
  EXPECT_EQ(message("fast"), "unknown backend 'fast': use cu3d, cudnn or auto");
}

TEST(ComputeOptions, TheDescriptionNamesTheKernelsSwitchedOn) {
  const ComputeOptions saved = compute_options();
  ComputeOptions& o = compute_options();
  o = ComputeOptions{};
  o.tma_conv = o.wgmma_conv = o.pipelined_bwd_filter = false;  // version 3 alone first
  o.precision = Precision::bf16;
  o.backends = OpBackends::all(Backend::cu3d);
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
  o.tf32_pipelined_bwd_filter = true;  // bwd-filter's version 3 in tf32 as well
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, clustered TMA-fed wgmma conv, fp32 "
            "as 3xTF32, pipelined bwd-filter (tf32 too)), fusion on");
  o.fp32_tensor_cores = false;
  o.fp32_pipelined_conv = true;  // fp32 on version 3's FFMA form
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend cu3d (pipelined conv, clustered TMA-fed wgmma conv, "
            "pipelined fp32 conv, pipelined bwd-filter (tf32 too)), fusion on");
  o.pipelined_conv = false;  // version 2 throughout: the others are off with it
  o.fuse = false;
  EXPECT_EQ(describe_compute_options(), "precision bf16, conv backend cu3d, fusion off");
  o.backends = parse_backends("pool=cudnn,softmax=auto");  // the ops off their default named
  EXPECT_EQ(describe_compute_options(),
            "precision bf16, conv backend auto, pool backend cudnn, softmax backend auto, fusion "
            "off");
  compute_options() = saved;
}

#ifdef CU3D_CUDA
// The conv kernel versions the engine asks cu3d's CUDA conv for, per precision and switch: fp32
// stays on version 2's FFMA unless asked for version 3's FFMA form (fp32_pipelined_conv) or for
// three tf32 products (fp32_tensor_cores: the forward's wgmma version, which the bwd-filter takes
// too, as its version 3 in 3xTF32); bwd-filter's version 3 in tf32 only with its switch.
TEST(ComputeOptions, ConvKernelsFollowThePrecisionAndTheSwitches) {
  using cuda::ConvKernel;
  const ComputeOptions saved = compute_options();
  ComputeOptions& o = compute_options();
  auto expect = [&](Precision p, ConvKernel forward, ConvKernel bwd_filter) {
    o.precision = p;
    EXPECT_EQ(cu3d_conv_kernel(), forward) << to_string(p);
    EXPECT_EQ(cu3d_bwd_filter_kernel(), bwd_filter) << to_string(p);
  };
  o = ComputeOptions{};
  expect(Precision::bf16, ConvKernel::wgmma_tma, ConvKernel::pipelined);
  expect(Precision::tf32, ConvKernel::wgmma_tma, ConvKernel::implicit_gemm);
  expect(Precision::fp32, ConvKernel::implicit_gemm, ConvKernel::implicit_gemm);
  o.tf32_pipelined_bwd_filter = true;
  expect(Precision::tf32, ConvKernel::wgmma_tma, ConvKernel::pipelined);
  o.fp32_pipelined_conv = true;
  expect(Precision::fp32, ConvKernel::pipelined, ConvKernel::implicit_gemm);
  o.fp32_tensor_cores = true;  // before the FFMA form
  expect(Precision::fp32, ConvKernel::wgmma_tma, ConvKernel::wgmma_tma);
  o.cluster_conv = true;
  expect(Precision::fp32, ConvKernel::wgmma_cluster, ConvKernel::wgmma_cluster);
  o.pipelined_bwd_filter = false;
  expect(Precision::fp32, ConvKernel::wgmma_cluster, ConvKernel::implicit_gemm);
  o.pipelined_conv = false;  // version 2 throughout
  for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
    expect(p, ConvKernel::implicit_gemm, ConvKernel::implicit_gemm);
  compute_options() = saved;
}
#endif

}  // namespace
}  // namespace cu3d
