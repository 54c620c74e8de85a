#!/usr/bin/env bash
# demo.sh - from a fresh clone: installs what is missing, builds, and runs the
# main job: a supervisor spawns a shell, the shell runs socketbridge-stub, and
# the supervisor answers the stub as if it were the tool.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build/demo -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF
echo "== examples/echo: a supervisor answering a stub run by its child" >&2
exec build/demo/examples/echo "$@"
