/* SPDX-License-Identifier: MIT */
/* json_lite.c - control payloads read in place, without cJSON, for the stub
 * (msg_lite_parse.c reads the members). One pass checks the whole text and
 * notes where the members a reader knows are; the reader then decodes only
 * those. No tree, and one allocation per string kept.
 *
 * The grammar is exactly the one sb__msg_parse_cjson (cJSON 1.7 after the payload
 * checks of utf8.c) accepts, so that the stub takes what it took before and
 * a differential fuzzer (tests/fuzz/fuzz_lite.c) can hold both to it:
 * - JSON (RFC 8259) with one object at the top, nested at most 1000 deep
 *   (cJSON's CJSON_NESTING_LIMIT), strings valid UTF-8 without control
 *   characters, no NUL byte anywhere, \u escapes of 4 hex digits, never
 *   \u0000, surrogates only in pairs;
 * - where cJSON is lax, lax the same way: a UTF-8 BOM before the object is
 *   skipped; between tokens every byte 0x01..0x20 is whitespace (after the
 *   object only space, tab, CR and LF: msg_parse.c's rule); a number is the
 *   run of [0-9+-.eE] it starts, which strtod must read whole (so 01, 1.
 *   and -.5 are numbers), and its value is strtod's (read exactly, without
 *   floating point: sb__jl_int).
 * Names given twice: see msg_lite_parse.c (the reader decides, as
 * msg_parse.c does). */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* cJSON's CJSON_NESTING_LIMIT: the top object is level 1. */
#define NEST_MAX 1000

/* Bytes a key is decoded into to be compared with the names a reader knows
 * (the longest is "min_version"). */
#define KEY_MAX 16

/* A failure at offset at. The byte there decides the wording: the payload
 * checks (NUL, UTF-8) come before the grammar, as in sb__msg_parse_cjson. */
static int bad_at(const sb__jl *j, size_t at, const char *what) {
  if (at < j->len && j->p[at] == 0)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: NUL byte at offset %zu",
                       at);
  if (at < j->len && j->p[at] >= 0x80 && sb__utf8_seq(j->p + at, j->len - at) == 0)
    return sb_diag_set(j->diag, SB_EBADMSG,
                       "control message: invalid UTF-8 at offset %zu", at);
  return sb_diag_set(j->diag, SB_EBADMSG, "control message: %s at offset %zu", what, at);
}

static int bad_json(const sb__jl *j, size_t at) {
  return bad_at(j, at, "invalid JSON");
}

/* cJSON's whitespace: any byte 1..32 (NUL is refused by the payload check). */
static size_t skip_ws(const sb__jl *j, size_t at) {
  while (at < j->len && j->p[at] >= 1 && j->p[at] <= 0x20)
    at++;
  return at;
}

/* ---- strings ------------------------------------------------------------- */

