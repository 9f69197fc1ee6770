#!/usr/bin/env bash
# The main job: installs dependencies, builds cu3d, and runs the demo. For now the demo trains a
# small 3D CNN on generated motion clips (`cu3d toy`), which exercises the engine end to end on
# the CPU in about ten seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build-configure.log || { cat build-configure.log; exit 1; }
grep -E "^-- cu3d:" build-configure.log || true
cmake --build build -j"$(nproc)" --target cu3d

out=demo-out
echo "== cu3d toy: a small 3D CNN learns the direction of motion =="
build/cu3d toy --output "$out"
echo "demo: outputs are in $out/"
