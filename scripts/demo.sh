#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# demo.sh - from a fresh clone: installs what is missing, builds, and runs the
# main job: `socketbridge run` supervises a real `git commit` whose editor is
# socketbridge-stub. git runs the stub as its editor, the stub connects back
# over the bridge, the supervisor answers it (exit 0: keep the message), and
# git commits. Every event is shown as a JSON line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh build/demo -DCMAKE_BUILD_TYPE=Release -DSB_TESTS=OFF
sb=$PWD/build/demo/socketbridge

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git init -q "$work/repo"
cd "$work/repo"
git config user.name "socketbridge demo"
git config user.email demo@socketbridge.invalid
echo "hello" > greeting.txt
git add greeting.txt

echo "== socketbridge run -- git commit -e, with GIT_EDITOR=\$SOCKETBRIDGE_STUB" >&2
echo "   (events on stderr, one JSON line each; the stub_connect line is git running its editor)" >&2
set +e
"$sb" run --events /dev/stderr -- \
  sh -c 'GIT_EDITOR="$SOCKETBRIDGE_STUB" git commit -q -e -m "committed through socketbridge"'
status=$?
set -e
echo "== socketbridge run exited $status; the repository now has:" >&2
git log --format='   %h %s'
exit "$status"
