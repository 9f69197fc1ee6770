#!/usr/bin/env bash
# One command for the benchmarks (docs/BENCHMARKS.md).
#
#   scripts/bench.sh cpu [BUILD_DIR]      here: run cu3d_bench_cpu (the CPU kernels and the
#                                         loader) and write bench/results/cpu-<cpu>-<date>.json
#                                         plus its Markdown table (.md beside it).
#   scripts/bench.sh cpu-train [BUILD_DIR]
#                                         here: the CPU training step (cu3d_bench_cpu TrainStep/ and
#                                         conv2a fwd+bwd) and the same in PyTorch
#                                         (bench/compare_pytorch_cpu.py), alternating for
#                                         BENCH_ROUNDS rounds (default 3) so both see the same load;
#                                         writes bench/results/cpu-train-<date>.json (+ .md) with the
#                                         medians and each round's ratio and load average.
#                                         BENCH_PYTHON: a python with torch (default python3);
#                                         OMP_WAIT_POLICY defaults to PASSIVE for both.
#   scripts/bench.sh profile [BUNDLE_DIR] on the GPU machine: Nsight Compute's view of versions 5
#                                         and 6 of the conv forward and cuDNN's on the same layer
#                                         (profile() below names its settings); writes
#                                         <results>/profile-*.txt.
#   scripts/bench.sh gpu [BUNDLE_DIR]     on the GPU machine: the device peaks, every conv pass
#                                         cu3d vs cuDNN, the fused blocks, the memory-bound ops,
#                                         the training steps (fused and unfused), then
#                                         bench/compare_pytorch.py; writes
#                                         <results>/<gpu>-<date>.json (+ .md) and the logs.
#
# BUILD_DIR defaults to build-i; BUNDLE_DIR to build-i/gpu-bundle, what `scripts/gpu-check.sh
# stage build-i` packs (the GPU binaries and the libraries a GPU machine lacks). Results go to $OUT when set (the device tool's output folder),
# else bench/results. Environment: CU3D_BENCH_BATCH (default 32); BENCH_FILTER (a
# --benchmark_filter regex: the cu3d part runs only those, as one part limited to 300 s);
# BENCH_SKIP_PYTORCH=1; BENCH_STAGE_TIMEOUT (seconds per part; by default each part's own
# limit: 430 s for the cu3d parts and 150 s for PyTorch at most).
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-gpu}
shift || true


today() { date -u +%Y-%m-%d; }
slug() { tr -cs 'A-Za-z0-9' '-' | sed 's/^-//; s/-$//' | tr '[:upper:]' '[:lower:]'; }

cpu() {
  local build=${1:-build-i}
  local bin="$build/cu3d_bench_cpu"
  [[ -x "$bin" ]] || { echo "bench: $bin missing; cmake --build $build --target cu3d_bench_cpu" >&2; exit 2; }
  local out=${OUT:-$here/bench/results}
  mkdir -p "$out"
  local name model load
  model=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  name="cpu-$(slug <<<"$model")-$(today)"
  "$bin" --benchmark_out="$out/$name.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=true ${BENCH_FILTER:+--benchmark_filter="$BENCH_FILTER"}
  python3 "$here/bench/report.py" "$out/$name.json" \
    --note "CPU: $model, $(nproc) logical CPUs; load average (1, 5, 15 min) before the run: $load" \
    --note "Load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)" >"$out/$name.md"
  echo "bench: wrote $out/$name.json and $name.md"
}

cpu_train() {
  local build=${1:-build-i}
  local bin="$build/cu3d_bench_cpu" python=${BENCH_PYTHON:-python3}
  [[ -x "$bin" ]] || { echo "bench: $bin missing; cmake --build $build --target cu3d_bench_cpu" >&2; exit 2; }
  local out=${OUT:-$here/bench/results} rounds_dir
  rounds_dir=$(mktemp -d)
  mkdir -p "$out"
  # Idle OpenMP threads sleep instead of spinning: on a shared machine spinning steals the time
  # slices both frameworks need, and it would count as work in the CPU-time ratio.
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
  local has_torch=1
  "$python" -c 'import torch' 2>/dev/null || {
    has_torch=0
    echo "bench: $python has no torch: PyTorch rows skipped (set BENCH_PYTHON)" >&2
  }
  for ((r = 1; r <= ${BENCH_ROUNDS:-3}; ++r)); do
    local dir="$rounds_dir/round-$r"
    mkdir -p "$dir"
    cut -d' ' -f1-3 /proc/loadavg >"$dir/loadavg"
    echo "== round $r: cu3d (load $(cat "$dir/loadavg"))"
    "$bin" --benchmark_filter='^TrainStep/|^BM_Conv3dFwdBwd/0/' --benchmark_out="$dir/cu3d.json" \
      --benchmark_out_format=json --benchmark_counters_tabular=true
    if ((has_torch)); then
      echo "== round $r: PyTorch"
      "$python" "$here/bench/compare_pytorch_cpu.py" --cu3d "$dir/cu3d.json" --out "$dir/pytorch.json"
    fi
  done
  local name="cpu-train-$(today)"
  python3 "$here/bench/compare_pytorch_cpu.py" --report "$out/$name.json" --rounds "$rounds_dir" \
    >"$out/$name.md"
  echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) logical CPUs, OMP_WAIT_POLICY=$OMP_WAIT_POLICY; load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/$name.md"
  rm -rf "$rounds_dir"
  cat "$out/$name.md"
  echo "bench: wrote $out/$name.json and $name.md"
}

