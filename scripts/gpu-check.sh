#!/usr/bin/env bash
# One command that checks the CUDA backend on a machine with a GPU.
#
#   scripts/gpu-check.sh stage [BUILD_DIR]    on the build machine: copy cu3d_gpu_tests (and
#                                             cu3d_bench_gpu when built), stripped, with the
#                                             shared libraries a stock Ubuntu 24.04 + CUDA 13
#                                             image lacks into BUILD_DIR/gpu-bundle, and pack it
#                                             as BUILD_DIR/gpu-bundle.tar.xz (~20 MB: one file
#                                             to carry to another machine).
#   scripts/gpu-check.sh [run] [BUNDLE]       on the GPU machine: find cuDNN (system or the
#                                             Python wheels), run the GPU suite, then again
#                                             under compute-sanitizer memcheck and racecheck on a
#                                             reduced set, and print a summary table last.
#                                             BUNDLE: a bundle folder or its .tar.xz.
#   scripts/gpu-check.sh links [BUILD_DIR]    on the build machine: fails when the binaries need
#                                             OpenCV or MPI, which GPU machines lack.
#   scripts/gpu-check.sh bundle-check [BUILD_DIR]
#                                             on the build machine: stage, check the packed size
#                                             against the device tool's limit, then run it.
#   scripts/gpu-check.sh selftest             anywhere: checks the suite's stall watch.
#
# BUILD_DIR defaults to build-c; BUNDLE to build-c/gpu-bundle, or the build dir itself when it
# holds cu3d_gpu_tests (a build made on the GPU machine). Logs and gtest XML go to BUNDLE/logs;
# when $OUT is set (the device tool's output folder, which takes back at most 8 files) the
# summary, the benchmark's tables and one logs.tar.gz of everything are copied there. Environment:
#   GPU_CHECK_FILTER      gtest filter of the full run (default: all)
#   GPU_CHECK_JOBS        the suite runs as this many gtest shards at once (default: 4 where
#                         there are 8 or more CPUs, else 1); the CPU references dominate its time
#   GPU_CHECK_MEMCHECK    filter of the memcheck run ("none": skip the stage)
#   GPU_CHECK_RACECHECK   filter of the racecheck run (shared-memory races: cu3d kernels only;
#                         "none": skip the stage)
#   CU3D_TEST_SEED        run seed of the random inputs
#   GPU_CHECK_SUITE_TIMEOUT, GPU_CHECK_SANITIZER_TIMEOUT, GPU_CHECK_RACECHECK_TIMEOUT
#                         seconds per stage (300, 150 for memcheck, 300: the reduced racecheck
#                         set outgrew 150 s in session 7)
#   GPU_CHECK_STALL       seconds a suite shard may print nothing before it is stopped as hung,
#                         naming its test (default 120)
#   GPU_CHECK_DEADLINE    seconds from the start by which the last stage must end: the sanitizer
#                         stages shrink (or are skipped) to fit, so the logs are packed in time
#   GPU_CHECK_BENCH=1     also run the benchmarks (scripts/bench.sh gpu on the same bundle)
#                         after memcheck, before racecheck; BENCH_* variables apply
#   GPU_CHECK_TIMING=1    also time the conv passes against cuDNN, the fused blocks against
#                         cuDNN's conv + the ops they replace (tests/gpu/conv_timing_test.cpp)
#                         and the memory-bound ops against the device copy
#                         (tests/gpu/bandwidth_timing_test.cpp); CU3D_GPU_TIMING_PASSES=fwd,...
#                         limits the conv passes timed, GPU_CHECK_TIMING_FILTER the tests
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)

mode=${1:-run}
case "$mode" in
  stage | links | run | bundle-check | selftest) shift || true ;;
  *) mode=run ;;
esac

# Libraries a stock Ubuntu 24.04 + CUDA 13 image has for sure: glibc's, the C++ runtime (newer
# there), the driver, and CUDA's libraries beyond the runtime (the toolkit's or the Python wheels':
# run() finds them). Every other library the binaries need goes into the bundle: Debian's
# OpenBLAS, fmt, HDF5 (Keras import, with curl and what it pulls in), libjpeg-turbo, Google
# Benchmark, the CUDA runtime. A list of what to take instead missed HDF5 when unity batches
# started linking it.
SYSTEM_LIBS='^(linux-vdso|ld-linux-x86-64|libc|libm|libdl|libpthread|librt|libresolv|libstdc\+\+|libgcc_s|libcuda|libcublas|libcublasLt|libcudnn[a-z_]*|libnccl)\.so'

