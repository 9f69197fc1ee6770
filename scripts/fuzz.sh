#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan, CPU only) in build-fuzz/, runs each for a
# fixed time from its seed corpus, then replays the regression inputs. docs/FUZZING.md explains.
#   scripts/fuzz.sh [--seconds N] [--jobs N] [--seeds] [--build-dir DIR] [target ...]
#     --seconds N      fuzzing time per target (default 60; CI uses 7)
#     --jobs N         build parallelism (default 2)
#     --seeds          regenerate fuzz/corpus/ with the project's writers first
#     --no-build       use the build folder as it is (e.g. CI's build-asan, built by test.sh)
#     --build-dir DIR  the clang build folder (default build-fuzz)
#     target           safetensors, shard, cli, ... (default: every fuzz_* target CMake defines)
# New interesting inputs collect in <build-dir>/corpus/<target>/ (kept between runs, so longer
# runs build on shorter ones). A crash is written to fuzz/crashes/<target>/ and fails the script;
# once the parser is fixed, move the file to tests/fuzz_regressions/<target>/ so every CI run and
# the CPU suite replay it. Exits non-zero on any crash or failing regression input.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
jobs=2
seeds=0
build=1
dir=build-fuzz
targets=()
while (($#)); do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --seeds) seeds=1; shift ;;
    --no-build) build=0; shift ;;
    --build-dir) dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ((build)); then
  mkdir -p "$dir"
  cmake -S . -B "$dir" -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCU3D_CUDA=OFF -DCU3D_BENCH=OFF -DCU3D_FUZZ=ON > "$dir/configure.log" ||
    { cat "$dir/configure.log"; exit 1; }
  if ((${#targets[@]})); then
    cmake --build "$dir" -j"$jobs" --target fuzz_make_seeds "${targets[@]/#/fuzz_}"
  else
    cmake --build "$dir" -j"$jobs" --target fuzz_make_seeds fuzz_all
  fi
fi
# The target list is CMake's (the fuzz_* binaries it built), so a new target needs no edit here.
if ((${#targets[@]} == 0)); then
  for binary in "$dir"/fuzz_*; do
    name=$(basename "$binary")
    [[ -x "$binary" && -f "$binary" && "$name" != fuzz_make_seeds ]] && targets+=("${name#fuzz_}")
  done
  ((${#targets[@]})) || { echo "fuzz: no fuzz_* targets in $dir; build them first" >&2; exit 1; }
fi
if ((seeds)); then
  # Seeds in formats the writers no longer produce (a format-1 shard) are kept: the readers still
  # take those formats, and nothing could write the seeds again.
  kept=(fuzz/corpus/shard/one_shard_v1)
  keep=$(mktemp -d)
  for f in "${kept[@]}"; do [[ -f "$f" ]] && cp --parents "$f" "$keep"; done
  rm -rf fuzz/corpus
  "$dir"/fuzz_make_seeds fuzz/corpus
  cp -r "$keep"/fuzz/corpus/. fuzz/corpus/ 2>/dev/null || true
  rm -rf "$keep"
fi

# Limits: an input that makes a parser allocate 512 MB at once, hold 2 GB, or spend 5 s is a bug
# (a hostile header must be rejected before it allocates).
limits=(-malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=5)
failed=()
summary=()
for target in "${targets[@]}"; do
  binary="$dir/fuzz_${target}"
  crashes="fuzz/crashes/${target}"
  mkdir -p "$dir/corpus/${target}" "$crashes"
  log="$dir/fuzz_${target}.log"
  echo "== fuzz ${target}: ${seconds} s =="
  if ! "$binary" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="${crashes}/" "$dir/corpus/${target}" "fuzz/corpus/${target}" \
      > "$log" 2>&1; then
    tail -n 40 "$log"
    failed+=("${target} (crash kept in ${crashes}/)")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  summary+=("$(printf '%-12s %10s runs %8s exec/s' "$target" "${runs:-?}" "${rate:-?}")")

  regressions="tests/fuzz_regressions/${target}"
  if [[ -d "$regressions" ]] && [[ -n "$(ls -A "$regressions")" ]]; then
    echo "== replay ${regressions} =="
    "$binary" "${limits[@]}" "$regressions"/* > "$dir/replay_${target}.log" 2>&1 ||
      { tail -n 40 "$dir/replay_${target}.log"; failed+=("${target} regression inputs"); }
  fi
done

printf '%s\n' "${summary[@]}"
if ((${#failed[@]})); then
  printf 'fuzz: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
