#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench-peers.sh - socketbridge against its peers, measured in one run,
# alternated, medians of REPS (default 3): `bash scripts/bench.sh --peers`.
#   - a recorded build (compile-db) against the same build plain, and under
#     Bear: this project's library and stub, make -j2, from clean each time;
#   - a 300-call loop of the stub (its supervisor answering exit 0) against
#     300 runs of /bin/true and against process-proxy's native executable
#     (npm process-proxy, installed here into build/peers; its Node server
#     answering exit 0);
#   - a 256 MiB stdout stream through the stub against process-proxy's.
# Prints each figure with its goal and a verdict; docs/performance.md keeps
# the latest run. Timings are the loops' own (date inside the shell), so
# server start-up counts for nobody.
set -euo pipefail
cd "$(dirname "$0")/.."
REPS=${REPS:-3}
bash scripts/deps.sh bear make
for t in node npm; do # the machine's own (Debian's npm conflicts with a newer node)
  command -v $t >/dev/null || bash scripts/deps.sh nodejs npm
done
root=$PWD
peers=$root/build/peers
mkdir -p "$peers"
bash scripts/build.sh build/bench-peers -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF \
  -DSB_EXAMPLES=OFF
SB=$root/build/bench-peers/socketbridge
if [ ! -x "$peers/node_modules/process-proxy/bin/process-proxy-linux-x64" ]; then
  (cd "$peers" && npm install --no-audit --no-fund --silent process-proxy@0.6.0 >/dev/null)
fi
PP_EXE=$peers/node_modules/process-proxy/bin/process-proxy-linux-x64
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$tmp"' EXIT

# The median of the numbers on stdin; fails (ending the run) when there are none.
median() {
  sort -n | awk '{a[NR]=$1} END {if (NR == 0) exit 1; print a[int((NR+1)/2)]}' ||
    { echo "bench-peers: a figure has no measurement (see above)" >&2; exit 1; }
}
now_ms() { date +%s%3N; }
verdict() { # ratio op goal
  awk -v r="$1" -v g="$3" -v op="$2" 'BEGIN {
    ok = (op == "<=") ? (r <= g) : (r >= g); printf "%s", ok ? "met" : "MISSED" }'
}
row() { # label ratio op goal detail
  printf '  %-44s %6.2fx   goal %s %sx   %-6s  %s\n' "$1" "$2" "$3" "$4" \
    "$(verdict "$2" "$3" "$4")" "$5"
}

echo "== peers: $(bear --version), process-proxy $(node -p \
  "require('$peers/node_modules/process-proxy/package.json').version"), node $(node --version)"

# ---- a recorded build -----------------------------------------------------
cmake -S "$root" -B "$tmp/b" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release \
  -DSB_TESTS=OFF -DSB_EXAMPLES=OFF >/dev/null
build_once() { # wrapper... : ms of a clean build of the library and the stub
  make -C "$tmp/b" clean >/dev/null
  local t0; t0=$(now_ms)
  (cd "$tmp" && "$@" make -C "$tmp/b" -j2 socketbridge-stub socketbridge_static >/dev/null 2>&1)
  echo $(($(now_ms) - t0))
}
: >"$tmp/plain"; : >"$tmp/sb"; : >"$tmp/bear"
for _ in $(seq "$REPS"); do
  build_once env >>"$tmp/plain"
  build_once "$SB" compile-db --output "$tmp/cdb.json" -- >>"$tmp/sb"
  build_once bear --output "$tmp/bear.json" -- >>"$tmp/bear"
done
plain=$(median <"$tmp/plain"); sb=$(median <"$tmp/sb"); bearms=$(median <"$tmp/bear")
n=$(python3 -c "import json; print(len(json.load(open('$tmp/cdb.json'))))")
echo "== a recorded build ($n compilations, make -j2, medians of $REPS)"
row "compile-db / plain build" "$(awk -v a="$sb" -v b="$plain" 'BEGIN{print a/b}')" "<=" 1.10 \
  "$sb ms / $plain ms"
