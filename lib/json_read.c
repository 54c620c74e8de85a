/* SPDX-License-Identifier: MIT */
/* json_read.c - the one JSON reader: control payloads (msg_parse.c) and
 * the control channel's requests, read in place. One pass checks the whole
 * text and notes where the members a reader knows are; the reader then
 * decodes only those. No tree, and one allocation per string kept.
 *
 * The grammar is RFC 8259's, strict, as docs/protocol.md section 2 writes
 * it down: one object at the top, nested at most NEST_MAX deep; whitespace
 * is space, tab, LF and CR only; no BOM; strings valid UTF-8 without
 * control characters, \u escapes of 4 hex digits, never \u0000,
 * surrogates only in pairs; numbers -?(0|[1-9]D*)(.D+)?([eE][+-]?D+)?, and
 * where the protocol means an integer, an integer as written: no fraction,
 * no exponent (sb_jr_int). Names given twice: see msg_parse.c (the reader
 * decides). */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* The deepest nesting read: the top object is level 1. */
#define NEST_MAX 1000

/* Bytes a key is decoded into to be compared with the names a reader knows
 * (the longest is "min_version"). */
#define KEY_MAX 16

/* A failure at offset at. The byte there decides the wording: a NUL byte
 * or invalid UTF-8 is said as such wherever the grammar meets it. */
static int bad_at(const sb_jr *j, size_t at, const char *what) {
  if (at < j->len && j->p[at] == 0)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: NUL byte at offset %zu",
                       at);
  if (at < j->len && j->p[at] >= 0x80 && sb__utf8_seq(j->p + at, j->len - at) == 0)
    return sb_diag_set(j->diag, SB_EBADMSG,
                       "control message: invalid UTF-8 at offset %zu", at);
  return sb_diag_set(j->diag, SB_EBADMSG, "control message: %s at offset %zu", what, at);
}

static int bad_json(const sb_jr *j, size_t at) {
  return bad_at(j, at, "invalid JSON");
}

static bool is_json_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const sb_jr *j, size_t at) {
  while (at < j->len && is_json_space(j->p[at]))
    at++;
  return at;
}

/* ---- strings ------------------------------------------------------------- */

/* The value of 4 hex digits at p[at..], or -1. */
static long hex4(const sb_jr *j, size_t at) {
  long v = 0;
  if (at > j->len || j->len - at < 4)
    return -1;
  for (size_t k = 0; k < 4; k++) {
    int d = sb__hex_value(j->p[at + k]);
    if (d < 0)
      return -1;
    v = v << 4 | d;
  }
  return v;
}

/* A \u escape at p[at] (the backslash): its code point (a surrogate pair
 * is two escapes), and in *len the bytes of the escape. 0 after a diag. */
static long u_escape(const sb_jr *j, size_t at, size_t *len, int *err) {
  long cp = hex4(j, at + 2);
  *len = 6;
  if (cp < 0)
    *err =
        sb_diag_set(j->diag, SB_EBADMSG,
                    "control message: \\u escape without 4 hex digits at offset %zu", at);
  else if (cp == 0)
    *err = sb_diag_set(j->diag, SB_EBADMSG,
                       "control message: \\u0000 escape at offset %zu", at);
  else if (cp >= 0xdc00 && cp <= 0xdfff)
    *err = bad_at(j, at, "lone low surrogate");
  if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
    return 0;
  if (cp < 0xd800 || cp > 0xdbff)
    return cp;
  /* A high surrogate: the low one must follow, as another \u escape. */
  long lo = -1;
  if (at + 7 < j->len && j->p[at + 6] == '\\' && j->p[at + 7] == 'u')
    lo = hex4(j, at + 8);
  if (lo < 0xdc00 || lo > 0xdfff) {
    *err = bad_at(j, at, "unpaired surrogate");
    return 0;
  }
  *len = 12;
  return 0x10000 + ((cp & 0x3ff) << 10 | (lo & 0x3ff));
}

/* Writes code point cp as UTF-8 into u; returns its length. */
static size_t utf8_put(long cp, uint8_t u[4]) {
  if (cp < 0x80) {
    u[0] = (uint8_t)cp;
    return 1;
  }
  size_t n = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  static const uint8_t lead[] = {0, 0, 0xc0, 0xe0, 0xf0};
  for (size_t k = n - 1; k > 0; k--) {
    u[k] = (uint8_t)(0x80 | (cp & 0x3f));
    cp >>= 6;
  }
  u[0] = (uint8_t)(lead[n] | cp);
  return n;
}

