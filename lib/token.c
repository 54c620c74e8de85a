/* SPDX-License-Identifier: MIT */
/* token.c - the per-child secret's shape: 64 lowercase hex digits, which
 * both sides check (supervisor/token.c makes and compares tokens). */
#include "proto.h"

bool sb_token_valid(const char *s) {
  if (s == NULL)
    return false;
  size_t i = 0;
  for (; i < SB_TOKEN_HEX; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return s[i] == '\0';
}
