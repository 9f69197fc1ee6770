#!/usr/bin/env bash
# One command that checks the CUDA backend on a machine with a GPU.
#
#   scripts/gpu-check.sh stage [BUILD_DIR]    on the build machine: copy cu3d_gpu_tests and the
#                                             shared libraries a stock Ubuntu 24.04 + CUDA 13
#                                             image lacks into BUILD_DIR/gpu-bundle (small enough
#                                             to carry to another machine).
#   scripts/gpu-check.sh [run] [BUNDLE_DIR]   on the GPU machine: find cuDNN (system or the
#                                             Python wheels), run the GPU suite, then again
#                                             under compute-sanitizer memcheck and racecheck on a
#                                             reduced set, and print a summary table last.
#
# BUILD_DIR defaults to build-c; BUNDLE_DIR to build-c/gpu-bundle, or the build dir itself when
# it holds cu3d_gpu_tests (a build made on the GPU machine). Logs and gtest XML go to $OUT when
# set (the device tool's output folder), else to BUNDLE_DIR/logs. Environment:
#   GPU_CHECK_FILTER      gtest filter of the full run (default: all)
#   GPU_CHECK_MEMCHECK    filter of the memcheck run
#   GPU_CHECK_RACECHECK   filter of the racecheck run (shared-memory races: cu3d kernels only)
#   CU3D_TEST_SEED        run seed of the random inputs
#   GPU_CHECK_SUITE_TIMEOUT, GPU_CHECK_SANITIZER_TIMEOUT   seconds per stage (300, 150)
#   GPU_CHECK_TIMING=1    also time the conv passes against cuDNN, the fused blocks against
#                         cuDNN's conv + the ops they replace (tests/gpu/conv_timing_test.cpp)
#                         and the memory-bound ops against the device copy
#                         (tests/gpu/bandwidth_timing_test.cpp); CU3D_GPU_TIMING_PASSES=fwd,...
#                         limits the conv passes timed, GPU_CHECK_TIMING_FILTER the tests
set -uo pipefail

mode=${1:-run}
case "$mode" in
  stage | run) shift || true ;;
  *) mode=run ;;
esac

# Libraries the test binary links that a stock Ubuntu 24.04 + CUDA 13 image may not have
# (Debian's OpenBLAS and fmt, and what they pull in).
EXTRA_LIBS='libopenblas|libgfortran|libquadmath|libfmt|libgomp|libcudart'

stage() {
  local build=${1:-build-c}
  local bundle="$build/gpu-bundle"
  [[ -x "$build/cu3d_gpu_tests" ]] || { echo "gpu-check: $build/cu3d_gpu_tests missing; build it first" >&2; exit 2; }
  rm -rf "$bundle" && mkdir -p "$bundle/lib"
  cp "$build/cu3d_gpu_tests" "$bundle/"
  ldd "$build/cu3d_gpu_tests" | awk '{print $3}' | grep -E "$EXTRA_LIBS" | while read -r lib; do
    cp -L "$lib" "$bundle/lib/"
  done
  echo "gpu-check: staged $(ls "$bundle/lib" | wc -l) libraries in $bundle ($(du -sh "$bundle" | cut -f1))"
}

# Prints the lib/ folders of the NVIDIA Python wheels (cudnn, cublas, nccl) if installed.
python_wheel_libs() {
  python3 - <<'EOF' 2>/dev/null
import importlib, os
for name in ("nvidia.cudnn", "nvidia.cublas", "nvidia.nccl", "nvidia.cu13"):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        continue
    for root in list(getattr(mod, "__path__", [])):
        lib = os.path.join(root, "lib")
        if os.path.isdir(lib):
            print(lib)
EOF
}