/* One escape at p[*at] (the backslash): its bytes into u, *at past it.
 * Returns the byte count, or a negative error. */
static int escape(const sb_jr *j, size_t *at, uint8_t u[4]) {
  static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
  if (*at + 1 >= j->len)
    return bad_json(j, *at);
  uint8_t c = j->p[*at + 1];
  const char *k = c != 0 ? strchr(from, c) : NULL;
  if (k != NULL) {
    u[0] = (uint8_t)to[k - from];
    *at += 2;
    return 1;
  }
  if (c != 'u')
    return bad_at(j, *at + 1, "invalid escape");
  size_t len;
  int err = 0;
  long cp = u_escape(j, *at, &len, &err);
  if (err < 0)
    return err;
  *at += len;
  return (int)utf8_put(cp, u);
}

/* Copies n bytes to out[*o..] while they fit in cap; counts them all. */
static void emit(char *out, size_t cap, size_t *o, const uint8_t *s, size_t n) {
  if (*o < cap)
    memcpy(out + *o, s, n < cap - *o ? n : cap - *o);
  *o += n;
}

/* Checks the string whose opening quote is at *at and moves *at past its
 * closing quote. Decodes it into out, of which the first cap bytes are
 * written (out may be NULL with cap 0); *n is the decoded length. */
static int string_scan(const sb_jr *j, size_t *at, char *out, size_t cap, size_t *n) {
  size_t i = *at + 1, o = 0;
  for (;;) {
    if (i >= j->len)
      return bad_at(j, *at, "unterminated string");
    /* Most of any string is plain: one scan, one copy. */
    size_t run = i;
    for (uint64_t x;
         j->len - run >= 8 && (memcpy(&x, j->p + run, 8), sb__json_plain8(x));)
      run += 8;
    while (run < j->len && sb__json_plain(j->p[run]))
      run++;
    if (run > i) {
      emit(out, cap, &o, j->p + i, run - i);
      i = run;
      continue;
    }
    uint8_t c = j->p[i], u[4];
    size_t k = 1;
    if (c == '"')
      break;
    if (c == '\\') {
      int r = escape(j, &i, u);
      if (r < 0)
        return r;
      emit(out, cap, &o, u, (size_t)r);
      continue;
    }
    if (c < 0x20 && c != 0)
      return sb_diag_set(j->diag, SB_EBADMSG,
                         "control message: control character 0x%02x in a string at "
                         "offset %zu",
                         c, i);
    if (c >= 0x80 && (k = sb__utf8_seq(j->p + i, j->len - i)) == 0)
      return bad_json(j, i); /* worded as invalid UTF-8 */
    if (c == 0)
      return bad_json(j, i); /* worded as a NUL byte */
    emit(out, cap, &o, j->p + i, k);
    i += k;
  }
  *at = i + 1;
  *n = o;
  return 0;
}

/* Past the closing quote of the (checked) string at at, or j->len: the
 * first quote no backslash escapes, found at memchr's speed, decoding
 * nothing. Of an unchecked string it is only a bound, and string_scan then
 * says what is wrong. */
static size_t string_end(const sb_jr *j, size_t at) {
  for (size_t i = at + 1; i < j->len;) {
    const uint8_t *q = memchr(j->p + i, '"', j->len - i);
    if (q == NULL)
      break;
    size_t k = (size_t)(q - j->p), b = k;
    while (b > at + 1 && j->p[b - 1] == '\\')
      b--;
    if ((k - b) % 2 == 0)
      return k + 1;
    i = k + 1;
  }
  return j->len;
}

