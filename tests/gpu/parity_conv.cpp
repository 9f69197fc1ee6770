// conv3d parity cases: every pass of every backend and precision against the CPU reference
// (kernels/cpu/conv3d.h in double) on C3D's layers at batch 2 and the odd shapes.
#include <algorithm>

#include "gpu/cases.h"
#include "gpu/parity.h"
#include "kernels/cpu/conv3d.h"
#include "kernels/cuda/conv3d.cuh"
#include "kernels/cudnn/conv3d.h"

namespace cu3d::parity {
namespace {

using cases::Backend;

enum class Pass { fwd, fwd_bias_relu, bwd_data, bwd_filter };

const char* to_string(Pass p) {
  switch (p) {
    case Pass::fwd:
      return "fwd";
    case Pass::fwd_bias_relu:
      return "fwd_bias_relu";
    case Pass::bwd_data:
      return "bwd_data";
    case Pass::bwd_filter:
      return "bwd_filter";
  }
  return "?";
}

// Versions 5-8: they run only where cuda::wgmma_available says so.
bool needs_wgmma(Backend b) {
  return b == Backend::cu3d_wgmma || b == Backend::cu3d_wgmma_ws || b == Backend::cu3d_wgmma_tma ||
         b == Backend::cu3d_wgmma_cluster;
}

// cu3d's implicit-GEMM kernels (versions 2-8).
bool mine(Backend b) {
  return b == Backend::cu3d || b == Backend::cu3d_pipelined || b == Backend::cu3d_wide ||
         needs_wgmma(b);
}

std::vector<Compared> run_fwd(const Conv3dShape& s, Pass pass, Precision p, Backend b,
                              std::mt19937_64& rng, cudaStream_t stream) {
  const auto x = random_floats(s.input_size(), rng), w = random_floats(s.filter_size(), rng);
  const auto bias = random_floats(s.k, rng);
  std::vector<double> ref(s.output_size());
  cpu::conv3d_fwd<double>(s, to_double(x).data(), to_double(w).data(), to_double(bias).data(),
                          ref.data());
  const bool relu = pass == Pass::fwd_bias_relu;
  if (relu)
    for (double& v : ref)
      v = std::max(v, 0.0);

  const DeviceArray dx(x), dw(w), db(bias);
  DeviceArray dy(s.output_size());
  dy.poison();
  const auto kernel = cases::conv_kernel(b);
  if (relu && b == Backend::cudnn) {
    cudnn::conv3d_fwd_bias_relu(s, dx.get(), dw.get(), db.get(), dy.get(), p, stream);
  } else if (relu) {
    cuda::conv3d_fwd_bias_relu(s, dx.get(), dw.get(), db.get(), dy.get(), p, stream, kernel);
  } else if (mine(b)) {
    cuda::conv3d_fwd(s, dx.get(), dw.get(), db.get(), dy.get(), p, stream, kernel);
  } else if (b == Backend::cu3d_naive) {
    cuda::conv3d_fwd_naive(s, dx.get(), dw.get(), db.get(), dy.get(), p, stream);
  } else {
    cudnn::conv3d_fwd(s, dx.get(), dw.get(), db.get(), dy.get(), p, stream);
  }
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("y", dy.download(), ref)};
}

std::vector<Compared> run_bwd_data(const Conv3dShape& s, Precision p, Backend b,
                                   std::mt19937_64& rng, cudaStream_t stream) {
  const auto dy = random_floats(s.output_size(), rng), w = random_floats(s.filter_size(), rng);
  std::vector<double> ref(s.input_size());
  cpu::conv3d_bwd_data<double>(s, to_double(dy).data(), to_double(w).data(), ref.data());

  const DeviceArray ddy(dy), dw(w);
  DeviceArray ddx(s.input_size());
  ddx.poison();
  if (mine(b)) {
    cuda::conv3d_bwd_data(s, ddy.get(), dw.get(), ddx.get(), p, stream, cases::conv_kernel(b));
  } else if (b == Backend::cu3d_naive) {
    cuda::conv3d_bwd_data_naive(s, ddy.get(), dw.get(), ddx.get(), p, stream);
  } else {
    cudnn::conv3d_bwd_data(s, ddy.get(), dw.get(), ddx.get(), p, stream);
  }
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("dx", ddx.download(), ref)};
}

std::vector<Compared> run_bwd_filter(const Conv3dShape& s, Precision p, Backend b,
                                     std::mt19937_64& rng, cudaStream_t stream) {
  const auto x = random_floats(s.input_size(), rng), dy = random_floats(s.output_size(), rng);
  std::vector<double> ref_dw(s.filter_size()), ref_db(s.k);
  cpu::conv3d_bwd_filter<double>(s, to_double(x).data(), to_double(dy).data(), ref_dw.data(),
                                 ref_db.data());

  const DeviceArray dx(x), ddy(dy);
  DeviceArray ddw(s.filter_size()), ddb(s.k);
  ddw.poison();
  ddb.poison();
  if (mine(b)) {
    cuda::conv3d_bwd_filter(s, dx.get(), ddy.get(), ddw.get(), ddb.get(), p, stream,
                            cases::conv_kernel(b));
  } else if (b == Backend::cu3d_naive) {
    cuda::conv3d_bwd_filter_naive(s, dx.get(), ddy.get(), ddw.get(), ddb.get(), p, stream);
  } else {
    cudnn::conv3d_bwd_filter(s, dx.get(), ddy.get(), ddw.get(), ddb.get(), p, stream);
  }
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("dw", ddw.download(), ref_dw), compare("dbias", ddb.download(), ref_db)};
}

