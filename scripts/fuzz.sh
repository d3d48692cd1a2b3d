#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-14 + ASan/UBSan and runs each one.
#   scripts/fuzz.sh [RUNS] [TARGET...]     RUNS defaults to 20000 (the short run of the test suite)
# A crash, leak or sanitizer report fails the run (non-zero exit). Seeds live in fuzz/corpus/<name>/;
# new inputs found during the run go to a scratch copy, so the repository is never modified.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20000}
shift || true
BUILD=${STEPAUDIO_FUZZ_BUILD:-build-fuzz}
CC=clang-14 CXX=clang++-14 cmake -G Ninja -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSTEPAUDIO_FUZZ=ON -DSTEPAUDIO_CUDA=OFF -DSTEPAUDIO_TESTS=OFF -DSTEPAUDIO_BENCH=OFF >/dev/null
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
ninja -C "$BUILD" "${targets[@]}"
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  scratch=$(mktemp -d)
  [[ -d fuzz/corpus/$name ]] && cp -r fuzz/corpus/$name/. "$scratch/"
  echo "fuzz: $t, $RUNS runs"
  log="$BUILD/$t.log"
  status=0
  "$BUILD/fuzz/$t" -runs="$RUNS" -max_len=65536 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$BUILD/$t-" "$scratch" >"$log" 2>&1 || status=$?
  grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done" "$log" || true
  rm -rf "$scratch"
  if [[ $status -ne 0 ]]; then tail -40 "$log"; echo "fuzz: $t FAILED (artifacts in $BUILD/$t-*)"; exit 1; fi
done
echo "fuzz: all targets clean"
