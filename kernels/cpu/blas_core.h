// Which of OpenBLAS's kernel sets runs, and a restart that picks a faster one when OpenBLAS does
// not know this CPU.
//
// Debian 12's OpenBLAS (0.3.21) picks its kernels once, when the library loads, from the CPU's
// model number or from the OPENBLAS_CORETYPE variable. A model newer than the library falls back
// to "Prescott", the SSE3 kernels. On an Emerald Rapids build box (family 6, model 207), sgemm
// 2048^3 ran at 60 GFLOP/s with them against 216 GFLOP/s with OPENBLAS_CORETYPE=Cooperlake, and
// C3D-small's CPU training step took 304 ms against 271 ms (its dense layers are BLAS GEMMs).
// The variable is read before main, so the fix is to set it and start the program again.
#pragma once

#include <string>

namespace cu3d::cpu {

// The instruction sets that decide which OpenBLAS kernels can run.
struct CpuFeatures {
  bool avx = false;
  bool avx2_fma = false;
  bool avx512 = false;  // F, CD, BW, DQ and VL: what OpenBLAS's SkylakeX kernels use
  bool avx512_bf16 = false;
};

CpuFeatures cpu_features();  // of the CPU this process runs on

// The kernel set OpenBLAS chose ("SkylakeX", "Haswell", "Prescott", ...).
std::string blas_core();

// The OpenBLAS kernel set for the widest instructions `cpu` has, when `chosen` uses narrower
// ones; empty when `chosen` is as wide (or unknown to this table, which then leaves it alone).
std::string better_blas_core(const std::string& chosen, const CpuFeatures& cpu);

// Starts this program again (same arguments) with OPENBLAS_CORETYPE set to better_blas_core() if
// there is one and the variable is unset; a user's own setting is kept. Call first thing in
// main. Returns when there is nothing to do, or when the restart failed (the program then runs
// on, with the slower kernels).
void restart_with_better_blas_core(char** argv);

}  // namespace cu3d::cpu
