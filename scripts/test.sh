#!/usr/bin/env bash
# The whole test suite on a CPU machine: installs packages, builds (CUDA sources too, when the
# toolkit is present), runs every CTest test, then short libFuzzer runs under ASan/UBSan.
# GPU tests and benchmarks run on the GPU machine through scripts/gpu-check.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
./scripts/build.sh
ctest --test-dir "${STEPAUDIO_BUILD:-build}" --output-on-failure -j"$(nproc)"
./scripts/fuzz.sh "${STEPAUDIO_FUZZ_RUNS:-20000}"
