#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# test.sh - from a fresh clone: installs what is missing, builds, and passes
# every test: a plain gcc build, an ASan+UBSan build, a clang build, the
# docs and the install (tests/docs), and the fuzzers for a bounded time
# (SB_FUZZ_SECONDS each, default 30; 0 skips): every tests/fuzz/fuzz_NAME
# built (frame, msg, conn: the supervisor's connection state machine, ...),
# seeded from tests/fuzz/corpus/NAME. Each stage says when it starts and how
# long it took; a table of them closes the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export CRITERION_JOBS=${CRITERION_JOBS:-$(nproc)}

# stage NAME: closes the stage before (its time), opens NAME.
stages=()
stage_name=""
stage_start=$SECONDS
run_start=$SECONDS
stage() {
  if [ -n "$stage_name" ]; then
    local took=$((SECONDS - stage_start))
    stages+=("$(printf '%5ss  %s' "$took" "$stage_name")")
    echo "== done in ${took}s: $stage_name"
  fi
  stage_name=$1
  stage_start=$SECONDS
  [ -z "$stage_name" ] || echo "== [$(date -u +%H:%M:%S)] $stage_name"
}

stage "dependencies (scripts/deps.sh)"
bash scripts/deps.sh

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
    stage "$2: $t tests"
    "$1/tests/test_$t" --jobs "$CRITERION_JOBS" --verbose 2>&1 | tee -a "$results"
  done
}

stage "build: gcc, warnings as errors"
bash scripts/build.sh build/gcc -DCMAKE_C_COMPILER=gcc
run_suite build/gcc "gcc"

# What a user copies from the docs, and what a user installs (pytest: the
# README's and docs' C blocks, examples/ against an install, pkg-config);
# compile-db against Bear on real builds. Debian's python3, where pytest is.
stage "docs, install, compile-db (pytest tests/docs tests/compile_db)"
SB_BUILD_DIR=build/gcc /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/docs \
  tests/compile_db 2>&1 | tee -a "$results"

# The language packages (bindings/, issue 12), against the gcc build's
# socketbridge: Debian's python3 (not whichever python3 is first on PATH),
# whose pytest and setuptools deps.sh installs, and the machine's node.
stage "language packages (pytest bindings/python, node --test bindings/node)"
SOCKETBRIDGE_CLI=$PWD/build/gcc/socketbridge /usr/bin/python3 -m pytest -p no:cacheprovider -q \
  bindings/python/tests 2>&1 | tee -a "$results"
(cd bindings/node && SOCKETBRIDGE_CLI=$PWD/../../build/gcc/socketbridge \
  node --test --test-reporter=spec test/*.test.js) 2>&1 | tee -a "$results"

stage "build: clang, ASan+UBSan, warnings as errors"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
bash scripts/build.sh build/asan -DCMAKE_C_COMPILER=clang -DSB_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=Debug
run_suite build/asan "clang asan+ubsan"

secs=${SB_FUZZ_SECONDS:-30}
if [ "$secs" != 0 ]; then
  stage "fuzzers, ${secs}s each"
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
stage "token check"
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
stage ""
echo "== stages"
printf '%s\n' "${stages[@]}"
echo "== all in $((SECONDS - run_start))s"
# One closing line over every suite run above: Criterion's synthesis lines,
# pytest's closing line ("9 passed in 0.9s", "1 failed, 8 passed ...") and
# node --test's summary ("ℹ pass 38", "ℹ fail 0").
sed 's/\x1b\[[0-9;]*m//g' "$results" | awk '
  /Synthesis: Tested/ {
    n = split($0, f, /[:|]/)
    for (i = 1; i <= n; i++) {
      if (f[i] ~ /Passing/) { split(f[i+1], a, " "); pass += a[1] }
      if (f[i] ~ /Failing/ || f[i] ~ /Crashing/) { split(f[i+1], b, " "); fail += b[1] }
    }
    next
  }
  /^=*[ ]*[0-9]+ (passed|failed).* in [0-9.]+s/ {
    for (i = 1; i < NF; i++) {
      if ($(i+1) ~ /^passed/) pass += $i
      if ($(i+1) ~ /^(failed|errors?)/) fail += $i
    }
  }
  /^ℹ (pass|fail) [0-9]+$/ { if ($2 == "pass") pass += $3; else fail += $3 }
  END { printf "tests: %d passed, %d failed\n", pass, fail; exit (fail > 0 || pass == 0) }'

