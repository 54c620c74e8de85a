/* SPDX-License-Identifier: MIT */
/* msg_lite_encode.c - sb__msg_encode_lite: the messages a stub sends,
 * written straight into their frame, without cJSON. The bytes are those
 * sb_msg_encode writes (members in the same order, strings escaped as cJSON
 * escapes them), and the same checks refuse the same messages.
 *
 * One pass: the buffer is allocated once, at a size no text of the message
 * can exceed (or max_bytes, past which it is refused anyway), and each
 * string is checked for UTF-8 and escaped in the same walk. So there is no
 * copy, and no stray copy of the hello's token left in freed memory by a
 * buffer that grew. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* Where the text goes: what does not fit in cap is counted, not written. */
typedef struct jw {
  uint8_t *buf;
  size_t len, cap;
} jw;

static void put(jw *w, const void *s, size_t n) {
  if (w->len <= w->cap && n <= w->cap - w->len)
    memcpy(w->buf + w->len, s, n);
  w->len += n;
}

static void put_lit(jw *w, const char *s) {
  put(w, s, strlen(s));
}

/* One character as cJSON escapes it: the short escapes, else \u00xx. */
static void put_escape(jw *w, uint8_t c) {
  static const char hex[] = "0123456789abcdef";
  static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
  const char *k = c != 0 ? strchr(from, c) : NULL;
  char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
  if (k != NULL)
    e[1] = to[k - from];
  put(w, e, k != NULL ? 2 : 6);
}

/* s[0..n) as a JSON string, when it is UTF-8 (else false, and nothing is
 * written): bytes from 0x20 up as they are, except '"' and '\\'. */
static bool put_str_n(jw *w, const char *s, size_t n) {
  size_t start = w->len, run = 0, i = 0;
  put(w, "\"", 1);
  while (i < n) {
    uint64_t x;
    if (n - i >= 8 && (memcpy(&x, s + i, 8), sb__json_plain8(x))) {
      i += 8;
      continue;
    }
    uint8_t c = (uint8_t)s[i];
    size_t k = 1;
    if (c >= 0x80 && (k = sb__utf8_seq((const uint8_t *)s + i, n - i)) == 0) {
      w->len = start;
      return false;
    }
    if (c < 0x80 && !sb__json_plain(c)) {
      put(w, s + run, i - run);
      put_escape(w, c);
      run = i + 1;
    }
    i += k;
  }
  put(w, s + run, n - run);
  put(w, "\"", 1);
  return true;
}

/* A string for humans or a name: always UTF-8 here. */
static void put_str(jw *w, const char *s) {
  put_str_n(w, s, strlen(s));
}

/* A byte string: a string when UTF-8, else {"base64": ...}; NULL is null. */
static void put_bytes(jw *w, const char *s) {
  if (s == NULL) {
    put_lit(w, "null");
    return;
  }
  size_t n = strlen(s), b = sb__b64_encoded_len(n);
  if (put_str_n(w, s, n))
    return;
  put_lit(w, "{\"base64\":\"");
  /* Encoded in place; its NUL lands where the closing quote goes next. */
  if (w->len <= w->cap && b + 1 <= w->cap - w->len)
    sb__b64_encode((const uint8_t *)s, n, (char *)w->buf + w->len);
  w->len += b;
  put_lit(w, "\"}");
}

static void put_int(jw *w, int64_t v) {
  char d[24], *p = d + sizeof d;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do
    *--p = (char)('0' + u % 10);
  while ((u /= 10) != 0);
  if (v < 0)
    *--p = '-';
  put(w, p, (size_t)(d + sizeof d - p));
}

/* ,"name": (every member but "type", which opens the object). */
static void put_key(jw *w, const char *name) {
  put(w, ",\"", 2);
  put_lit(w, name);
  put(w, "\":", 2);
}

static void put_bool(jw *w, const char *name, bool v) {
  put_key(w, name);
  put_lit(w, v ? "true" : "false");
}

