/* SPDX-License-Identifier: MIT */
/* json_write.c - the one JSON writer: control messages (msg_encode.c),
 * events, records and the control channel's replies. It writes compact
 * JSON straight into one buffer, bounded: a text that would pass w->max
 * bytes fails with SB_EMSGSIZE instead of growing without end.
 *
 * Commas are the writer's: a value or a key written right after another
 * value gets one, so callers write keys and values in order and nothing
 * else. Strings are escaped as docs/protocol.md section 2 says senders
 * write them (the short escapes, other control characters as \u00xx,
 * everything else as it is): the bytes the protocol has always sent. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

int sb_jw_init(sb_jw *w, size_t start, size_t cap, size_t max) {
  *w = (sb_jw){NULL, start, start + cap, start + max, start, 0};
  if (cap > max)
    w->cap = w->max;
  w->buf = malloc(w->cap);
  if (w->buf == NULL)
    w->err = SB_ENOMEM;
  return w->err;
}

/* Room for n more bytes: grows the buffer (at least doubling) up to max. */
static bool room(sb_jw *w, size_t n) {
  if (w->err < 0)
    return false;
  if (n <= w->cap - w->len)
    return true;
  if (n > w->max - w->len) {
    w->err = SB_EMSGSIZE;
    return false;
  }
  size_t cap = w->cap > (w->max - w->len) / 2 ? w->max : 2 * w->cap;
  if (cap < w->len + n)
    cap = w->len + n;
  uint8_t *b = realloc(w->buf, cap);
  if (b == NULL) {
    w->err = SB_ENOMEM;
    return false;
  }
  w->buf = b;
  w->cap = cap;
  return true;
}

void sb_jw_raw(sb_jw *w, const void *s, size_t n) {
  if (room(w, n)) {
    memcpy(w->buf + w->len, s, n);
    w->len += n;
  }
}

/* A comma, unless this value opens a container or follows its key. */
static void sep(sb_jw *w) {
  if (w->err != 0 || w->len <= w->start)
    return;
  uint8_t last = w->buf[w->len - 1];
  if (last != '{' && last != '[' && last != ':')
    sb_jw_raw(w, ",", 1);
}

void sb_jw_open(sb_jw *w, char bracket) {
  sep(w);
  sb_jw_raw(w, &bracket, 1);
}

void sb_jw_close(sb_jw *w, char bracket) {
  sb_jw_raw(w, &bracket, 1);
}

void sb_jw_key(sb_jw *w, const char *name) {
  sep(w);
  sb_jw_raw(w, "\"", 1);
  sb_jw_raw(w, name, strlen(name));
  sb_jw_raw(w, "\":", 2);
}

/* One character escaped: the short escapes, else \u00xx. */
static void put_escape(sb_jw *w, uint8_t c) {
  static const char hex[] = "0123456789abcdef";
  static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
  const char *k = c != 0 ? strchr(from, c) : NULL;
  char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
  if (k != NULL)
    e[1] = to[k - from];
  sb_jw_raw(w, e, k != NULL ? 2 : 6);
}

/* s[0..n) as a string, when it is UTF-8; false (nothing written) else. */
static bool sb_jw_str_n(sb_jw *w, const char *s, size_t n) {
  size_t before = w->len, run = 0, i = 0;
  sep(w);
  sb_jw_raw(w, "\"", 1);
  /* One walk checks the UTF-8 and escapes: argv and env are most of a
   * hello, and mostly ASCII, 8 bytes a step. A string with nothing to
   * escape (nearly all) is then written in one copy with its quotes. */
  while (i < n) {
    uint64_t x;
    if (n - i >= 8 && (memcpy(&x, s + i, 8), sb__json_plain8(x))) {
      i += 8;
      continue;
    }
    uint8_t c = (uint8_t)s[i];
    size_t k = 1;
    if (c >= 0x80 && (k = sb__utf8_seq((const uint8_t *)s + i, n - i)) == 0) {
      if (w->err == 0)
        w->len = before;
      return false;
    }
    if (c < 0x80 && !sb__json_plain(c)) {
      sb_jw_raw(w, s + run, i - run);
      put_escape(w, c);
      run = i + 1;
    }
    i += k;
  }
  if (room(w, n - run + 1)) {
    memcpy(w->buf + w->len, s + run, n - run);
    w->len += n - run;
    w->buf[w->len++] = '"';
  }
  return true;
}

