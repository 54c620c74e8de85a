/* SPDX-License-Identifier: MIT */
/* utf8.c - UTF-8 validation, and the one-pass check of control payloads. */
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

bool sb_utf8_valid(const uint8_t *buf, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (buf[i] < 0x80) {
      i++;
      continue;
    }
    size_t n = sb__utf8_seq(buf + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

/* A \u escape (p points at the 'u', at is the backslash's offset) must
 * have four hex digits and not be \u0000. cJSON reads a bad digit as a
 * NUL ("\uzzzz" would cut the string there, as \u0000 would), so both
 * are refused here, before it sees them. */
static int check_u_escape(const uint8_t *p, size_t left, size_t at, sb_diag *diag) {
  bool zero = true;
  for (size_t k = 1; k <= 4; k++) {
    if (k >= left || sb__hex_value(p[k]) < 0)
      return sb_diag_set(diag, SB_EBADMSG,
                         "control message: \\u escape without 4 hex digits at offset %zu",
                         at);
    zero = zero && p[k] == '0';
  }
  if (zero)
    return sb_diag_set(diag, SB_EBADMSG, "control message: \\u0000 escape at offset %zu",
                       at);
  return 0;
}

/* Tracks just enough of the JSON grammar (inside a string or not, after a
 * backslash or not) to find a \u0000 escape, which would cut a C string
 * short, without parsing anything. The JSON parser that runs next does the
 * rest. */
int sb__json_precheck(const uint8_t *buf, size_t len, sb_diag *diag) {
  bool in_str = false, esc = false;
  size_t i = 0;

  while (i < len) {
    uint8_t c = buf[i];
    if (c >= 0x80) {
      size_t n = sb__utf8_seq(buf + i, len - i);
      if (n == 0)
        return sb_diag_set(diag, SB_EBADMSG,
                           "control message: invalid UTF-8 at offset %zu", i);
      i += n;
      esc = false;
      continue;
    }
    if (c == 0)
      return sb_diag_set(diag, SB_EBADMSG, "control message: NUL byte at offset %zu", i);
    if (in_str) {
      if (c < 0x20)
        return sb_diag_set(diag, SB_EBADMSG,
                           "control message: control character 0x%02x in a string at "
                           "offset %zu",
                           c, i);
      if (esc) {
        int r = c == 'u' ? check_u_escape(buf + i, len - i, i - 1, diag) : 0;
        if (r < 0)
          return r;
        esc = false;
      } else if (c == '\\') {
        esc = true;
      } else if (c == '"') {
        in_str = false;
      }
    } else if (c == '"') {
      in_str = true;
    }
    i++;
  }
  return 0;
}
