/* SPDX-License-Identifier: MIT */
/* sb_internal.h - helpers shared between the files of lib/. Not installed,
 * not part of the ABI: every name here starts with sb__. */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include "sb_proto.h"

#include <stdarg.h>

/* Length of the valid UTF-8 sequence starting at p (at most left bytes are
 * readable), or 0 when the bytes there are not one. */
size_t sb__utf8_seq(const uint8_t *p, size_t left);

/* Checks a control payload in one pass before cJSON sees it: valid UTF-8,
 * no NUL byte, no control character inside a string, every \u escape with
 * 4 hex digits and none \u0000. Returns 0 or SB_EBADMSG with diag set. */
int sb__json_precheck(const uint8_t *buf, size_t len, sb_diag *diag);

/* Base64 (RFC 4648, standard alphabet, padded). */
size_t sb__b64_encoded_len(size_t n); /* without the NUL */
/* Writes sb__b64_encoded_len(n) characters and a NUL into out. */
void sb__b64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decoding: the length is a multiple of 4, only alphabet characters
 * and trailing padding, and unused bits zero (one spelling per byte string).
 * out must hold len / 4 * 3 bytes. Returns the decoded length or -1. */
ptrdiff_t sb__b64_decode(const char *in, size_t len, uint8_t *out);

/* Allocates room for n strings plus the terminating NULL (all NULL). */
int sb__strv_alloc(sb_strv *s, size_t n);

/* Signal name lookup for the wire: exact names only ("TERM"), or 0. */
int sb__signal_from_wire(const char *name);

/* Writes src into dst (size bytes) quoted for a message: printable ASCII as
 * is, other bytes as \xNN, cut with "..." when too long, and any run of 16
 * or more hex digits as <hex digits> (a token must not reach a log, even
 * from a field it was not meant for). */
void sb__quote(char *dst, size_t size, const char *src);

/* The value of a hex digit, or -1. */
static inline int sb__hex_value(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  uint8_t lower = (uint8_t)(c | 0x20);
  return lower >= 'a' && lower <= 'f' ? lower - 'a' + 10 : -1;
}

/* fmt.c, the stub's copy of lib/ only: snprintf and vsnprintf for the
 * conversions the stub's messages use (fmt.c lists them), so that a static
 * stub links no printf. SB_VSNPRINTF is the one lib/ formats with. */
int sb__vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
int sb__snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#ifdef SB_NO_CJSON
#define SB_VSNPRINTF sb__vsnprintf
#else
#define SB_VSNPRINTF vsnprintf
#endif

/* The type whose wire name is name ("hello"), or 0. */
sb_msg_type sb__msg_type_from_name(const char *name);

/* ---- the stub's JSON, without cJSON (json_lite.c, msg_lite_*.c) --------
 *
 * The stub links neither cJSON nor anything that calls it (its process
 * start is the stub cycle's cost; see docs/performance.md). These read and
 * write control messages without building a tree, and say what the cJSON
 * functions say: sb_msg_parse (msg_lite_parse.c, everyone's parser) accepts
 * exactly the payloads sb__msg_parse_cjson accepts, with the same sb_msg
 * (tests/fuzz/fuzz_lite.c checks both on any input), and
 * sb__msg_encode_lite writes the bytes
 * sb_msg_encode writes. Where cJSON is lax the lite parser is lax the same
 * way, so the stub takes what it took before (json_lite.c lists how). */

/* A byte a JSON string holds as it is, with nothing to check or escape:
 * 0x20..0x7f, not '"' nor '\\'. */