# Runs one stage; records "name|status|passed|failed|skipped|seconds|note" in $summary.
run_stage() {
  local name=$1 log="$logs/$1.log"
  shift
  local start=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local passed failed skipped note=""
  passed=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$log" | tail -1)
  failed=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= tests?,)' "$log" | tail -1)
  skipped=$(grep -oP '^\[  SKIPPED \] \K[0-9]+' "$log" | tail -1)
  if grep -q "ERROR SUMMARY" "$log"; then note=$(grep -o "ERROR SUMMARY: [0-9]* errors\?" "$log" | tail -1); fi
  if grep -q "RACECHECK SUMMARY" "$log"; then note=$(grep -o "RACECHECK SUMMARY: [0-9]* hazards\? displayed.*" "$log" | tail -1); fi
  local status=PASS
  [[ $rc -ne 0 ]] && status="FAIL(rc=$rc)"
  echo "$name|$status|${passed:-0}|${failed:-0}|${skipped:-0}|$((SECONDS - start))|$note" >>"$summary"
  grep -E '^\[  FAILED  \] Gpu' "$log" | sort -u | head -40
  tail -n 3 "$log"
}

run() {
  local bundle=${1:-build-c/gpu-bundle}
  [[ -x "$bundle/cu3d_gpu_tests" ]] || bundle=build-c
  local bin="$bundle/cu3d_gpu_tests"
  [[ -x "$bin" ]] || { echo "gpu-check: no cu3d_gpu_tests in $bundle" >&2; exit 2; }
  logs=${OUT:-$bundle/logs}
  mkdir -p "$logs"
  summary="$logs/summary.txt"
  : >"$summary"

  local libpath="$bundle/lib:/usr/local/cuda/lib64"
  for d in $(python_wheel_libs); do libpath="$libpath:$d"; done
  export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

  {
    echo "== machine"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
    nvcc --version 2>/dev/null | tail -1
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    echo "== libraries of $bin"
    ldd "$bin" | grep -E "not found|cudnn|cudart|openblas|fmt"
  } 2>&1 | tee "$logs/environment.txt"

  local full=${GPU_CHECK_FILTER:--*Timing.*}
  # The engine's fused blocks and the device feeder (pinned staging, copy stream) have not run on
  # a GPU yet: memcheck them too. *odd* and *conv5b*cu3d* take in the forward's version 3
  # (cu3d_pipelined cases); racecheck covers its cp.async ring on the odd shapes.
  local memcheck=${GPU_CHECK_MEMCHECK:-*odd*:*conv5b*cu3d*:*softmax*:*adam*:*dropout*:*pool5*:*fc8*:*input_transform*:EngineCuda.Fused*:EngineCuda.Pipelined*:FeederCuda.*}
  local racecheck=${GPU_CHECK_RACECHECK:-*odd*_cu3d:*odd*_cu3d_naive:*odd*_cu3d_pipelined:*softmax*:*layer_norm_odd*:*batch_norm*odd*}
  echo "== suite"
  run_stage suite timeout "${GPU_CHECK_SUITE_TIMEOUT:-300}" "$bin" --gtest_filter="$full" --gtest_output="xml:$logs/suite.xml"
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [[ ${GPU_CHECK_TIMING:-0} == 1 ]]; then
    echo "== timing"
    CU3D_GPU_TIMING=1 run_stage timing timeout "${GPU_CHECK_TIMING_TIMEOUT:-200}" "$bin" \
      --gtest_filter="${GPU_CHECK_TIMING_FILTER:-*Timing.*}"
    grep '^\[ TIMING' "$logs/timing.log" >"$logs/timing.txt"
  fi
  echo "== memcheck"
  run_stage memcheck timeout "${GPU_CHECK_SANITIZER_TIMEOUT:-150}" "$sanitizer" --tool memcheck --error-exitcode 1 --leak-check full \
    "$bin" --gtest_filter="$memcheck"
  echo "== racecheck"
  run_stage racecheck timeout "${GPU_CHECK_SANITIZER_TIMEOUT:-150}" "$sanitizer" --tool racecheck --error-exitcode 1 \
    "$bin" --gtest_filter="$racecheck"

  echo
  echo "== gpu-check summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
  printf '%-10s %-10s %7s %7s %8s %6s  %s\n' stage status passed failed skipped secs note
  while IFS='|' read -r name status passed failed skipped secs note; do
    printf '%-10s %-10s %7s %7s %8s %6s  %s\n' "$name" "$status" "$passed" "$failed" "$skipped" \
      "$secs" "$note"
  done <"$summary"
  ! grep -q FAIL "$summary"
}

"$mode" "$@"
