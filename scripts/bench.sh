#!/usr/bin/env bash
# bench.sh [bench args...] - the benchmark suite of issue 6, in one command:
# installs what is missing (deps.sh), builds Release into build/bench, runs
# the bench binary. Prints one table; writes build/bench/bench.json.
# Never part of the test run; docs/performance.md explains every figure.
#   bash scripts/bench.sh                 # everything, 5 repetitions (~1-2 min)
#   bash scripts/bench.sh --reps 3 --only cycle,rtt
#   SB_STUB_MUSL=OFF bash scripts/bench.sh --only cycle   # the glibc stub
#   bash scripts/bench.sh --peers         # against Bear, process-proxy, /bin/true
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
cmake --build "$dir" --target bench socketbridge-stub >/dev/null
exec "$dir/tests/bench/bench" --json "$dir/bench.json" "$@"
