#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# build.sh DIR [cmake args...] - configures (once) and builds into DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1; shift
cmake -S . -B "$dir" -G Ninja -DSB_WARNINGS_AS_ERRORS=ON "$@" >/dev/null
cmake --build "$dir" -- -k 0 >/dev/null || cmake --build "$dir"
