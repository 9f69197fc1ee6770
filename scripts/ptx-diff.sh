#!/usr/bin/env bash
# Shows whether a change to the CUDA sources changes the code the GPU runs: compiles kernels/cuda
# to PTX (for compute_90a, the build's Hopper code, and compute_90, its portable code) at a git
# revision and in the working tree, and compares the two with the names that a move alone changes
# masked (anonymous-namespace hashes; the dynamic shared array's name). No GPU needed: a refactor
# that prints "same" for every file cannot have changed what runs on one.
#
#   scripts/ptx-diff.sh [REV] [FILE.cu ...]     REV defaults to HEAD, files to kernels/cuda/*.cu
#
# PTX_DIFF_ANY_NAMES=1 masks every mangled name and the linkage too, for a change that moves
# types between namespaces (a kernel's name then changes with its template arguments).
#
# Exit status 0 when every file is the same, 1 otherwise (the differences are printed).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rev=${1:-HEAD}
shift || true
nvcc=${CUDACXX:-/usr/local/cuda/bin/nvcc}
[[ -x $nvcc ]] || { echo "ptx-diff: no nvcc at $nvcc (set CUDACXX)" >&2; exit 2; }
files=("$@")
if [[ ${#files[@]} -eq 0 ]]; then
  mapfile -t files < <(cd kernels/cuda && ls ./*.cu | sed 's|^\./||')
fi

work=$(mktemp -d)
trap 'git -C "$root" worktree remove --force "$work/base" > /dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach --quiet "$work/base" "$rev"

# The compile line of the build (CMakeLists.txt), less the line info, whose line numbers move.
ptx() {  # ptx SRCROOT FILE ARCH OUT
  "$nvcc" -DCU3D_CUDA=1 -DCU3D_WGMMA=1 -DFMT_SHARED -I"$1" -isystem=/usr/local/cuda/include \
    -isystem=/usr/include/x86_64-linux-gnu/openblas-openmp -O3 -DNDEBUG -arch="compute_$3" \
    -DFMT_CONSTEVAL= -DFMT_USE_CONSTEXPR=1 --expt-relaxed-constexpr --extended-lambda -std=c++20 \
    -x cu -ptx "$1/kernels/cuda/$2" -o "$4"
}
normalize() {
  sed -E 's/_GLOBAL__N__[0-9a-f]{8}_/_GLOBAL__N__H_/g; s/_INTERNAL_[0-9a-f]{8}_/_INTERNAL_H_/g' "$1" |
    sed -E 's/_ZN4cu3d4cuda[0-9A-Za-z_]*(stages|dynamic_shared)E/DYNAMIC_SHARED/g' |
    grep -v '^\.extern \.shared .*DYNAMIC_SHARED\[\];$' |
    if [[ ${PTX_DIFF_ANY_NAMES:-0} == 1 ]]; then
      sed -E 's/_Z[A-Za-z0-9_]+/NAME/g; s/^\.visible //' | grep -v '^\s*// \.globl'
    else
      cat
    fi
}

status=0
for f in "${files[@]}"; do
  for arch in 90a 90; do
    ptx "$work/base" "$f" $arch "$work/before.ptx" &
    ptx "$root" "$f" $arch "$work/after.ptx" &
    wait
    if diff <(normalize "$work/before.ptx") <(normalize "$work/after.ptx") > "$work/diff"; then
      echo "same       $f ($arch)"
    else
      echo "DIFFERENT  $f ($arch): $(grep -c '^[<>]' "$work/diff") lines"
      head -20 "$work/diff"
      status=1
    fi
  done
done
exit $status
