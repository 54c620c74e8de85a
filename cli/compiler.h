/* SPDX-License-Identifier: MIT */
/* compiler.h - C-family compiler names (compiler.c). No dependency beyond
 * libc: the preload library compiles it too. */
#ifndef SB_CLI_COMPILER_H
#define SB_CLI_COMPILER_H

#include <stdbool.h>

/* True for gcc, g++, cc, c++, clang, clang++, with a target prefix
 * (x86_64-linux-gnu-gcc, musl-gcc) and a version suffix (gcc-12,
 * clang++-14): the names compile-db treats as compilers. name is a
 * basename. */
bool cli_is_compiler_name(const char *name);
/* What follows the last '/' of path (path itself without one). */
const char *cli_basename(const char *path);

#endif
