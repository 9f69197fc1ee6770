#!/usr/bin/env bash
# Installs dependencies, builds cu3d (with the CUDA backend when the toolkit is present), runs the
# whole test suite, then builds the CPU suite with AddressSanitizer + UBSan and runs it again.
# GPU tests skip, with the reason, on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh

echo "== build (Release) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build-configure.log || { cat build-configure.log; exit 1; }
grep -E "^-- cu3d:" build-configure.log || true
cmake --build build -j"$jobs"
echo "== tests =="
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (ASan + UBSan, CPU suite) =="
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCU3D_CUDA=OFF -DCU3D_SANITIZE=ON \
  -DCU3D_BENCH=OFF > /dev/null
cmake --build build-asan -j"$jobs" --target cu3d_tests
echo "== tests under sanitizers =="
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L cpu