void sb_jw_str(sb_jw *w, const char *s) {
  if (!sb_jw_str_n(w, s != NULL ? s : "", s != NULL ? strlen(s) : 0) && w->err == 0)
    w->err = SB_EINVAL;
}

/* s[0..n) as {"base64": "..."}: not UTF-8, or holds a NUL. */
static void bytes_as_base64(sb_jw *w, const void *s, size_t n) {
  size_t b = sb__b64_encoded_len(n);
  sb_jw_open(w, '{');
  sb_jw_key(w, "base64");
  sb_jw_raw(w, "\"", 1);
  /* Encoded in place; its NUL lands where the closing quote goes next. */
  if (room(w, b + 1)) {
    sb__b64_encode(s, n, (char *)w->buf + w->len);
    w->len += b;
  }
  sb_jw_raw(w, "\"}", 2);
}

void sb_jw_bytes(sb_jw *w, const char *s) {
  size_t n;
  if (s == NULL)
    sb_jw_null(w);
  else if (!sb_jw_str_n(w, s, n = strlen(s))) /* a C string holds no NUL */
    bytes_as_base64(w, s, n);
}

void sb_jw_bytes_n(sb_jw *w, const void *s, size_t n) {
  if (memchr(s, '\0', n) != NULL || !sb_jw_str_n(w, s, n))
    bytes_as_base64(w, s, n);
}

void sb_jw_int(sb_jw *w, int64_t v) {
  char d[24], *p = d + sizeof d;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do
    *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0)
    *--p = '-';
  sep(w);
  sb_jw_raw(w, p, (size_t)(d + sizeof d - p));
}

void sb_jw_fixed(sb_jw *w, uint64_t v, unsigned scale, unsigned digits) {
  uint64_t unit = 1;
  char d[20] = {'.'};
  for (unsigned i = 0; i < scale; i++)
    unit *= 10;
  uint64_t f = v % unit;
  for (unsigned i = scale; i > digits; i--)
    f /= 10;
  for (unsigned i = digits; i > 0; i--, f /= 10)
    d[i] = (char)('0' + f % 10);
  sb_jw_int(w, (int64_t)(v / unit));
  sb_jw_raw(w, d, digits + 1);
}

void sb_jw_bool(sb_jw *w, bool v) {
  sep(w);
  sb_jw_raw(w, v ? "true" : "false", v ? 4 : 5);
}

void sb_jw_null(sb_jw *w) {
  sep(w);
  sb_jw_raw(w, "null", 4);
}

void sb_jw_json(sb_jw *w, const uint8_t *p, size_t n) {
  bool in_str = false, esc = false;
  size_t run = 0;
  sep(w);
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (in_str) {
      in_str = esc || c != '"';
      esc = !esc && c == '\\';
    } else if (c == '"') {
      in_str = true;
    } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      sb_jw_raw(w, p + run, i - run);
      run = i + 1;
    }
  }
  sb_jw_raw(w, p + run, n - run);
}

int sb_jw_end(sb_jw *w, char **text, size_t *len) {
  sb_jw_raw(w, "", 1);
  *text = NULL;
  *len = 0;
  if (w->err < 0) {
    free(w->buf);
    w->buf = NULL;
    return w->err;
  }
  *text = (char *)w->buf;
  *len = w->len - 1;
  w->buf = NULL;
  return 0;
}

/* ---- members: "name": value, in one call ---------------------------------- */

void sb_jw_add_int(sb_jw *w, const char *name, int64_t v) {
  sb_jw_key(w, name);
  sb_jw_int(w, v);
}

void sb_jw_add_bool(sb_jw *w, const char *name, bool v) {
  sb_jw_key(w, name);
  sb_jw_bool(w, v);
}

void sb_jw_add_str(sb_jw *w, const char *name, const char *s) {
  sb_jw_key(w, name);
  sb_jw_str(w, s);
}

void sb_jw_add_bytes(sb_jw *w, const char *name, const char *s) {
  sb_jw_key(w, name);
  sb_jw_bytes(w, s);
}

void sb_jw_add_bytes_v(sb_jw *w, const char *name, char *const *v, size_t n) {
  sb_jw_key(w, name);
  sb_jw_open(w, '[');
  for (size_t i = 0; i < n; i++)
    sb_jw_bytes(w, v[i]);
  sb_jw_close(w, ']');
}
