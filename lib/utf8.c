/* SPDX-License-Identifier: MIT */
/* utf8.c - UTF-8 validation, one sequence at a time (the JSON reader and
 * writer check their strings with it as they scan them). */
#include "proto.h"

/* The well-formed byte sequences of Unicode (Table 3-7): the ranges of the
 * second byte are what excludes overlongs (E0, F0), surrogates (ED) and
 * code points over U+10FFFF (F4). */
size_t sb__utf8_seq(const uint8_t *p, size_t left) {
  uint8_t c = p[0];
  uint8_t lo = 0x80, hi = 0xbf;
  size_t n;

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else {
    return 0;
  }
  if (left < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
  return n;
}
