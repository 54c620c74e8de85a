#!/usr/bin/env bash
# test.sh - from a fresh clone: installs what is missing, builds, and passes
# every test: a plain gcc build, an ASan+UBSan build, a clang build, and the
# fuzzers for a bounded time (SB_FUZZ_SECONDS each, default 30; 0 skips):
# every tests/fuzz/fuzz_NAME built (frame, msg, conn: the supervisor's
# connection state machine, ...), seeded from tests/fuzz/corpus/NAME.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export CRITERION_JOBS=${CRITERION_JOBS:-$(nproc)}

results=$(mktemp)
# The harness notes here every token it has the library generate
# (tests/integration/harness.c); none may appear in anything a suite prints:
# the library's and the stub's own lines, the children's inherited output,
# the tests' logs.
export SB_TEST_TOKEN_LOG
SB_TEST_TOKEN_LOG=$(mktemp)
trap 'rm -f "$results" "$SB_TEST_TOKEN_LOG"' EXIT

run_suite() { # build-dir label
  local t
  for t in unit integration; do
    echo "== $2: $t tests"
    "$1/tests/test_$t" --jobs "$CRITERION_JOBS" --verbose 2>&1 | tee -a "$results"
  done
}

echo "== build: gcc, warnings as errors"
bash scripts/build.sh build/gcc -DCMAKE_C_COMPILER=gcc
run_suite build/gcc "gcc"

echo "== build: clang, ASan+UBSan, warnings as errors"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
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
    log=$(mktemp)
    cp tests/fuzz/corpus/"${name#fuzz_}"/* "$corpus"/ 2>/dev/null || true
    echo "-- $name"
    # A finding makes libFuzzer exit non-zero: show its report and fail.
    if ! "$f" -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
         -artifact_prefix="$corpus/" "$corpus" >"$log" 2>&1; then
      tail -n 60 "$log"
      exit 1
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "$log" || tail -n 2 "$log"
    rm -rf "$corpus" "$log"
  done
fi
ntok=$(wc -l <"$SB_TEST_TOKEN_LOG")
if [ "$ntok" -eq 0 ]; then
  echo "token check: the harness noted no token (is SB_TEST_TOKEN_LOG honoured?)"
  exit 1
fi
if grep -q -F -f "$SB_TEST_TOKEN_LOG" "$results"; then
  echo "token check: a token the suite generated appears in its output, lines:"
  grep -n -F -f "$SB_TEST_TOKEN_LOG" "$results" | cut -d: -f1 | head
  exit 1
fi
echo "token check: none of the $ntok tokens generated appears in the suites' output"
# One closing line over every suite run above (Criterion's synthesis lines).
sed 's/\x1b\[[0-9;]*m//g' "$results" | awk -F'[:|]' '/Synthesis: Tested/ {
    for (i = 1; i <= NF; i++) {
      if ($i ~ /Passing/) { split($(i+1), a, " "); pass += a[1] }
      if ($i ~ /Failing/ || $i ~ /Crashing/) { split($(i+1), b, " "); fail += b[1] }
    }
  } END { printf "tests: %d passed, %d failed\n", pass, fail; exit (fail > 0 || pass == 0) }'