static inline bool sb__json_plain(uint8_t c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The same for each of the 8 bytes of x. (x - ONES * n) & ~x has a high
 * bit set where a byte is below n, when x has none of its own: the usual
 * word-at-a-time test, so that the ASCII of argv and env costs about a
 * cycle per byte. */
static inline bool sb__json_plain8(uint64_t x) {
  const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
  uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
  uint64_t special = ((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b);
  return ((special | x) & high) == 0;
}

/* msg_parse.c: sb_msg_parse written over a cJSON tree, kept only as the
 * reference the tests hold sb_msg_parse to (not called by the library). */
int sb__msg_parse_cjson(const uint8_t *payload, size_t len, sb_msg *out, sb_diag *diag);

/* As sb_msg_encode, for the messages a stub sends: hello, signal,
 * stream_error, exited (and exit, of the same shape); SB_EINVAL for the
 * others. */
int sb__msg_encode_lite(const sb_msg *m, uint32_t max_bytes, uint8_t **frame,
                        size_t *frame_len);

/* json_lite.c: a control payload, read in place. Offsets are into p. */
typedef struct sb__jl {
  const uint8_t *p;
  size_t len;
  sb_diag *diag;
} sb__jl;

/* The JSON kind of the value at an offset, by its first byte. */
typedef enum sb__jl_kind {
  SB__JL_BAD = 0,
  SB__JL_OBJECT,
  SB__JL_ARRAY,
  SB__JL_STRING,
  SB__JL_NUMBER,
  SB__JL_TRUE,
  SB__JL_FALSE,
  SB__JL_NULL,
} sb__jl_kind;

/* The most names an object reader looks for (every member name of every
 * message type). */
#define SB__JL_MAX_NAMES 24

/* Where the members an object reader knows are: for each of names[], the
 * offset of the first value given under it and how many times it is given.
 * Other members are checked as JSON and skipped. */
typedef struct sb__jl_index {
  const char *const *names;
  size_t n;
  size_t at[SB__JL_MAX_NAMES];
  unsigned count[SB__JL_MAX_NAMES];
} sb__jl_index;

sb__jl_kind sb__jl_kind_at(const sb__jl *j, size_t at);
/* Checks the whole payload: one JSON object (after an optional UTF-8 BOM and
 * whitespace, before trailing whitespace), nested at most 1000 deep, every
 * string valid UTF-8 without control characters or \u0000, and indexes
 * its members (top). Returns 0 or SB_EBADMSG with diag set. */
int sb__jl_document(const sb__jl *j, sb__jl_index *top);
/* Indexes the members of the (already checked) object at offset at. */
int sb__jl_object_index(const sb__jl *j, size_t at, sb__jl_index *ix);
/* Decodes the (checked) string at offset at into a fresh C string. Returns
 * 0, SB_EBADMSG or SB_ENOMEM. */
int sb__jl_string(const sb__jl *j, size_t at, char **out);
/* The (checked) number at offset at as an integer in lo..hi, judged as
 * msg_parse.c judges cJSON's value: the double d strtod reads (correctly
 * rounded), then lo <= d <= hi, then d an integer. Read exactly, without
 * floating point or strtod (the stub has neither). Returns 0 with *out = d,
 * SB__JL_INT_RANGE (d outside lo..hi), SB__JL_INT_FRACTION (d in lo..hi,
 * not an integer), or SB_EBADMSG for a number not checked by
 * sb__jl_document. lo and hi must lie within +-(2^32 - 1). */
#define SB__JL_INT_RANGE 1
#define SB__JL_INT_FRACTION 2
int sb__jl_int(const sb__jl *j, size_t at, int64_t lo, int64_t hi, int64_t *out);
/* The elements of the (checked) array at offset *at: the first call (with
 * *at at the '[') and each next one set *elem to the next element's offset
 * and return 1; 0 after the last; a negative error only for an array not
 * checked by sb__jl_document. */
int sb__jl_array_next(const sb__jl *j, size_t *at, size_t *elem);

/* ---- the supervisor's JSON: cJSON (not in the stub, which defines
 * SB_NO_CJSON so that any use of these fails to compile) ----------------- */
#ifndef SB_NO_CJSON
#include <cjson/cJSON.h>

/* A byte string (NUL-terminated C string) as JSON: a string when it is UTF-8,
 * else {"base64": ...}. NULL when out of memory. */
cJSON *sb__json_bytes_new(const char *s);

/* Reads a byte string from JSON into a fresh C string (*out). Returns 0,
 * SB_EBADMSG (diag names `path` and what was wrong) or SB_ENOMEM. */
int sb__json_bytes_get(const cJSON *item, const char *path, char **out, sb_diag *diag);

/* Reads a message from its parsed JSON object (the payload checks done):
 * the type, then every member the type has. Returns 0, SB_EBADMSG with diag
 * naming the member, or SB_ENOMEM; *out may hold parts on error. */
int sb__msg_parse_object(const cJSON *root, sb_msg *out, sb_diag *diag);
#endif

#endif
