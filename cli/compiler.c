/* SPDX-License-Identifier: MIT */
/* compiler.c - which program names are C-family compilers, for compile-db:
 * one rule for the names shimmed, the execs redirected by the preload
 * library (preload/exec.c compiles this file too) and the calls that count
 * as compilations. */
#include "compiler.h"

#include <string.h>

/* The drivers, as they end a name: gcc, x86_64-linux-gnu-gcc, musl-gcc. */
static const char *const drivers[] = {"cc", "c++", "gcc", "g++", "clang", "clang++"};

/* Length of name without a trailing version: "-12", "-14.0.6", or digits
 * glued to a driver ("gcc12" is not one; "clang-14" is). */
static size_t strip_version(const char *name, size_t len) {
  size_t i = len;
  while (i > 0 && ((name[i - 1] >= '0' && name[i - 1] <= '9') || name[i - 1] == '.'))
    i--;
  if (i < len && i > 0 && name[i - 1] == '-' && name[i] >= '0' && name[i] <= '9')
    return i - 1;
  return len;
}

bool cli_is_compiler_name(const char *name) {
  size_t len = strip_version(name, strlen(name));
  for (size_t d = 0; d < sizeof drivers / sizeof drivers[0]; d++) {
    size_t n = strlen(drivers[d]);
    if (len < n || memcmp(name + len - n, drivers[d], n) != 0)
      continue;
    /* The driver is the whole name, or follows a '-' (a target prefix). */
    if (len == n || name[len - n - 1] == '-')
      return true;
  }
  return false;
}

const char *cli_basename(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}