int sb_jr_string(const sb_jr *j, size_t at, char **out) {
  /* Decoding never lengthens a string (an escape is longer than what it
   * stands for), so its span bounds the buffer: one pass, not a pass to
   * measure and another to copy. */
  size_t end = string_end(j, at), cap = end > at + 1 ? end - at - 2 : 0, n;
  *out = NULL;
  char *s = malloc(cap + 1);
  if (s == NULL)
    return SB_ENOMEM;
  /* Without an escape a checked string is its bytes (most of argv and
   * env): sb_jr_document has checked them, so they are copied as they
   * are. */
  if (end > at + 1 && j->p[end - 1] == '"' && memchr(j->p + at + 1, '\\', cap) == NULL) {
    memcpy(s, j->p + at + 1, cap);
    s[cap] = '\0';
    *out = s;
    return 0;
  }
  end = at;
  int r = string_scan(j, &end, s, cap, &n);
  if (r < 0 || n > cap) {
    free(s);
    return r < 0 ? r : bad_at(j, at, "unterminated string");
  }
  s[n] = '\0';
  *out = s;
  return 0;
}

/* ---- numbers ------------------------------------------------------------- */

static size_t digits(const sb_jr *j, size_t i) {
  while (i < j->len && j->p[i] >= '0' && j->p[i] <= '9')
    i++;
  return i;
}

/* The end of the number at at, -?(0|[1-9]D*)(.D+)?([eE][+-]?D+)?, or 0 when
 * there is none; *integer says whether it has neither fraction nor
 * exponent. A number must not run on into a digit or letter ("01"). */
static size_t number_end(const sb_jr *j, size_t at, bool *integer) {
  size_t i = at + (j->p[at] == '-'), d;
  if (i >= j->len || (d = digits(j, i)) == i || (j->p[i] == '0' && d > i + 1))
    return 0;
  i = d;
  *integer = true;
  if (i < j->len && j->p[i] == '.') {
    if ((d = digits(j, i + 1)) == i + 1)
      return 0;
    i = d;
    *integer = false;
  }
  if (i < j->len && (j->p[i] | 0x20) == 'e') {
    i++;
    if (i < j->len && (j->p[i] == '+' || j->p[i] == '-'))
      i++;
    if ((d = digits(j, i)) == i)
      return 0;
    i = d;
    *integer = false;
  }
  return i;
}

int sb_jr_int(const sb_jr *j, size_t at, int64_t lo, int64_t hi, int64_t *out) {
  bool integer, neg = at < j->len && j->p[at] == '-';
  size_t end = number_end(j, at, &integer);
  *out = 0;
  if (end == 0)
    return bad_json(j, at);
  if (!integer)
    return SB_JR_INT_FRACTION;
  /* Saturated past any bound: lo and hi lie within +-(2^32 - 1). */
  int64_t v = 0;
  for (size_t i = at + neg; i < end; i++)
    if (v < ((int64_t)1 << 40))
      v = v * 10 + (j->p[i] - '0');
  v = neg ? -v : v;
  if (v < lo || v > hi)
    return SB_JR_INT_RANGE;
  *out = v;
  return 0;
}

/* ---- values and containers ----------------------------------------------- */

sb_jr_kind sb_jr_kind_at(const sb_jr *j, size_t at) {
  static const char first[] = "{[\"0tfn"; /* in sb_jr_kind's order */
  uint8_t c = at < j->len ? j->p[at] : 0;
  if (c == '-' || (c >= '0' && c <= '9'))
    c = '0';
  const char *k = c != 0 ? strchr(first, c) : NULL;
  return k != NULL ? (sb_jr_kind)(SB_JR_OBJECT + (k - first)) : SB_JR_BAD;
}

static int value(const sb_jr *j, size_t *at, unsigned depth);

static int literal(const sb_jr *j, size_t *at, const char *word) {
  size_t n = strlen(word);
  if (j->len - *at < n || memcmp(j->p + *at, word, n) != 0)
    return bad_json(j, *at);
  *at += n;
  return 0;
}

/* After a member or an element: 1 at a comma (*at moved past it and the
 * whitespace after it), 0 at the closing bracket (*at moved past it). */
static int next_or_close(const sb_jr *j, size_t *at, uint8_t close) {
  size_t i = skip_ws(j, *at);
  if (i < j->len && j->p[i] == ',') {
    *at = skip_ws(j, i + 1);
    return 1;
  }
  if (i < j->len && j->p[i] == close) {
    *at = i + 1;
    return 0;
  }
  return bad_json(j, i);
}

/* Counts a member named key[0..n) (n > KEY_MAX: no name fits) whose value
 * is at offset at. */
