#!/bin/sh
# SPDX-License-Identifier: MIT
# musl-cc.sh MUSL_GCC compile|link COMPILER ARGS... - the compiler and linker
# launcher of socketbridge-stub with -DSB_STUB_MUSL=ON (CMakeLists.txt):
# CMake runs the project's compiler through it, and it runs musl-gcc with the
# same arguments instead, linking statically. So the stub target, its
# flags and its dependents stay as they are; only the C library changes.
musl=$1 mode=$2
shift 3
if [ "$mode" = link ]; then
  exec "$musl" -static "$@"
fi
exec "$musl" "$@"
