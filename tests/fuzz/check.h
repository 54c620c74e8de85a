/* SPDX-License-Identifier: MIT */
/* check.h - the fuzzers' assertion: it aborts, so libFuzzer reports the
 * input, and it stays on in every build (assert would not under NDEBUG). */
#ifndef SB_FUZZ_CHECK_H
#define SB_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

#endif
