/* SPDX-License-Identifier: MIT */
/* base64.c - RFC 4648 base64, the escape of byte strings that are not UTF-8
 * (json_write.c writes it, msg_parse.c reads it). */
#include "proto.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t sb__b64_encoded_len(size_t n) {
  return (n + 2) / 3 * 4;
}

void sb__b64_encode(const uint8_t *in, size_t n, char *out) {
  size_t i = 0, o = 0;
  for (; n - i >= 3; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64_alphabet[v >> 18];
    out[o++] = b64_alphabet[(v >> 12) & 63];
    out[o++] = b64_alphabet[(v >> 6) & 63];
    out[o++] = b64_alphabet[v & 63];
  }
  if (n - i > 0) {
    uint32_t v = (uint32_t)in[i] << 16;
    if (n - i == 2)
      v |= (uint32_t)in[i + 1] << 8;
    out[o++] = b64_alphabet[v >> 18];
    out[o++] = b64_alphabet[(v >> 12) & 63];
    out[o++] = n - i == 2 ? b64_alphabet[(v >> 6) & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
}

static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

ptrdiff_t sb__b64_decode(const char *in, size_t len, uint8_t *out) {
  size_t o = 0;

  if (len % 4 != 0)
    return -1;
  for (size_t i = 0; i < len; i += 4) {
    bool last = i + 4 == len;
    /* Padding is allowed only in the last quantum: "xx==" or "xxx=". */
    size_t pad = 0;
    if (last && in[i + 3] == '=')
      pad = in[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (size_t k = 0; k < 4 - pad; k++) {
      int x = b64_value(in[i + k]);
      if (x < 0)
        return -1;
      v = v << 6 | (uint32_t)x;
    }
    v <<= 6 * pad;
    /* Bits the padding hides must be zero, so each byte string has a
     * single spelling. */
    if ((pad == 1 && (v & 0xff) != 0) || (pad == 2 && (v & 0xffff) != 0))
      return -1;
    out[o++] = (uint8_t)(v >> 16);
    if (pad < 2)
      out[o++] = (uint8_t)(v >> 8);
    if (pad < 1)
      out[o++] = (uint8_t)v;
  }
  return (ptrdiff_t)o;
}
