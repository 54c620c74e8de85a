#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench.sh [bench args...] - the benchmark suite of issue 6, in one command:
# installs what is missing (deps.sh), builds Release into build/bench, runs
# the bench binary. Prints one table; writes build/bench/bench.json.
# Never part of the test run; docs/performance.md explains every figure.
#   bash scripts/bench.sh                 # everything, 5 repetitions (~1-2 min)
#   bash scripts/bench.sh --reps 3 --only cycle,rtt
#   SB_STUB_MUSL=OFF bash scripts/bench.sh --only cycle   # the glibc stub
#   bash scripts/bench.sh --peers         # against Bear, process-proxy, /bin/true
#   bash scripts/bench.sh --packages      # the language packages' figures alone
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --peers ]; then
  shift
  exec bash scripts/bench-peers.sh "$@"
fi
bash scripts/deps.sh binutils
dir=build/bench
# SB_STUB_MUSL=OFF in the environment benches the glibc stub (A/B runs); a
# build dir configured before AUTO existed would otherwise keep OFF.
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSB_BENCH=ON \
  -DSB_STUB_MUSL="${SB_STUB_MUSL:-AUTO}" >/dev/null
cmake --build "$dir" --target bench socketbridge-stub socketbridge_cli >/dev/null
# --packages: only the language packages' figures (issue 12), below.
if [ "${1:-}" != --packages ]; then
  "$dir/tests/bench/bench" --json "$dir/bench.json" "$@"
fi

# The language packages (bindings/bench): a call decided live in Python and
# in Node against the same call answered by a rules file; the Node package
# against process-proxy (from npm, into the build tree: never a dependency of
# the package or its tests) on a 300-call loop and a 256 MiB stdout stream.
# Every repetition runs each figure and its floor back to back.
echo "== language packages (SB_BENCH_PKG_REPS=${SB_BENCH_PKG_REPS:=5} reps)"
pp=$dir/process-proxy
[ -f "$pp/node_modules/process-proxy/package.json" ] ||
  npm install --prefix "$pp" --no-audit --no-fund --ignore-scripts --loglevel=error \
    process-proxy@0.6.0 >/dev/null
for t in tcp unix; do
  /usr/bin/python3 bindings/bench/live.py "$dir/socketbridge" "$t" 300 "$SB_BENCH_PKG_REPS"
  SOCKETBRIDGE_CLI=$PWD/$dir/socketbridge node bindings/bench/node.mjs "$pp" "$t" 300 \
    "$SB_BENCH_PKG_REPS"
done | /usr/bin/python3 bindings/bench/report.py "$dir/packages.json"