/* A text member for humans, which must be UTF-8 (NULL: ""). */
static int put_text(jw *w, const char *name, const char *s) {
  put_key(w, name);
  return put_str_n(w, s != NULL ? s : "", s != NULL ? strlen(s) : 0) ? 0 : SB_EINVAL;
}

static bool is_token_var(const char *s) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  return strncmp(s, prefix, sizeof prefix - 1) == 0;
}

/* An array of byte strings. env: every entry holds '=', and
 * SOCKETBRIDGE_TOKEN=... is left out, whatever the caller passed (hello). */
static int put_strv(jw *w, const char *name, const sb_strv *sv, bool env) {
  bool first = true;
  if (sv->n > 0 && sv->v == NULL)
    return SB_EINVAL;
  for (size_t i = 0; i < sv->n; i++)
    if (sv->v[i] == NULL || (env && strchr(sv->v[i], '=') == NULL))
      return SB_EINVAL;
  put_key(w, name);
  put(w, "[", 1);
  for (size_t i = 0; i < sv->n; i++) {
    if (env && is_token_var(sv->v[i]))
      continue;
    if (!first)
      put(w, ",", 1);
    put_bytes(w, sv->v[i]);
    first = false;
  }
  put(w, "]", 1);
  return 0;
}

/* "rows":R,"cols":C as members (after "type"), or opening an object. */
static void put_winsize(jw *w, const sb_winsize *ws, bool opens) {
  if (opens)
    put_lit(w, "{\"rows\":");
  else
    put_key(w, "rows");
  put_int(w, ws->rows);
  put_key(w, "cols");
  put_int(w, ws->cols);
}

static int put_hello(jw *w, const sb_hello *h) {
  int min = h->min_version != 0 ? h->min_version : h->version;
  int r;

  if (h->version < 1 || h->version > 65535 || min < 1 || min > h->version ||
      !sb_token_valid(h->token) || h->pid < 1 || h->pid > INT32_MAX || h->ppid < 0 ||
      h->ppid > INT32_MAX || (h->tty & ~(SB_TTY_STDIN | SB_TTY_STDOUT | SB_TTY_STDERR)))
    return SB_EINVAL;
  /* The token first, right after the type: SB_HELLO_PREFIX, which lets a
   * supervisor authenticate a large hello before it buffers the rest
   * (docs/protocol.md section 1). */
  put_key(w, "token");
  put_str(w, h->token);
  put_key(w, "version");
  put_int(w, h->version);
  put_key(w, "min_version");
  put_int(w, min);
  put_key(w, "pid");
  put_int(w, h->pid);
  put_key(w, "ppid");
  put_int(w, h->ppid);
  if ((r = put_strv(w, "argv", &h->argv, false)) < 0 ||
      (r = put_strv(w, "env", &h->env, true)) < 0)
    return r;
  put_key(w, "cwd");
  put_bytes(w, h->cwd);
  put_key(w, "exe");
  put_bytes(w, h->exe);
  put_key(w, "tty");
  put_lit(w, "{\"stdin\":");
  put_lit(w, h->tty & SB_TTY_STDIN ? "true" : "false");
  put_bool(w, "stdout", h->tty & SB_TTY_STDOUT);
  put_bool(w, "stderr", h->tty & SB_TTY_STDERR);
  put(w, "}", 1);
  if (h->has_winsize) {
    put_key(w, "winsize");
    put_winsize(w, &h->winsize, true);
    put(w, "}", 1);
  }
  return 0;
}

static int put_signal(jw *w, int signum) {
  const char *name = sb_signal_name(signum);
  if (name == NULL)
    return SB_EINVAL;
  put_key(w, "signal");
  put_str(w, name);
  return 0;
}