/* The value of 4 hex digits at p[at..], or -1. */
static long hex4(const sb__jl *j, size_t at) {
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
static long u_escape(const sb__jl *j, size_t at, size_t *len, int *err) {
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
static int escape(const sb__jl *j, size_t *at, uint8_t u[4]) {
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
static int string_scan(const sb__jl *j, size_t *at, char *out, size_t cap, size_t *n) {
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

int sb__jl_string(const sb__jl *j, size_t at, char **out) {
  size_t end = at, n;
  *out = NULL;
  int r = string_scan(j, &end, NULL, 0, &n);
  if (r < 0)
    return r;
  char *s = malloc(n + 1);
  if (s == NULL)
    return SB_ENOMEM;
  end = at;
  string_scan(j, &end, s, n, &n);
  s[n] = '\0';
  *out = s;
  return 0;
}

/* ---- numbers ------------------------------------------------------------- */

static bool is_num_char(uint8_t c) {
  return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.' || c == 'e' ||
         c == 'E';
}

static size_t digits(const sb__jl *j, size_t *i, size_t end) {
  size_t n = 0;
  for (; *i < end && j->p[*i] >= '0' && j->p[*i] <= '9'; (*i)++)
    n++;
  return n;
}

/* The end of the number at at: cJSON hands strtod the whole run of number
 * characters there and fails unless strtod reads all of it, i.e. unless it
 * is -?(D+(.D*)?|.D+)([eE][+-]?D+)?. Returns 0 when it is not. */
static size_t number_end(const sb__jl *j, size_t at) {
  size_t end = at, i = at;
  while (end < j->len && is_num_char(j->p[end]))
    end++;
  if (i < end && j->p[i] == '-')
    i++;
  size_t n = digits(j, &i, end);
  if (i < end && j->p[i] == '.') {
    i++;
    n += digits(j, &i, end);
  }
  if (n == 0)
    return 0;
  if (i < end && (j->p[i] == 'e' || j->p[i] == 'E')) {
    i++;
    if (i < end && (j->p[i] == '+' || j->p[i] == '-'))
      i++;
    if (digits(j, &i, end) == 0)
      return 0;
  }
  return i == end ? end : 0;
}

/* The number's digits (the mantissa's, the '.' skipped) from its first
 * nonzero one: x = 0.D * 10^pexp, D[0] != 0; or ndig == first: x == 0. */
typedef struct num {
  const uint8_t *p; /* the mantissa: digits and at most one '.' */
  size_t point;     /* digits before the '.' */
  size_t ndig;      /* digits in all */
  size_t first;     /* the first nonzero digit */
  int64_t pexp;
} num;

/* Digit i of D (0 outside it). */
static unsigned num_digit(const num *x, int64_t i) {
  if (i < 0 || (uint64_t)i >= x->ndig - x->first)
    return 0;
  size_t k = x->first + (size_t)i;
  return (unsigned)(x->p[k + (k >= x->point)] - '0');
}

/* Whether D has a nonzero digit from digit i on. */
static bool nonzero_from(const num *x, int64_t i) {
  for (i = i < 0 ? 0 : i; (uint64_t)i < x->ndig - x->first; i++)
    if (num_digit(x, i) != 0)
      return true;
  return false;
}

/* Compares the first k digits of x's fraction (after the decimal point)
 * with ref[0..k). */
static int frac_cmp(const num *x, const uint8_t *ref, unsigned k) {
  for (unsigned i = 0; i < k; i++) {
    unsigned d = num_digit(x, x->pexp + (int64_t)i);
    if (d != ref[i])
      return d < ref[i] ? -1 : 1;
  }
  return 0;
}

/* Whether x's fraction is <= 2^-k (1 <= k <= 1075), and in *high whether
 * it is >= 1 - 2^-k. 2^-k = 5^k / 10^k: k decimal digits, exactly. */
static bool frac_le_pow2(const num *x, unsigned k, bool *high) {
  uint8_t d[1075];
  unsigned used = 1;     /* digits of 5^r so far, at the end of d */
  if (k - 1 >= sizeof d) /* never: k is 22..54 or 1075 */
    k = sizeof d;
  memset(d, 0, k);
  d[k - 1] = 1;
  for (unsigned r = 0; r < k; r++, used++) /* 5^r has at most r + 1 digits */
    for (unsigned i = k, carry = 0; i-- > k - (used < k ? used : k);) {
      unsigned v = d[i] * 5u + carry;
      d[i] = (uint8_t)(v % 10);
      carry = v / 10;
    }
  int c = frac_cmp(x, d, k);
  /* Equal in k digits: above 2^-k when any digit follows. */
  bool le = c < 0 || (c == 0 && !nonzero_from(x, x->pexp + k));
  /* 1 - 2^-k = (10^k - 5^k) / 10^k; 5^k ends in 5. */
  for (unsigned i = 0; i + 1 < k; i++)
    d[i] = (uint8_t)(9 - d[i]);
  d[k - 1] = 5;
  *high = frac_cmp(x, d, k) >= 0;
  return le;
}

/* Integer magnitudes beyond this are "huge" (the bounds stay below). */
#define INT_BIG ((uint64_t)1 << 32)

int sb__jl_int(const sb__jl *j, size_t at, int64_t lo, int64_t hi, int64_t *out) {
  size_t end = number_end(j, at), i = at;
  *out = 0;
  if (end == 0)
    return bad_json(j, at);
  bool neg = j->p[i] == '-', dot = false;
  if (neg)
    i++;
  num x = {.p = j->p + i, .point = 0, .ndig = 0, .first = 0, .pexp = 0};
  for (; i < end && j->p[i] != 'e' && j->p[i] != 'E'; i++) {
    if (j->p[i] == '.') {
      x.point = x.ndig;
      dot = true;
      continue;
    }
    if (x.first == x.ndig && j->p[i] == '0')
      x.first++;
    x.ndig++;
  }
  if (!dot)
    x.point = x.ndig;
  int64_t e = 0;
  if (i < end) { /* the exponent, saturated: 10^(+-1e9) is 0 or huge alike */
    bool eneg = j->p[++i] == '-';
    if (j->p[i] == '-' || j->p[i] == '+')
      i++;
    for (; i < end; i++)
      if (e < 1000000000)
        e = e * 10 + (j->p[i] - '0');
    e = eneg ? -e : e;
  }
  /* The magnitude as strtod rounds it to a double (to nearest, ties to
   * even): the integer v, or (frac) strictly between v and v + 1, or
   * (huge) at least INT_BIG. */
  uint64_t v = 0;
  bool frac = false, huge = false;
  if (x.first < x.ndig) {
    x.pexp = (int64_t)x.point - (int64_t)x.first + e;
    if (x.pexp > 10)
      huge = true;
    for (int64_t k = 0; !huge && k < x.pexp; k++)
      v = v * 10 + num_digit(&x, k);
    bool high;
    if (huge || v >= INT_BIG) {
      huge = true;
    } else if (!nonzero_from(&x, x.pexp)) {
      /* an integer, as written: v */
    } else if (v > 0) {
      /* Doubles next to v are 2^(m-52) apart (2^m <= v < 2^(m+1), so
       * k = 53 - m: half that is 2^-k); v and v + 1 are even multiples of
       * it, so a tie between v and the next double goes to v, and one
       * between v + 1 and the double before it to v + 1. */
      unsigned k = 53;
      for (uint64_t t = v; t > 1; t >>= 1)
        k--;
      if (!frac_le_pow2(&x, k, &high)) {
        frac = !high;
        v += high;
      }
    } else if (x.pexp <= -324) {
      /* below 10^-324 < 2^-1075 (half the least double): 0 */
    } else if (x.pexp > -323 || !frac_le_pow2(&x, 1075, &high)) {
      /* Above 2^-1075: not 0. 1 from 1 - 2^-54 on (the double below 1 is
       * 1 - 2^-53; the tie goes to 1, the even one). */
      frac_le_pow2(&x, 54, &high);
      frac = !high;
      v += high;
    }
  }
  /* As msg_parse.c checks cJSON's double d: lo <= d <= hi (lo and hi within
   * INT_BIG), then d an integer. A d between v and v + 1 is in lo..hi when
   * both of those are. */
  int64_t a = (int64_t)v, b = frac ? a + 1 : a;
  if (neg) {
    int64_t t = -a;
    a = -b;
    b = t;
  }
  if (huge || a < lo || b > hi)
    return SB__JL_INT_RANGE;
  if (frac)
    return SB__JL_INT_FRACTION;
  *out = a;
  return 0;
}

/* ---- values and containers ----------------------------------------------- */

sb__jl_kind sb__jl_kind_at(const sb__jl *j, size_t at) {
  if (at >= j->len)
    return SB__JL_BAD;
  switch (j->p[at]) {
  case '{':
    return SB__JL_OBJECT;
  case '[':
    return SB__JL_ARRAY;
  case '"':
    return SB__JL_STRING;
  case 't':
    return SB__JL_TRUE;
  case 'f':
    return SB__JL_FALSE;
  case 'n':
    return SB__JL_NULL;
  default:
    return j->p[at] == '-' || (j->p[at] >= '0' && j->p[at] <= '9') ? SB__JL_NUMBER
                                                                   : SB__JL_BAD;
  }
}

static int value(const sb__jl *j, size_t *at, unsigned depth);

static int object(const sb__jl *j, size_t *at, unsigned depth, sb__jl_index *ix);

static int literal(const sb__jl *j, size_t *at, const char *word) {
  size_t n = strlen(word);
  if (j->len - *at < n || memcmp(j->p + *at, word, n) != 0)
    return bad_json(j, *at);
  *at += n;
  return 0;
}

/* After a member or an element: 1 at a comma (*at moved past it and the
 * whitespace after it), 0 at the closing bracket (*at moved past it). */
static int next_or_close(const sb__jl *j, size_t *at, uint8_t close) {
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

static int too_deep(const sb__jl *j, size_t at) {
  return sb_diag_set(j->diag, SB_EBADMSG,
                     "control message: nested deeper than %d at offset %zu", NEST_MAX,
                     at);
}

/* depth: the containers around this one (the top object has none). */
static int array(const sb__jl *j, size_t *at, unsigned depth) {
  if (depth >= NEST_MAX)
    return too_deep(j, *at);
  size_t i = skip_ws(j, *at + 1);
  int more = 1;
  if (i < j->len && j->p[i] == ']') {
    i++;
    more = 0;
  }
  while (more > 0) {
    int r = value(j, &i, depth + 1);
    if (r < 0)
      return r;
    more = next_or_close(j, &i, ']');
  }
  *at = i;
  return more;
}

static int value(const sb__jl *j, size_t *at, unsigned depth) {
  size_t end, n;
  switch (sb__jl_kind_at(j, *at)) {
  case SB__JL_OBJECT:
    return object(j, at, depth, NULL);
  case SB__JL_ARRAY:
    return array(j, at, depth);
  case SB__JL_STRING:
    return string_scan(j, at, NULL, 0, &n);
  case SB__JL_NUMBER:
    if ((end = number_end(j, *at)) == 0)
      return bad_json(j, *at);
    *at = end;
    return 0;
  case SB__JL_TRUE:
    return literal(j, at, "true");
  case SB__JL_FALSE:
    return literal(j, at, "false");
  case SB__JL_NULL:
    return literal(j, at, "null");
  default:
    return bad_json(j, *at);
  }
}

/* Counts a member named key[0..n) (n > KEY_MAX: no name fits) whose value
 * is at offset at. */
static void note(sb__jl_index *ix, const char *key, size_t n, size_t at) {
  for (size_t k = 0; ix != NULL && n <= KEY_MAX && k < ix->n; k++) {
    if (strncmp(ix->names[k], key, n) != 0 || ix->names[k][n] != '\0')
      continue;
    if (ix->count[k]++ == 0)
      ix->at[k] = at;
    return;
  }
}

static int member(const sb__jl *j, size_t *at, unsigned depth, sb__jl_index *ix) {
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

static int object(const sb__jl *j, size_t *at, unsigned depth, sb__jl_index *ix) {
  if (depth >= NEST_MAX)
    return too_deep(j, *at);
  size_t i = skip_ws(j, *at + 1);
  int more = 1;
  if (i < j->len && j->p[i] == '}') {
    i++;
    more = 0;
  }
  while (more > 0) {
    int r = member(j, &i, depth, ix);
    if (r < 0)
      return r;
    more = next_or_close(j, &i, '}');
  }
  *at = i;
  return more;
}

static void index_clear(sb__jl_index *ix) {
  memset(ix->count, 0, sizeof ix->count);
}

int sb__jl_object_index(const sb__jl *j, size_t at, sb__jl_index *ix) {
  index_clear(ix);
  return object(j, &at, 0, ix);
}

static bool is_json_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int sb__jl_document(const sb__jl *j, sb__jl_index *top) {
  static const uint8_t bom[] = {0xef, 0xbb, 0xbf};
  size_t i = 0;
  index_clear(top);
  if (j->len == 0)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: empty payload");
  /* cJSON skips a BOM when 5 bytes or more follow its start. */
  if (j->len >= 5 && memcmp(j->p, bom, sizeof bom) == 0)
    i = sizeof bom;
  i = skip_ws(j, i);
  bool is_object = i < j->len && j->p[i] == '{';
  int r = is_object ? object(j, &i, 0, top) : value(j, &i, 0);
  if (r < 0)
    return r;
  while (i < j->len && is_json_space(j->p[i]))
    i++;
  if (i < j->len)
    return bad_at(j, i, "data after the JSON value");
  if (!is_object)
    return sb_diag_set(j->diag, SB_EBADMSG, "control message: not a JSON object");
  return 0;
}

int sb__jl_array_next(const sb__jl *j, size_t *at, size_t *elem) {
  size_t i = *at;
  if (i >= j->len || j->p[i] == ']')
    return 0;
  i = skip_ws(j, i + 1); /* past '[' or ',' */
  if (i < j->len && j->p[i] == ']')
    return 0;
  *elem = i;
  int r = value(j, &i, 0);
  if (r < 0)
    return r;
  *at = skip_ws(j, i);
  return 1;
}
