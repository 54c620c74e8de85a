/* SPDX-License-Identifier: MIT */
/* decimal.c - the one reader of decimal numbers in configuration: ports,
 * sizes, depths, prefix lengths, signal numbers, option values. Strict on
 * purpose: what the user wrote is the number or it is an error, never a
 * number strtoul(3) made of part of it. */
#include "proto.h"

bool sb__parse_uint(const char *s, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (s == NULL || *s == '\0')
    return false;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return false;
    unsigned d = (unsigned)(*s - '0');
    /* v * 10 + d <= max, written so that nothing can wrap. */
    if (d > max || v > (max - d) / 10)
      return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}
