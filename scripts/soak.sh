#!/usr/bin/env bash
# Soak test (not in CI): trains a small 3D CNN on a synthetic dataset for a fixed wall time and
# checks that memory does not grow once the first epoch is done. docs/ROBUSTNESS.md explains.
#   scripts/soak.sh [--minutes M] [--every S] [--device cpu|cuda] [--cu3d BIN] [--out DIR]
#     --minutes M  wall time of the training run (default 30)
#     --every S    seconds between memory samples (default 5)
#     --device D   cpu (default) or cuda: then the process's GPU memory (the stream-ordered pool's
#                  reserved bytes included) is sampled from nvidia-smi too
#     --cu3d BIN   the binary (default build/cu3d, else build-cc/cu3d); copied, so rebuilding
#                  during the run does not touch it
#     --out DIR    where the data, run, log and memory.csv go (default soak-out)
# memory.csv: seconds, epochs finished, host RSS (KiB), GPU memory (MiB, empty on the CPU).
# Verdict: after the first epoch, the highest RSS of the last tenth of the run may exceed the RSS
# at the end of the first epoch by at most 5% + 16 MiB (GPU: 5% + 64 MiB). glibc's per-thread
# arenas and the loader's recycled batches settle within the first epoch; one leaked batch per
# step (256 KiB here, thousands of steps) would exceed that within minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=30
every=5
device=cpu
cu3d=""
out=soak-out
while (($#)); do
  case "$1" in
    --minutes) minutes="$2"; shift 2 ;;
    --every) every="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --cu3d) cu3d="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "soak: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ -z "$cu3d" ]]; then
  for candidate in build/cu3d build-cc/cu3d; do
    [[ -x "$candidate" ]] && { cu3d="$candidate"; break; }
  done
fi
[[ -x "$cu3d" ]] || { echo "soak: no cu3d binary (build it, or pass --cu3d BIN)" >&2; exit 2; }

mkdir -p "$out"
cp "$cu3d" "$out/cu3d"
bin="$out/cu3d"
cat > "$out/model.json" <<'JSON'
{"name": "soak3d", "input": [8, 32, 32, 1], "init": "pytorch",
 "layers": [
  {"type": "conv3d", "name": "conv1", "filters": 8, "kernel": 3, "padding": 1},
  {"type": "relu", "name": "relu1"},
  {"type": "max_pool3d", "name": "pool1", "window": [2, 2, 2]},
  {"type": "conv3d", "name": "conv2", "filters": 8, "kernel": 3, "padding": 1},
  {"type": "relu", "name": "relu2"},
  {"type": "max_pool3d", "name": "pool2", "window": [2, 4, 4]},
  {"type": "flatten", "name": "flatten"},
  {"type": "dropout", "name": "drop", "rate": 0.3},
  {"type": "dense", "name": "fc", "units": "classes"}]}
JSON
if [[ ! -f "$out/shards/manifest.json" ]]; then
  "$bin" synth "$out/videos" --classes 4 --groups 4 --clips 3 --frames 16 --size 32 > /dev/null
  "$bin" prep "$out/videos" "$out/shards" --depth 8 > /dev/null
fi
rm -rf "$out/run"
"$bin" train --data "$out/shards" --model "$out/model.json" --epochs 1000000 --batch 8 \
  --device "$device" --output "$out/run" > "$out/train.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2> /dev/null || true' EXIT

gpu_mib() {
  [[ "$device" == cpu ]] && return 0
  nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2> /dev/null |
    awk -F', ' -v pid="$pid" '$1 == pid {print $2}'
}
echo "seconds,epochs,rss_kib,gpu_mib" > "$out/memory.csv"
start=$(date +%s)
end=$((start + minutes * 60))
while kill -0 "$pid" 2> /dev/null && (($(date +%s) < end)); do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2> /dev/null || true)
  epochs=$(grep -c 'val_loss' "$out/train.log" || true)
  [[ -n "$rss" ]] && echo "$(($(date +%s) - start)),${epochs},${rss},$(gpu_mib)" >> "$out/memory.csv"
  sleep "$every"
done
if ! kill -0 "$pid" 2> /dev/null; then
  echo "soak: FAILED: training stopped early; see $out/train.log:" >&2
  tail -n 5 "$out/train.log" >&2
  exit 1
fi
kill -INT "$pid"  # saves a checkpoint and exits 130
wait "$pid" || true
trap - EXIT

# The run state sits, as escaped JSON, in the checkpoint's header: \"step\":N.
steps=$(grep -ao '\\"step\\":[0-9]*' "$out/run/checkpoint-last.safetensors" | head -1 | grep -o '[0-9]*$' || true)
awk -F, -v steps="${steps:-?}" -v minutes="$minutes" '
  NR == 1 { next }
  { t[n] = $1; e[n] = $2; r[n] = $3; g[n] = $4; n++ }
  END {
    first = -1
    for (i = 0; i < n; i++) if (e[i] >= 1) { first = i; break }
    if (first < 0) { print "soak: FAILED: not one epoch finished in " minutes " min"; exit 1 }
    from = first + int((n - first) * 0.9)
    top = 0; gtop = 0
    for (i = from; i < n; i++) { if (r[i] > top) top = r[i]; if (g[i] > gtop) gtop = g[i] }
    limit = r[first] * 1.05 + 16 * 1024
    printf "soak: %d s, %d epochs, %s steps; RSS %.1f MiB after epoch 1 (at %d s), peak of the last tenth %.1f MiB, limit %.1f MiB\n",
      t[n - 1], e[n - 1], steps, r[first] / 1024, t[first], top / 1024, limit / 1024
    bad = top > limit
    if (g[first] != "") {
      glimit = g[first] * 1.05 + 64
      printf "soak: GPU memory %d MiB after epoch 1, peak of the last tenth %d MiB, limit %.0f MiB\n",
        g[first], gtop, glimit
      bad = bad || gtop > glimit
    }
    print bad ? "soak: FAILED: memory grew after the first epoch" : "soak: PASSED: no growth after the first epoch"
    exit bad
  }' "$out/memory.csv"