# The binaries a bundle carries: the GPU suite, and the GPU benchmarks where built.
gpu_binaries() {
  local build=$1
  [[ -x "$build/cu3d_gpu_tests" ]] || { echo "gpu-check: $build/cu3d_gpu_tests missing; build it first" >&2; exit 2; }
  echo "$build/cu3d_gpu_tests"
  [[ -x "$build/cu3d_bench_gpu" ]] && echo "$build/cu3d_bench_gpu"
  return 0
}

# gpu-check.sh links BUILD_DIR (stage's first step): OpenCV (with
# FFmpeg and GDAL, ~240 libraries) and MPI are on no GPU machine's image, so the binaries must not
# need them (CMakeLists.txt keeps them in cu3d_video and cu3d_dist; the tests make shards from
# synthetic frames, tests/cpu/synthetic_frames.h). Prints ldd's lines for the binaries. ldd's
# output is read whole: `ldd | grep -q` under pipefail failed whenever grep found a match and
# closed the pipe early, so stage's check passed the unity builds' binaries, which needed both.
links() {
  local bins needed
  mapfile -t bins < <(gpu_binaries "${1:-build-c}")
  ((${#bins[@]} > 0)) || exit 2
  needed=$(ldd "${bins[@]}")
  if grep -E 'libopencv|libmpi' <<<"$needed" >&2; then
    echo "gpu-check: ${bins[*]} need the libraries above, which GPU machines lack; keep video and" \
      "MPI code out of them" >&2
    exit 2
  fi
  echo "$needed"
}

stage() {
  local build=${1:-build-c}
  local bundle="$build/gpu-bundle" bins needed
  mapfile -t bins < <(gpu_binaries "$build")
  ((${#bins[@]} > 0)) || exit 2
  needed=$(links "$build") || exit 2
  rm -rf "$bundle" "$bundle.tar.xz" && mkdir -p "$bundle/lib"
  cp "${bins[@]}" "$bundle/"
  awk '$2 == "=>" && $3 ~ /^\// {print $1, $3}' <<<"$needed" | grep -vE "$SYSTEM_LIBS" | sort -u |
    while read -r name lib; do
      cp -L "$lib" "$bundle/lib/$name"
    done
  # Each library now comes from the bundle or is one the image has.
  local lib_dir missing
  lib_dir=$(cd "$bundle/lib" && pwd)
  missing=$(LD_LIBRARY_PATH="$lib_dir" ldd "$bundle"/cu3d_* | awk '$2 == "=>" {print $1, $3}' |
    grep -vE "$SYSTEM_LIBS" | grep -v " $lib_dir/")
  if [[ -n $missing ]]; then
    echo "gpu-check: the bundle lacks these libraries:" >&2
    echo "$missing" >&2
    exit 2
  fi
  strip "$bundle"/cu3d_* "$bundle"/lib/* 2>/dev/null
  tar -C "$(dirname "$bundle")" -cf - gpu-bundle | xz -T2 -6 >"$bundle.tar.xz"
  echo "gpu-check: staged $(cd "$bundle" && echo cu3d_*) and $(ls "$bundle/lib" | wc -l) libraries in $bundle" \
    "($(du -sh "$bundle" | cut -f1); packed: $(du -sh "$bundle.tar.xz" | cut -f1))"
}

# A packed bundle is unpacked under /tmp; prints the folder to use.
unpack() {
  local bundle=$1
  if [[ $bundle == *.tar.xz ]]; then
    local dir
    dir=$(mktemp -d)
    tar -xJf "$bundle" -C "$dir" || { echo "gpu-check: cannot unpack $bundle" >&2; exit 2; }
    bundle="$dir/gpu-bundle"
  fi
  echo "$bundle"
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

# The timeout of a stage: its own limit, shrunk to what is left before GPU_CHECK_DEADLINE (less
# 15 s to write the summary and pack the logs); 0 when under 10 s are left.
stage_limit() {
  local limit=$1 left=$((${GPU_CHECK_DEADLINE:-100000} - SECONDS - 15))
  ((left < limit)) && limit=$left
  echo $((limit < 10 ? 0 : limit))
}

# Copies what there is so far to $OUT (the device tool's output folder; at most 8 files): the
# summary, the benchmark's tables and one archive of every log. Called after each stage, so a
# command cut off by the tool's limit still brings back the stages it finished.
publish() {
  [[ -n ${OUT:-} ]] || return 0
  cp "$summary" "$OUT/"
  cp "$logs"/bench/*.md "$logs"/bench/*-20*.json "$OUT/" 2>/dev/null
  tar -C "$logs" -czf "$OUT/logs.tar.gz" .
}

# Runs one stage; records "name|status|passed|failed|skipped|seconds|note" in $summary.
run_stage() {
  local name=$1 log="$logs/$1.log"
  shift
  if [[ $1 == timeout && $2 == 0 ]]; then
    echo "$name|SKIP|0|0|0|0|no time left before GPU_CHECK_DEADLINE" >>"$summary"
    publish
    return
  fi
  if [[ ${*: -1} == --gtest_filter=none ]]; then
    echo "$name|SKIP|0|0|0|0|its filter is none" >>"$summary"
    publish
    return
  fi
  local start=$SECONDS
  # A stage run under timeout gets a KILL 10 s after its TERM (a sanitizer may ignore TERM).
  [[ $1 == timeout ]] && set -- timeout -k 10 "${@:2}"
  "$@" >"$log" 2>&1
  local rc=$?
  local passed failed skipped note=""
  passed=$(grep -oP '^\[  PASSED  \] \K[0-9]+' "$log" | tail -1)
  failed=$(grep -oP '^\[  FAILED  \] \K[0-9]+(?= tests?,)' "$log" | tail -1)
  skipped=$(grep -oP '^\[  SKIPPED \] \K[0-9]+' "$log" | tail -1)
  if grep -q "ERROR SUMMARY" "$log"; then note=$(grep -o "ERROR SUMMARY: [0-9]* errors\?" "$log" | tail -1); fi
  if grep -q "RACECHECK SUMMARY" "$log"; then note=$(grep -o "RACECHECK SUMMARY: [0-9]* hazards\? displayed.*" "$log" | tail -1); fi
  if grep -q "^gpu-check: stalled" "$log"; then note=$(grep -oP '^gpu-check: \Kstalled.* in \S+' "$log" | paste -sd ';'); fi
  local status=PASS
  [[ $rc -ne 0 ]] && status="FAIL(rc=$rc)"
  echo "$name|$status|${passed:-0}|${failed:-0}|${skipped:-0}|$((SECONDS - start))|$note" >>"$summary"
  publish
  grep -E '^\[  FAILED  \] Gpu' "$log" | sort -u | head -40
  tail -n 3 "$log"
}

# The sum over the shards' logs of the number the Perl regex picks.
shard_total() {
  grep -hoP "$1" "$logs"/suite-*.log | awk '{ n += $1 } END { print n + 0 }'
}

# Stops a shard (`pid`, the timeout wrapping it) whose log has not grown for GPU_CHECK_STALL
# seconds (default 120; the slowest test takes seconds), and notes in the log the test it stopped
# in: a kernel that never finishes (a barrier or an mbarrier phase that is never reached) then
# costs two minutes and names itself, instead of the stage's whole limit.
watch_for_stall() {
  local pid=$1 log=$2 stall=${GPU_CHECK_STALL:-120} size=-1 quiet=0 now test
  while kill -0 "$pid" 2>/dev/null; do
    sleep 2
    now=$(stat -c %s "$log" 2>/dev/null || echo 0)
    if [[ $now == "$size" ]]; then quiet=$((quiet + 2)); else quiet=0 size=$now; fi
    if ((quiet >= stall)); then
      test=$(grep -oP '^\[ RUN      \] \K.*' "$log" | tail -1)
      echo "gpu-check: stalled for $stall s in ${test:-?} (a kernel that never finishes?): stopped" >>"$log"
      kill -TERM "$pid" 2>/dev/null  # timeout passes it to the test binary, KILL 10 s later
      return
    fi
  done
}

# The suite as GPU_CHECK_JOBS gtest shards at once, each with its share of the CPU threads and a
# watch for stalls; the shards' logs are joined into suite.log (per-shard totals summed) for
# run_stage to read.
sharded_suite() {
  local jobs=$(($1 > 0 ? $1 : 1)) limit=$2 bin=$3 filter=$4 pids=() k
  local threads=$(($(nproc) / jobs))
  rm -f "$logs"/suite-*.log "$logs"/suite-*.xml  # a reused bundle's earlier run
  for ((k = 0; k < jobs; ++k)); do
    GTEST_TOTAL_SHARDS=$jobs GTEST_SHARD_INDEX=$k OMP_NUM_THREADS=$((threads > 0 ? threads : 1)) \
      timeout -k 10 "$limit" "$bin" --gtest_filter="$filter" --gtest_output="xml:$logs/suite-$k.xml" \
      >"$logs/suite-$k.log" 2>&1 &
    pids+=($!)
    watch_for_stall "$!" "$logs/suite-$k.log" &
  done
  local rc=0
  for k in "${pids[@]}"; do wait "$k" || rc=$?; done
  wait  # the watches end with their shards
  cat "$logs"/suite-*.log
  echo "[  PASSED  ] $(shard_total '^\[  PASSED  \] \K[0-9]+') tests."
  echo "[  SKIPPED ] $(shard_total '^\[  SKIPPED \] \K[0-9]+') tests."
  local failed
  failed=$(shard_total '^\[  FAILED  \] \K[0-9]+(?= tests?,)')
  ((failed > 0)) && echo "[  FAILED  ] $failed tests, listed above"
  return $rc
}

run() {
  local bundle
  bundle=$(unpack "${1:-build-c/gpu-bundle}") || exit 2
  [[ -x "$bundle/cu3d_gpu_tests" ]] || bundle=build-c
  local bin="$bundle/cu3d_gpu_tests"
  [[ -x "$bin" ]] || { echo "gpu-check: no cu3d_gpu_tests in $bundle" >&2; exit 2; }
  logs="$bundle/logs"
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
  # The engine's fused blocks and the device feeder (pinned staging, copy stream): memcheck them
  # too. *odd* and *conv5b*cu3d* take in the conv's versions 3-8 (the cu3d_pipelined, cu3d_wide,
  # cu3d_wgmma, cu3d_wgmma_ws, cu3d_wgmma_tma and cu3d_wgmma_cluster cases: version 8 runs on
  # conv5b, k = 512, and falls back to 7 on the odd shapes); racecheck covers their shared-memory
  # rings on the odd shapes and version 8's on conv5b (versions 5-8's tensor cores read the ring
  # through the async proxy, 6-8 hand stages over by mbarriers, 7's and 8's TMA fill it, 8's
  # across the cluster: whether racecheck follows any of them is to be seen). The per-sample
  # layer norm: *per_sample_c64_partial_chunk* and *one_chunk_groups* take its resident kernels
  # (a cooperative launch; slices in shared memory), *one_chunk_groups*_pipelined the others.
  local memcheck=${GPU_CHECK_MEMCHECK:-*odd*:*per_sample_c64_partial_chunk*:*per_sample_one_chunk_groups*:*conv5b*cu3d*:*softmax*:*adam*:*dropout*:*pool5*:*fc8*:*input_transform*:EngineCuda.Fused*:EngineCuda.Pipelined*:EngineCuda.NewConv*:EngineCuda.Wgmma*:EngineCuda.TmaConv*:EngineCuda.ClusterConv*:EngineCuda.Fp32TensorCores*:NormalizeClipsCuda.*:FeederCuda.*}
  local racecheck=${GPU_CHECK_RACECHECK:-*odd*_cu3d:*odd*_cu3d_naive:*odd*_cu3d_pipelined:*odd*_cu3d_wide:*odd*_cu3d_wgmma:*odd*_cu3d_wgmma_ws:*odd*_cu3d_wgmma_tma:*conv5b_fwd_*_cu3d_wgmma_cluster:*softmax*:*input_transform*:*layer_norm_odd*:*per_sample_c64_partial_chunk*:*batch_norm*odd*}
  echo "== suite"
  local jobs=${GPU_CHECK_JOBS:-$(($(nproc) >= 8 ? 4 : 1))}
  run_stage suite sharded_suite "$jobs" "${GPU_CHECK_SUITE_TIMEOUT:-300}" "$bin" "$full"
  local sanitizer
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  if [[ ${GPU_CHECK_TIMING:-0} == 1 ]]; then
    echo "== timing"
    CU3D_GPU_TIMING=1 run_stage timing timeout "${GPU_CHECK_TIMING_TIMEOUT:-200}" "$bin" \
      --gtest_filter="${GPU_CHECK_TIMING_FILTER:-*Timing.*}"
    grep '^\[ TIMING' "$logs/timing.log" >"$logs/timing.txt"
  fi
  echo "== memcheck"
  run_stage memcheck timeout "$(stage_limit "${GPU_CHECK_SANITIZER_TIMEOUT:-150}")" "$sanitizer" --tool memcheck --error-exitcode 1 --leak-check full \
    "$bin" --gtest_filter="$memcheck"
  if [[ ${GPU_CHECK_BENCH:-0} == 1 ]]; then
    echo "== bench"
    # Its parts have their own limits (bench.sh); this one keeps the whole within the deadline.
    local start=$SECONDS limit
    limit=$(stage_limit 600)
    if ((limit == 0)); then
      echo "bench|SKIP|-|-|-|0|no time left before GPU_CHECK_DEADLINE" >>"$summary"
    else
      OUT="$logs/bench" timeout -k 10 "$limit" "$here/scripts/bench.sh" gpu "$bundle" \
        >"$logs/bench.log" 2>&1
      echo "bench|$([[ $? == 0 ]] && echo PASS || echo FAIL)|-|-|-|$((SECONDS - start))|$(ls "$logs"/bench/*.md 2>/dev/null | xargs -n1 basename)" >>"$summary"
      grep '^rc=\|^== ' "$logs/bench.log"
    fi
    publish
  fi
  echo "== racecheck"
  run_stage racecheck timeout "$(stage_limit "${GPU_CHECK_RACECHECK_TIMEOUT:-300}")" \
    "$sanitizer" --tool racecheck --error-exitcode 1 "$bin" --gtest_filter="$racecheck"

  echo
  echo "== gpu-check summary ($(nvidia-smi --query-gpu=name --format=csv,noheader | head -1))"
  printf '%-10s %-10s %7s %7s %8s %6s  %s\n' stage status passed failed skipped secs note
  while IFS='|' read -r name status passed failed skipped secs note; do
    printf '%-10s %-10s %7s %7s %8s %6s  %s\n' "$name" "$status" "$passed" "$failed" "$skipped" \
      "$secs" "$note"
  done <"$summary"
  publish
  ! grep -q FAIL "$summary"
}

# gpu-check.sh bundle-check BUILD_DIR (CTest scripts.gpu_bundle_stages_and_runs): stages the
# bundle, checks that the device tool can carry it (64 MiB at most) and that it unpacks, and runs
# the staged folder as the GPU machine would, sanitizers aside: on a machine without a GPU every
# test skips, but the binaries still start from the bundle's libraries.
bundle_check() {
  local build=${1:-build-c} limit=$((64 * 1024 * 1024)) size
  stage "$build"
  size=$(stat -c %s "$build/gpu-bundle.tar.xz")
  if ((size > limit)); then
    echo "gpu-check: gpu-bundle.tar.xz is $size bytes, over the device tool's 64 MiB carry limit" >&2
    return 1
  fi
  xz -t "$build/gpu-bundle.tar.xz" || return 1
  (GPU_CHECK_MEMCHECK=none GPU_CHECK_RACECHECK=none OUT='' run "$build/gpu-bundle")
}

# gpu-check.sh selftest: the shards' stall watch against a stand-in test binary, no GPU needed
# (CTest scripts.gpu_check_stall_watch): of two shards the second hangs in its test; it must be
# stopped within seconds, named, and the first shard's pass still counted.
selftest() {
  local dir rc=0 start=$SECONDS
  dir=$(mktemp -d)
  logs=$dir
  cat >"$dir/stand_in_tests" <<'STAND_IN'
#!/usr/bin/env bash
echo "[ RUN      ] StandIn.Shard$GTEST_SHARD_INDEX"
[[ $GTEST_SHARD_INDEX == 1 ]] && exec sleep 600
echo "[       OK ] StandIn.Shard$GTEST_SHARD_INDEX"
echo "[  PASSED  ] 1 test."
STAND_IN
  chmod +x "$dir/stand_in_tests"
  GPU_CHECK_STALL=6 sharded_suite 2 300 "$dir/stand_in_tests" '*' >"$dir/suite.log" 2>&1 || rc=$?
  local took=$((SECONDS - start)) ok=1
  ((rc != 0)) || { echo "selftest: the hung shard's run did not fail"; ok=0; }
  ((took < 60)) || { echo "selftest: the hung shard was stopped after $took s, not ~6"; ok=0; }
  grep -q "stalled for 6 s in StandIn.Shard1" "$dir/suite.log" ||
    { echo "selftest: no stall named StandIn.Shard1"; ok=0; }
  grep -q '^\[  PASSED  \] 1 tests.' "$dir/suite.log" ||
    { echo "selftest: the other shard's pass was not counted"; ok=0; }
  cat "$dir/suite.log"
  rm -rf "$dir"
  ((ok)) && echo "selftest: passed in $took s"
  ((ok))
}

"${mode//-/_}" "$@"
