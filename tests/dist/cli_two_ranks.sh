#!/bin/sh
# `cu3d train` as a user runs it under mpirun: the launcher is detected from the environment, the
# global batch is printed, only rank 0 writes the run folder, and --resume continues it.
# Usage: cli_two_ranks.sh MPIEXEC CU3D
set -eu
mpiexec=$1 cu3d=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cu3d" synth "$work/videos" --classes 3 --groups 4 --clips 2 --frames 12 --size 32 >/dev/null
"$cu3d" prep "$work/videos" "$work/shards" --depth 10 >/dev/null 2>&1
run() {
  "$mpiexec" -np 2 --oversubscribe --allow-run-as-root "$cu3d" train --data "$work/shards" \
    --batch 3 --output "$work/run" --bucket-mb 1 --dist-timeout 60 "$@" 2>&1
}
out=$(run --epochs 1 --lr-scaling linear)
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -q 'global batch 6 = 3 per rank x 2 ranks; lr 0.002 (--lr-scaling linear)'
test -f "$work/run/checkpoint-last.safetensors"
out=$(run --epochs 2 --lr-scaling linear --resume)
printf '%s\n' "$out" | grep -q 'resume:'
test "$(wc -l < "$work/run/result.txt")" -eq 3  # header + 2 epochs, written once (rank 0)
echo "cli_two_ranks: ok"
