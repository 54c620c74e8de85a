/* sb_internal.h - helpers shared between the files of lib/. Not installed,
 * not part of the ABI: every name here starts with sb__. */
#ifndef SB_INTERNAL_H
#define SB_INTERNAL_H

#include "sb_proto.h"

#include <cjson/cJSON.h>

/* Length of the valid UTF-8 sequence starting at p (at most left bytes are
 * readable), or 0 when the bytes there are not one. */
size_t sb__utf8_seq(const uint8_t *p, size_t left);

/* Checks a control payload in one pass before any JSON parser sees it:
 * valid UTF-8, no NUL byte, no control character inside a string, and no
 * \u0000 escape. Returns 0 or SB_EBADMSG with diag set. */
int sb__json_precheck(const uint8_t *buf, size_t len, sb_diag *diag);

/* Base64 (RFC 4648, standard alphabet, padded). */
size_t sb__b64_encoded_len(size_t n); /* without the NUL */
/* Writes sb__b64_encoded_len(n) characters and a NUL into out. */
void sb__b64_encode(const uint8_t *in, size_t n, char *out);
/* Strict decoding: the length is a multiple of 4, only alphabet characters
 * and trailing padding, and unused bits zero (one spelling per byte string).
 * out must hold len / 4 * 3 bytes. Returns the decoded length or -1. */
ptrdiff_t sb__b64_decode(const char *in, size_t len, uint8_t *out);

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

/* Allocates room for n strings plus the terminating NULL (all NULL). */
int sb__strv_alloc(sb_strv *s, size_t n);

/* Signal name lookup for the wire: exact names only ("TERM"), or 0. */
int sb__signal_from_wire(const char *name);

/* Writes src into dst (size bytes) quoted for a message: printable ASCII as
 * is, other bytes as \xNN, cut with "..." when too long. */
void sb__quote(char *dst, size_t size, const char *src);

#endif
