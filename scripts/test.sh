#!/usr/bin/env bash
# Installs dependencies, builds cu3d (with the CUDA backend when the toolkit is present), runs the
# whole test suite, then builds the CPU suite and the fuzz targets with clang's AddressSanitizer +
# UBSan, runs the suite again under them and fuzzes each parser for a few seconds.
# GPU tests skip, with the reason, on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
# Each stage's heading says when it started (seconds into the run): CI's budget is spent where
# the gaps are.
stage() { echo "== $* == (at ${SECONDS} s)"; }

scripts/install-deps.sh
# Ninja starts a target's files as soon as their inputs exist; make waits for each library to link
# first, leaving a core idle behind the slowest file of each. Build trees already configured keep
# their generator (CMake reads this variable only for new ones).
export CMAKE_GENERATOR=Ninja

stage "build (Release)"
# Both builds compile the libraries and test drivers in unity batches (CMakeLists.txt, CU3D_UNITY).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCU3D_UNITY=ON > build-configure.log || { cat build-configure.log; exit 1; }
grep -E "^-- cu3d:" build-configure.log || true
cmake --build build -j"$jobs"
stage "tests"
ctest --test-dir build --output-on-failure -j"$jobs"

stage "build (clang: ASan + UBSan + libFuzzer coverage; CPU suite and fuzz targets)"
# One instrumented build serves both the sanitized CPU suite and the fuzz targets (docs/FUZZING.md).
# A build-asan configured by gcc (before this step used clang) is started afresh.
if [[ -f build-asan/CMakeCache.txt ]] && ! grep -q '^CMAKE_CXX_COMPILER:.*clang' build-asan/CMakeCache.txt; then
  rm -rf build-asan
fi
cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCU3D_CUDA=OFF -DCU3D_SANITIZE=ON -DCU3D_FUZZ=ON -DCU3D_BENCH=OFF -DCU3D_UNITY=ON > /dev/null
cmake --build build-asan -j"$jobs" --target cu3d_tests cu3d_emulation_tests fuzz_all
stage "tests under sanitizers"
# The MPI tests (label dist) ran in the Release build above: OpenMPI's own start-up allocations
# read as leaks to LeakSanitizer, and this build does not make their binary.
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L cpu -LE dist
stage "fuzzing (each target 7 s from its seeds, then its regression inputs)"
scripts/fuzz.sh --no-build --build-dir build-asan --seconds 7
stage "done"