# The lib/ folders of NVIDIA's Python wheels (cuDNN, cuBLAS) where the system has no cuDNN.
python_wheel_libs() {
  python3 - <<'PY' 2>/dev/null
import importlib, os
for name in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cu13"):
    try:
        mod = importlib.import_module(name)
    except ImportError:
        continue
    for root in list(getattr(mod, "__path__", [])):
        lib = os.path.join(root, "lib")
        if os.path.isdir(lib):
            print(lib)
PY
}

# One part of the cu3d benchmarks into its own JSON file, so a part cut off by its time limit
# loses only itself.
run_part() {
  local part=$1 filter=$2 limit=$3
  echo "== $part (limit ${BENCH_STAGE_TIMEOUT:-$limit} s)"
  timeout "${BENCH_STAGE_TIMEOUT:-$limit}" "$bin" --benchmark_filter="$filter" \
    --benchmark_out="$parts/$part.json" --benchmark_out_format=json \
    --benchmark_counters_tabular=true >"$out/$part.log" 2>&1
  echo "rc=$? $(grep -c '^[a-z_]*/' "$out/$part.log") rows"
}

# Sets bin (the bundle's cu3d_bench_gpu) and out, and the library path it needs.
use_bundle() {
  local bundle=${1:-build-i/gpu-bundle}
  [[ -x "$bundle/cu3d_bench_gpu" ]] || bundle="build-i"
  bin="$bundle/cu3d_bench_gpu"
  [[ -x "$bin" ]] || { echo "bench: no cu3d_bench_gpu in $bundle" >&2; exit 2; }
  out=${OUT:-$here/bench/results}
  mkdir -p "$out"
  local libpath="$bundle/lib:/usr/local/cuda/lib64"
  for d in $(python_wheel_libs); do libpath="$libpath:$d"; done
  export LD_LIBRARY_PATH="$libpath${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  ldd "$bin" | grep "not found"
}

# Nsight Compute on one conv layer's forward (PROFILE_LAYER, default conv3b; PROFILE_PREC, default
# bf16): cu3d's versions 5, 6, 7 and 8, then cuDNN's kernels for the same benchmark row (its algorithm
# search included: the report lists each kernel it ran). Each says where the time goes:
# throughput against the device's peaks (compute, L1, L2, DRAM), the memory chart's traffic,
# occupancy and warp stalls. Clocks are left alone (--clock-control none). Writes
# <out>/profile-<backend>.txt.
profile() {
  use_bundle "$@"
  command -v ncu >/dev/null || { echo "bench: no ncu on this machine" >&2; exit 2; }
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$out/environment.txt"
  local row="conv/${PROFILE_LAYER:-conv3b}/fwd/${PROFILE_PREC:-bf16}" backend kernels count
  for backend in cu3d_wgmma cu3d_wgmma_ws cu3d_wgmma_tma cu3d_wgmma_cluster cudnn; do
    if [[ $backend == cudnn ]]; then kernels='regex:fprop|conv|implicit' count=8; else kernels='regex:conv3d_fwd' count=2; fi
    timeout "${BENCH_STAGE_TIMEOUT:-150}" ncu --clock-control none --kernel-name "$kernels" \
      --launch-count "$count" --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section Occupancy --section WarpStateStats --section LaunchStats \
      "$bin" --benchmark_filter="^$row/$backend(/|\$)" >"$out/profile-$backend.txt" 2>&1
    echo "$backend: rc=$? -> $out/profile-$backend.txt ($(grep -c 'Section: GPU Speed Of Light' "$out/profile-$backend.txt") kernels)"
  done
}

gpu() {
  use_bundle "$@"
  # The parts' JSON beside the results until they are merged: a run cut off by its caller's
  # limit still leaves what it measured (bench/report.py --merge takes them).
  parts="$out/parts"
  mkdir -p "$parts"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader \
    | tee "$out/environment.txt"

  if [[ -n ${BENCH_FILTER:-} ]]; then
    run_part selected "$BENCH_FILTER" 300
  else
    # Peaks and conv first: the issue's headline figures, should the machine's time run out.
    # Limits: the earlier ones (conv and fused 100 s together, ops 35, train 110; the train part
    # took 58 s on an H200) with room for the rows of sessions 6 and 7 (versions 4 and 5).
    run_part conv '^(peaks|conv)/' 150
    run_part fused '^fused/' 70
    run_part ops '^(pool|batch_norm|layer_norm|softmax_xent|adam|input_transform)/' 40
    run_part train '^train/' 175
  fi
  local name
  name="$( (nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo unknown-gpu) | head -1 | slug)-$(today)"
  python3 "$here/bench/report.py" --merge "$out/$name.json" "$parts"/*.json
  if [[ ${BENCH_SKIP_PYTORCH:-0} != 1 ]]; then
    echo "== pytorch"
    PYTHONUNBUFFERED=1 timeout "${BENCH_STAGE_TIMEOUT:-150}" python3 "$here/bench/compare_pytorch.py" \
      --cu3d "$out/$name.json" --out "$out/pytorch.json" >"$out/pytorch.log" 2>&1
    echo "rc=$?"
  fi
  local pytorch=()
  [[ -f "$out/pytorch.json" ]] && pytorch=(--pytorch "$out/pytorch.json")
  python3 "$here/bench/report.py" "$out/$name.json" "${pytorch[@]}" \
    --note "nvidia-smi: $(head -1 "$out/environment.txt")" >"$out/$name.md"
  rm -rf "$parts"
  cat "$out/$name.md"
}

"${mode//-/_}" "$@"