row "compile-db / bear" "$(awk -v a="$sb" -v b="$bearms" 'BEGIN{print a/b}')" "<=" 0.70 \
  "$sb ms / $bearms ms"

# ---- the stub against /bin/true and process-proxy -------------------------
# One loop for all three: P is the program, run 300 times; its time in ms.
loop='P=${P:-$SOCKETBRIDGE_STUB}; t0=$(date +%s%N); i=0
      while [ $i -lt 300 ]; do "$P" || exit 1; i=$((i+1)); done
      echo $(( ($(date +%s%N) - t0) / 1000000 ))'
cp "$root/tests/bench/peers/pp_server.mjs" "$peers/" # ESM finds node_modules from here
start_pp() { # mode [bytes]: starts process-proxy's server, prints its port
  node "$peers/pp_server.mjs" "$@" >"$tmp/pp.port" 2>"$tmp/pp.err" &
  pids+=($!)
  for _ in $(seq 400); do [ -s "$tmp/pp.port" ] && break; sleep 0.05; done
  [ -s "$tmp/pp.port" ] || { cat "$tmp/pp.err" >&2; exit 1; }
}
start_pp exit
pp_port=$(head -1 "$tmp/pp.port")
: >"$tmp/stub"; : >"$tmp/true"; : >"$tmp/pp"
for _ in $(seq "$REPS"); do
  "$SB" run --stdout "$tmp/o" -- sh -c "$loop"
  cat "$tmp/o" >>"$tmp/stub"
  P=/bin/true sh -c "$loop" >>"$tmp/true" # the program, not the builtin
  P=$PP_EXE PROCESS_PROXY_PORT=$pp_port sh -c "$loop" >>"$tmp/pp"
done
stub=$(median <"$tmp/stub"); truems=$(median <"$tmp/true"); ppms=$(median <"$tmp/pp")
echo "== 300 calls in a loop (medians of $REPS)"
row "stub / process-proxy" "$(awk -v a="$stub" -v b="$ppms" 'BEGIN{print a/b}')" "<=" 0.40 \
  "$stub ms / $ppms ms"
row "stub / /bin/true" "$(awk -v a="$stub" -v b="$truems" 'BEGIN{print a/b}')" "<=" 1.00 \
  "$stub ms / $truems ms"

# ---- 256 MiB of stdout ------------------------------------------------------
MIB=256
bytes=$((MIB * 1024 * 1024))
head -c "$bytes" /dev/zero | tr '\0' a >"$tmp/big"
printf '{"rules": [{"respond": {"stdout_file": "%s"}}]}\n' "$tmp/big" >"$tmp/stream.json"
kill "${pids[@]}" 2>/dev/null || true
start_pp stream "$bytes"
pp_port=$(head -1 "$tmp/pp.port")
stream='P=${P:-$SOCKETBRIDGE_STUB}; t0=$(date +%s%N); n=$("$P" | wc -c)
        [ "$n" = '"$bytes"' ] || { echo "short: $n" >&2; exit 1; }
        echo $(( ($(date +%s%N) - t0) / 1000000 ))'
: >"$tmp/sstub"; : >"$tmp/spp"
for _ in $(seq "$REPS"); do
  "$SB" run --rules "$tmp/stream.json" --stdout "$tmp/o" -- sh -c "$stream"
  cat "$tmp/o" >>"$tmp/sstub"
  P=$PP_EXE PROCESS_PROXY_PORT=$pp_port sh -c "$stream" >>"$tmp/spp"
done
sstub=$(median <"$tmp/sstub"); spp=$(median <"$tmp/spp")
echo "== $MIB MiB of stdout (medians of $REPS)"
row "stub throughput / process-proxy's" "$(awk -v a="$sstub" -v b="$spp" 'BEGIN{print b/a}')" \
  ">=" 1.50 "$(awk -v m=$MIB -v t="$sstub" 'BEGIN{printf "%.0f", m*1000/t}') MiB/s / $(awk -v m=$MIB -v t="$spp" 'BEGIN{printf "%.0f", m*1000/t}') MiB/s"
