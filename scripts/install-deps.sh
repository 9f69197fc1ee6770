#!/usr/bin/env bash
# Installs the Debian 12 packages cu3d builds against. The CUDA backend additionally needs the
# CUDA toolkit (with cuDNN, cuBLAS, NCCL, NVTX) under /usr/local/cuda; without it cu3d builds the
# CPU backend only. Safe to run again: it does nothing when everything is already installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  ninja-build             # schedules CI's builds file by file, not library by library
  libopenblas-openmp-dev  # BLAS for the CPU backend; the OpenMP build nests safely in our threads
  libgtest-dev libbenchmark-dev
  nlohmann-json3-dev libfmt-dev libcli11-dev
  libopencv-dev           # video decoding/encoding, resizing, PNG
  graphviz                # `dot` renders the model diagrams (model.png)
  libturbojpeg0-dev       # JPEG shards (libjpeg-turbo)
  libhdf5-dev             # Keras HDF5 weight import
  libopenmpi-dev openmpi-bin  # data-parallel training (MPI launch, CPU all-reduce)
  clang libomp-dev        # CI's sanitizer + fuzzing build (libFuzzer ships with clang)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
