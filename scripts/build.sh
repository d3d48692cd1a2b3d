#!/usr/bin/env bash
# Configures and builds stepaudio into ./build (Release). The CUDA backend is built when nvcc is
# found (sm_90 by default; set CMAKE_CUDA_ARCHITECTURES to override).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${STEPAUDIO_BUILD:-build}
JOBS=${JOBS:-$(nproc)}
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
ninja -C "$BUILD" -j"$JOBS"
