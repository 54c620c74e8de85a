#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deps.sh - installs, from Debian's archive, whatever the build needs and this
# machine lacks. Does nothing (and needs no network) when all is present.
set -euo pipefail
# musl-tools: musl-gcc, with which the stub is linked statically (the
# default where it is found: CMakeLists.txt, SB_STUB_MUSL).
# python3-pytest python3-setuptools python3-wheel python3-venv nodejs (and npm
# where the nodejs installed does not bring it): the language packages' suites
# (bindings/; pip and npm install them offline).
want=(cmake ninja-build pkg-config gcc clang libclang-rt-14-dev libuv1-dev libcjson-dev
      libcriterion-dev musl-tools git python3 python3-pytest bear make g++ python3-setuptools
      python3-wheel python3-venv nodejs "$@")
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
