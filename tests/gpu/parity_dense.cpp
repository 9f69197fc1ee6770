// Dense (cuBLASLt) parity cases: forward with bias, forward with the fused bias + ReLU
// epilogue, and backward (dx, dw, db), per precision, against kernels/cpu/dense.h in double on
// C3D's fc layers at batch 2 and odd shapes.
#include <algorithm>

#include <fmt/format.h>

#include "gpu/parity.h"
#include "kernels/cpu/dense.h"
#include "kernels/cuda/dense.cuh"

namespace cu3d::parity {
namespace {

struct DenseShape {
  const char* name;
  int64_t m, in, out;
};

enum class Pass { fwd, fwd_relu, bwd };

std::vector<Compared> run_dense(const DenseShape& d, Pass pass, Precision p, std::mt19937_64& rng,
                                cudaStream_t stream) {
  const auto x = random_floats(d.m * d.in, rng), w = random_floats(d.out * d.in, rng);
  const auto b = random_floats(d.out, rng);
  const DeviceArray gx(x), gw(w), gb(b);
  if (pass != Pass::bwd) {
    std::vector<double> y(d.m * d.out);
    cpu::dense_fwd<double>(d.m, d.in, d.out, to_double(x).data(), to_double(w).data(),
                           to_double(b).data(), y.data());
    DeviceArray gy(d.m * d.out);
    gy.poison();
    if (pass == Pass::fwd_relu) {
      for (double& v : y)
        v = std::max(v, 0.0);
      cuda::dense_fwd_relu(d.m, d.in, d.out, gx.get(), gw.get(), gb.get(), gy.get(), p, stream);
    } else {
      cuda::dense_fwd(d.m, d.in, d.out, gx.get(), gw.get(), gb.get(), gy.get(), p, stream);
    }
    CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
    return {compare("y", gy.download(), y)};
  }
  const auto dy = random_floats(d.m * d.out, rng);
  std::vector<double> dx(d.m * d.in), dw(d.out * d.in), db(d.out);
  cpu::dense_bwd<double>(d.m, d.in, d.out, to_double(x).data(), to_double(w).data(),
                         to_double(dy).data(), dx.data(), dw.data(), db.data());
  const DeviceArray gdy(dy);
  DeviceArray gdx(d.m * d.in), gdw(d.out * d.in), gdb(d.out);
  for (DeviceArray* a : {&gdx, &gdw, &gdb})
    a->poison();
  cuda::dense_bwd(d.m, d.in, d.out, gx.get(), gw.get(), gdy.get(), gdx.get(), gdw.get(), gdb.get(),
                  p, stream);
  CU3D_CUDA_CHECK(cudaStreamSynchronize(stream));
  return {compare("dx", gdx.download(), dx), compare("dw", gdw.download(), dw),
          compare("db", gdb.download(), db)};
}

const char* to_string(Pass p) {
  switch (p) {
    case Pass::fwd:
      return "fwd";
    case Pass::fwd_relu:
      return "fwd_bias_relu";
    case Pass::bwd:
      return "bwd";
  }
  return "?";
}

}  // namespace

std::vector<ParityCase> dense_cases() {
  // C3D's fc6-fc8 (UCF101) at batch 2, and odd sizes (no dimension a multiple of 4 or 8).
  const DenseShape shapes[] = {{"fc6", 2, 8192, 4096},
                               {"fc7", 2, 4096, 4096},
                               {"fc8", 2, 4096, 101},
                               {"odd_7x33x19", 7, 33, 19},
                               {"odd_130x3x5", 130, 3, 5}};
  std::vector<ParityCase> out;
  for (const DenseShape& d : shapes)
    for (Pass pass : {Pass::fwd, Pass::fwd_relu, Pass::bwd})
      for (Precision p : {Precision::fp32, Precision::tf32, Precision::bf16})
        out.push_back(
            {fmt::format("dense/{}/{}/{}/cublas", d.name, to_string(pass), cu3d::to_string(p)),
             tolerance(p), [=](std::mt19937_64& rng, cudaStream_t stream) {
               return run_dense(d, pass, p, rng, stream);
             }});
  return out;
}

}  // namespace cu3d::parity