bool symmetric_padding(const Conv3dShape& s) {
  return s.pad_before == s.pad_after;
}

void add_cases(const cases::ConvLayer& layer, std::vector<ParityCase>* out) {
  for (Pass pass : {Pass::fwd, Pass::fwd_bias_relu, Pass::bwd_data, Pass::bwd_filter}) {
    for (Precision p : cases::kPrecisions) {
      std::vector<Backend> backends = {Backend::cu3d};
      const bool forward = pass == Pass::fwd || pass == Pass::fwd_bias_relu;
      if ((forward && cuda::conv3d_fwd_pipelined_supports(layer.shape, p)) ||
          (pass == Pass::bwd_data && cuda::conv3d_bwd_data_pipelined_supports(layer.shape, p)) ||
          (pass == Pass::bwd_filter && cuda::conv3d_bwd_filter_pipelined_supports(layer.shape, p)))
        backends.push_back(Backend::cu3d_pipelined);
      // fp32 on version 3's FFMA form: the forward and bwd-data's mirrored forward.
      if ((forward && cuda::conv3d_fwd_pipelined_ffma_supports(layer.shape, p)) ||
          (pass == Pass::bwd_data && bwd_data_is_forward(layer.shape) &&
           cuda::conv3d_fwd_pipelined_ffma_supports(bwd_data_as_forward(layer.shape), p)))
        backends.push_back(Backend::cu3d_pipelined);
      // Versions 4-7: the forward where they apply, and bwd-data where its mirrored forward
      // does (versions 5-7 skip where they cannot run: ParityCase::available). Version 7's
      // cases on shapes it does not take (strides) check its fallback to version 5.
      if ((forward && cuda::conv3d_fwd_wide_supports(layer.shape, p)) ||
          (pass == Pass::bwd_data && cuda::conv3d_bwd_data_pipelined_supports(layer.shape, p) &&
           cuda::conv3d_fwd_wide_supports(bwd_data_as_forward(layer.shape), p))) {
        backends.push_back(Backend::cu3d_wide);
        backends.push_back(Backend::cu3d_wgmma);
        backends.push_back(Backend::cu3d_wgmma_ws);
        backends.push_back(Backend::cu3d_wgmma_tma);
        backends.push_back(Backend::cu3d_wgmma_cluster);
      }
      // fp32 on versions 5-8 (3xTF32), forward and bwd-data, at fp32's tolerance.
      if (p == Precision::fp32 && ((forward && cases::split_tf32_takes(layer.shape)) ||
                                   (pass == Pass::bwd_data && bwd_data_is_forward(layer.shape) &&
                                    cases::split_tf32_takes(bwd_data_as_forward(layer.shape))))) {
        backends.push_back(Backend::cu3d_wgmma);
        backends.push_back(Backend::cu3d_wgmma_ws);
        backends.push_back(Backend::cu3d_wgmma_tma);
        backends.push_back(Backend::cu3d_wgmma_cluster);
      }
      // And fp32's bwd-filter on version 3 as 3xTF32, which a wgmma version asks for.
      if (pass == Pass::bwd_filter &&
          cuda::conv3d_bwd_filter_runs_split_tf32(layer.shape, p, cuda::ConvKernel::wgmma))
        backends.push_back(Backend::cu3d_wgmma);
      if (pass != Pass::fwd_bias_relu && !layer.real) backends.push_back(Backend::cu3d_naive);
      // cuDNN's fwd_bias_relu: cudnnConvolutionBiasActivationForward (fp32, tf32).
      if (symmetric_padding(layer.shape)) backends.push_back(Backend::cudnn);
      for (Backend b : backends) {
        ParityCase c;
        c.name = layer.name + "/" + to_string(pass) + "/" + cu3d::to_string(p) + "/" +
                 cases::to_string(b);
        c.tolerance = tolerance(p);
        if (needs_wgmma(b)) c.available = cuda::wgmma_available;
        const Conv3dShape s = layer.shape;
        c.run = [s, pass, p, b](std::mt19937_64& rng, cudaStream_t stream) {
          switch (pass) {
            case Pass::bwd_data:
              return run_bwd_data(s, p, b, rng, stream);
            case Pass::bwd_filter:
              return run_bwd_filter(s, p, b, rng, stream);
            default:
              return run_fwd(s, pass, p, b, rng, stream);
          }
        };
        out->push_back(std::move(c));
      }
    }
  }
}

}  // namespace

std::vector<ParityCase> conv3d_cases() {
  std::vector<ParityCase> out;
  for (const auto& layer : cases::all_conv_layers())
    add_cases(layer, &out);
  return out;
}

}  // namespace cu3d::parity