static void note(sb_jr_index *ix, const char *key, size_t n, size_t at) {
  for (size_t k = 0; ix != NULL && n <= KEY_MAX && k < ix->n; k++) {
    if (strncmp(ix->names[k], key, n) != 0 || ix->names[k][n] != '\0')
      continue;
    if (ix->count[k]++ == 0)
      ix->at[k] = at;
    return;
  }
}

static int member(const sb_jr *j, size_t *at, unsigned depth, sb_jr_index *ix) {
  char key[KEY_MAX];
  size_t i = *at, n;
  if (i >= j->len || j->p[i] != '"')
    return bad_json(j, i);
  int r = string_scan(j, &i, key, sizeof key, &n);
  if (r < 0)
    return r;
  i = skip_ws(j, i);
  if (i >= j->len || j->p[i] != ':')
    return bad_json(j, i);
  i = skip_ws(j, i + 1);
  note(ix, key, n, i);
  *at = i;
  return value(j, at, depth + 1);
}

/* The object or array at *at (close: its closing bracket); ix indexes an
 * object's members. depth: the containers around this one. */
static int container(const sb_jr *j, size_t *at, unsigned depth, uint8_t close,
                     sb_jr_index *ix) {
  if (depth >= NEST_MAX)
    return sb_diag_set(j->diag, SB_EBADMSG,
                       "control message: nested deeper than %d at offset %zu", NEST_MAX,
                       *at);
  size_t i = skip_ws(j, *at + 1);
  int more = i >= j->len || j->p[i] != close;
  if (!more)
    i++;
  while (more > 0) {
    int r = close == '}' ? member(j, &i, depth, ix) : value(j, &i, depth + 1);
    if (r < 0)
      return r;
    more = next_or_close(j, &i, close);
  }
  *at = i;
  return more;
}

static int value(const sb_jr *j, size_t *at, unsigned depth) {
  static const char *const words[] = {
      [SB_JR_TRUE] = "true", [SB_JR_FALSE] = "false", [SB_JR_NULL] = "null"};
  size_t end, n;
  bool integer;
  sb_jr_kind k = sb_jr_kind_at(j, *at);
  switch (k) {
  case SB_JR_OBJECT:
  case SB_JR_ARRAY:
    return container(j, at, depth, k == SB_JR_OBJECT ? '}' : ']', NULL);
  case SB_JR_STRING:
    return string_scan(j, at, NULL, 0, &n);
  case SB_JR_NUMBER:
    if ((end = number_end(j, *at, &integer)) == 0)
      return bad_json(j, *at);
    *at = end;
    return 0;
  case SB_JR_TRUE:
  case SB_JR_FALSE:
  case SB_JR_NULL:
    return literal(j, at, words[k]);
  default:
    return bad_json(j, *at);
  }
}

static void index_clear(sb_jr_index *ix) {
  memset(ix->count, 0, sizeof ix->count);
}

int sb_jr_object_index(const sb_jr *j, size_t at, sb_jr_index *ix) {
  index_clear(ix);
  return container(j, &at, 0, '}', ix);
}

int sb_jr_document(const sb_jr *j, sb_jr_index *top) {
  index_clear(top);
  if (j->len == 0)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: empty payload");
  size_t i = skip_ws(j, 0);
  bool is_object = i < j->len && j->p[i] == '{';
  int r = is_object ? container(j, &i, 0, '}', top) : value(j, &i, 0);
  if (r < 0)
    return r;
  i = skip_ws(j, i);
  if (i < j->len)
    return bad_at(j, i, "data after the JSON value");
  if (!is_object)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: not a JSON object");
  return 0;
}

int sb_jr_array_next(const sb_jr *j, size_t *at, size_t *elem) {
  size_t i = *at;
  if (i >= j->len || j->p[i] == ']')
    return 0;
  i = skip_ws(j, i + 1); /* past '[' or ',' */
  if (i < j->len && j->p[i] == ']')
    return 0;
  *elem = i;
  /* A string (the elements of argv and env) is skipped, not checked
   * again: sb_jr_document did, and sb_jr_string will decode it. */
  int r = 0;
  if (sb_jr_kind_at(j, i) == SB_JR_STRING)
    i = string_end(j, i);
  else
    r = value(j, &i, 0);
  if (r < 0)
    return r;
  *at = skip_ws(j, i);
  return 1;
}

int sb_jr_skip(const sb_jr *j, size_t *at) {
  return value(j, at, 0);
}
