#!/usr/bin/env bash
# test.sh - from a fresh clone: installs what is missing, builds, and passes
# every test: a plain gcc build, an ASan+UBSan build, a clang build, and the
# fuzzers for a bounded time (SB_FUZZ_SECONDS each, default 30; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CRITERION_JOBS=${CRITERION_JOBS:-$(nproc)}

run_suite() { # build-dir label
  echo "== $2: unit tests"
  "$1/tests/test_unit" --jobs "$CRITERION_JOBS"
  echo "== $2: integration tests"
  "$1/tests/test_integration" --jobs "$CRITERION_JOBS"
}

echo "== build: gcc, warnings as errors"
bash scripts/build.sh build/gcc -DCMAKE_C_COMPILER=gcc
run_suite build/gcc "gcc"

echo "== build: clang, ASan+UBSan, warnings as errors"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
bash scripts/build.sh build/asan -DCMAKE_C_COMPILER=clang -DSB_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug
run_suite build/asan "clang asan+ubsan"

secs=${SB_FUZZ_SECONDS:-30}
if [ "$secs" != 0 ]; then
  echo "== fuzzers, ${secs}s each"
  bash scripts/build.sh build/fuzz -DCMAKE_C_COMPILER=clang -DSB_FUZZ=ON -DSB_TESTS=OFF \
    -DSB_EXAMPLES=OFF
  for f in build/fuzz/tests/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    corpus=$(mktemp -d)
    cp tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null || true
    echo "-- $name"
    "$f" -max_total_time="$secs" -max_len=65536 -print_final_stats=0 "$corpus" 2>&1 |
      grep -E '^(#[0-9]+ +DONE|==[0-9]+==ERROR|SUMMARY)' || true
    "$f" -runs=0 "$corpus" >/dev/null 2>&1
    rm -rf "$corpus"
  done
fi
echo "== all tests passed"