/* exit and exited: the signal when there is one, else the code. */
static int put_status(jw *w, const sb_status *st) {
  if (st->signal != 0)
    return put_signal(w, st->signal);
  if (st->code < 0 || st->code > 255)
    return SB_EINVAL;
  put_key(w, "code");
  put_int(w, st->code);
  return 0;
}

static int put_stream_error(jw *w, int stream, int err, const char *message) {
  if ((stream != 1 && stream != 2) || err >= 0 || err < -4095)
    return SB_EINVAL;
  put_key(w, "stream");
  put_lit(w, stream == 1 ? "\"stdout\"" : "\"stderr\"");
  put_key(w, "errno");
  put_int(w, -err);
  return put_text(w, "message", message);
}

static int put_body(jw *w, const sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    return put_hello(w, &m->u.hello);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return put_status(w, &m->u.exit);
  case SB_MSG_SIGNAL:
    return put_signal(w, m->u.signal.signal);
  case SB_MSG_WINSIZE:
    put_winsize(w, &m->u.winsize, false);
    return 0;
  case SB_MSG_STREAM_ERROR:
    return put_stream_error(w, m->u.stream_error.stream, m->u.stream_error.err,
                            m->u.stream_error.message);
  default:
    return SB_EINVAL; /* the supervisor's messages: sb_msg_encode */
  }
}

/* At least the length of any text of a string of n bytes: escaped, every
 * byte may take 6; as base64, 4/3 of them and 13 more; plus a comma. */
static size_t str_bound(size_t n) {
  return n > SIZE_MAX / 8 ? SIZE_MAX / 2 : 6 * n + 16;
}

static size_t strv_bound(const sb_strv *sv) {
  size_t b = 0;
  for (size_t i = 0; sv->v != NULL && i < sv->n; i++)
    b += str_bound(sv->v[i] != NULL ? strlen(sv->v[i]) : 0);
  return b;
}

/* No text of m is longer: 512 for the names, numbers and punctuation. */
static size_t bound(const sb_msg *m) {
  size_t b = 512;
  if (m->type == SB_MSG_HELLO) {
    const sb_hello *h = &m->u.hello;
    b += strv_bound(&h->argv) + strv_bound(&h->env);
    b += str_bound(h->cwd != NULL ? strlen(h->cwd) : 0);
    b += str_bound(h->exe != NULL ? strlen(h->exe) : 0);
  } else if (m->type == SB_MSG_STREAM_ERROR && m->u.stream_error.message != NULL) {
    b += str_bound(strlen(m->u.stream_error.message));
  }
  return b;
}

int sb__msg_encode_lite(const sb_msg *m, uint32_t max_bytes, uint8_t **frame,
                        size_t *frame_len) {
  const char *type = sb_msg_type_name(m->type);

  *frame = NULL;
  *frame_len = 0;
  if (max_bytes == 0)
    max_bytes = SB_DEFAULT_MAX_BYTES;
  if (type == NULL)
    return SB_EINVAL;
  /* A frame longer than the header, max_bytes - 1 of JSON and the NUL of
   * a base64 at the end is refused: no need for room past that. */
  size_t cap = bound(m), over = (size_t)max_bytes + SB_FRAME_HEADER;
  jw w = {NULL, SB_FRAME_HEADER, cap < over ? cap : over};
  if ((w.buf = malloc(w.cap)) == NULL)
    return SB_ENOMEM;
  put_lit(&w, "{\"type\":");
  put_str(&w, type);
  int r = put_body(&w, m);
  put(&w, "}", 1);
  if (r == 0 && w.len - SB_FRAME_HEADER + 1 > max_bytes)
    r = SB_EMSGSIZE;
  else if (r == 0 && w.len > w.cap)
    r = SB_EINVAL; /* cannot be: the bound is wrong */
  if (r < 0) {
    free(w.buf);
    return r;
  }
  sb_frame_header(w.buf, SB_KIND_CONTROL, (uint32_t)(w.len - SB_FRAME_HEADER));
  *frame = w.buf;
  *frame_len = w.len;
  return 0;
}
