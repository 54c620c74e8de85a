/* SPDX-License-Identifier: MIT */
/* token.c - the per-child secret: made and compared by the supervisor only
 * (a stub just sends what it was given; lib/token.c checks its shape). */
#include "sb_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static int fill_random(uint8_t *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t r = getrandom(buf + got, len - got, 0);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    got += (size_t)r;
  }
  return 0;
}

int sb_token_new(char out[SB_TOKEN_HEX + 1]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t raw[SB_TOKEN_BYTES];

  int r = fill_random(raw, sizeof raw);
  if (r < 0) {
    out[0] = '\0';
    return r;
  }
  for (size_t i = 0; i < SB_TOKEN_BYTES; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[SB_TOKEN_HEX] = '\0';
  /* The secret bytes should not linger on the stack. */
  explicit_bzero(raw, sizeof raw);
  return 0;
}

bool sb_token_equal(const char *a, const char *b) {
  if (a == NULL || b == NULL)
    return false;
  size_t la = strlen(a), lb = strlen(b);
  /* Every byte of a is compared, whatever the content; the only branches
   * depend on the lengths, which are not secret (tokens have a fixed one). */
  size_t diff = la ^ lb;
  for (size_t i = 0; i < la; i++) {
    unsigned char cb = i < lb ? (unsigned char)b[i] : 0;
    diff |= (unsigned char)a[i] ^ cb;
  }
  return diff == 0;
}
