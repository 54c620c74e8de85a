/* SPDX-License-Identifier: MIT */
/* fuzz_lite.c - lib/'s JSON reader and writer against cJSON, the
 * differential oracle (a test dependency only: nothing that ships links it).
 *
 * Parse: for any input, what sb_msg_parse accepts is JSON cJSON reads too,
 * an object whose "type" is the message's (the reader is stricter than
 * cJSON, never laxer); when it refuses, the output is left empty with a
 * diag.
 *
 * Encode: the input also builds the messages a stub sends (a hello whose
 * argv, env, cwd and exe are pieces of the input, any bytes but NUL; a
 * signal, an exited, a stream_error); what sb_msg_encode writes is one
 * control frame of JSON cJSON reads, which sb_msg_parse reads back into the
 * message sent (less the token entries of env). */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "msg_eq.h"

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool is_zero(const sb_msg *m) {
  static const sb_msg zero;
  return memcmp(m, &zero, sizeof *m) == 0;
}

/* ---- parse ---------------------------------------------------------------- */

/* cJSON reads the payload as an object whose "type" is want. */
static void check_cjson(const uint8_t *data, size_t size, const char *want) {
  cJSON *root = cJSON_ParseWithLength((const char *)data, size);
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
  if (root == NULL && cJSON_GetErrorPtr() == NULL)
    return; /* out of memory */
  if (!cJSON_IsObject(root) || !cJSON_IsString(type) || strcmp(type->valuestring, want)) {
    fprintf(stderr, "accepted as %s, but cJSON reads %.*s otherwise\n", want, (int)size,
            (const char *)data);
    abort();
  }
  cJSON_Delete(root);
}

static void check_parse(const uint8_t *data, size_t size) {
  sb_msg m;
  sb_diag diag;
  diag.msg[0] = '\0';
  int r = sb_msg_parse(data, size, &m, &diag);
  if (r == SB_ENOMEM)
    return;
  if (r < 0) {
    CHECK(r == SB_EBADMSG && diag.msg[0] != '\0' && is_zero(&m));
    return;
  }
  check_cjson(data, size, sb_msg_type_name(m.type));
  sb_msg_free(&m);
}

/* ---- encode --------------------------------------------------------------- */

/* The input cut into NUL-terminated pieces: at each 0xff byte (NUL bytes are
 * dropped: C strings cannot hold them). */
typedef struct pieces {
  char *buf;
  char *v[64];
  size_t n;
} pieces;

static void cut(const uint8_t *data, size_t size, pieces *p) {
  p->buf = malloc(size + 1);
  p->n = 0;
  CHECK(p->buf != NULL);
  char *o = p->buf, *start = o;
  for (size_t i = 0; i < size; i++) {
    if (data[i] == 0xff && p->n < 63) {
      *o++ = '\0';
      p->v[p->n++] = start;
      start = o;
    } else if (data[i] != 0) {
      *o++ = (char)data[i];
    }
  }
  *o = '\0';
  p->v[p->n++] = start;
}

/* A piece, or NULL past the last. */
static char *take(pieces *p, size_t *next) {
  return *next < p->n ? p->v[(*next)++] : NULL;
}

/* Encodes m; the frame is JSON cJSON reads, and parsed back it is want. */
static void check_encode_one(const sb_msg *m, const sb_msg *want, uint32_t max_bytes) {
  uint8_t *f;
  size_t len;
  int r = sb_msg_encode(m, max_bytes, &f, &len);
  if (r == SB_ENOMEM)
    return;
  if (r < 0) {
    CHECK(f == NULL && len == 0);
    return;
  }
  sb_msg back;
  sb_diag diag;
  CHECK(len >= SB_FRAME_HEADER && f[4] == SB_KIND_CONTROL);
  uint32_t n = (uint32_t)f[0] << 24 | (uint32_t)f[1] << 16 | (uint32_t)f[2] << 8 | f[3];
  CHECK(n == len - 4);
  CHECK(sb_msg_parse(f + SB_FRAME_HEADER, len - SB_FRAME_HEADER, &back, &diag) == 0);
  CHECK(msg_eq(want, &back));
  check_cjson(f + SB_FRAME_HEADER, len - SB_FRAME_HEADER, sb_msg_type_name(m->type));
  sb_msg_free(&back);
  free(f);
}

/* The hello: the first bytes set the numbers, the pieces the strings. */
static void check_hello(const uint8_t *data, size_t size, pieces *p, uint32_t max) {
  uint8_t h8[8] = {0};
  memcpy(h8, data, size < 8 ? size : 8);
  sb_msg m = {.type = SB_MSG_HELLO};
  sb_hello *h = &m.u.hello;
  char *argv[64], *env[64], *env_sent[64];
  size_t next = 0, nenv = 0, nsent = 0;

  /* 1..4 mostly; else 0..131071, out of range at both ends. */
  h->version =
      h8[0] & 0x80 ? (h8[0] & 0x7f) << 10 | h8[1] << 2 | (h8[2] & 3) : 1 + (h8[1] & 3);
  h->min_version = h8[2] % 4;
  memcpy(h->token, TOKEN, sizeof h->token);
  if (h8[3] == 0x5a)
    h->token[h8[4] % SB_TOKEN_HEX] = (char)h8[5]; /* maybe not hex any more */
  h->pid = h8[4] == 0 ? 0 : (int64_t)h8[4] << 24 | h8[5];
  h->ppid = h8[6] == 0xff ? -1 : h8[6];
  h->tty = h8[7] & (h8[7] & 0x80 ? 0xf : 0x7);
  size_t nargv = h8[3] % 8;
  for (h->argv.n = 0; h->argv.n < nargv && next < p->n;)
    argv[h->argv.n++] = take(p, &next);
  argv[h->argv.n] = NULL;
  h->argv.v = argv;
  h->cwd = take(p, &next);
  h->exe = h8[7] & 0x40 ? take(p, &next) : NULL;
  for (char *e; (e = take(p, &next)) != NULL;) {
    env[nenv++] = e;
    if (strchr(e, '=') != NULL && strncmp(e, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) != 0)
      env_sent[nsent++] = e;
  }
  env[nenv] = env_sent[nsent] = NULL;
  h->env = (sb_strv){env, nenv};

  sb_msg want = m;
  if (want.u.hello.min_version == 0)
    want.u.hello.min_version = want.u.hello.version;
  want.u.hello.env = (sb_strv){env_sent, nsent};
  check_encode_one(&m, &want, max);
}

/* signal, exited (a code or a signal), stream_error (its text a piece). */
static void check_small(const uint8_t *data, size_t size, pieces *p) {
  uint8_t b[4] = {0};
  memcpy(b, data + (size > 12 ? 8 : 0), size > 12 ? 4 : 0);
  sb_msg m = {.type = SB_MSG_SIGNAL, .u.signal.signal = b[0] % 40};
  check_encode_one(&m, &m, 0);
  m = (sb_msg){.type = b[1] & 1 ? SB_MSG_EXITED : SB_MSG_EXIT};
  if (b[1] & 2)
    m.u.exit.signal = b[2] % 40;
  else
    m.u.exit.code = b[2] | (b[1] & 4 ? 256 : 0);
  check_encode_one(&m, &m, 0);
  m = (sb_msg){.type = SB_MSG_STREAM_ERROR};
  m.u.stream_error.stream = b[3] % 4;
  m.u.stream_error.err = -(int)(b[0] | (b[1] & 0xf0) << 4);
  m.u.stream_error.message = p->v[p->n - 1];
  check_encode_one(&m, &m, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pieces p;
  check_parse(data, size);
  cut(data, size, &p);
  /* Mostly the default bound; sometimes a small one, to meet EMSGSIZE. */
  uint32_t max = size > 1 && data[size - 1] == 0x7f ? SB_MIN_MAX_BYTES : 0;
  check_hello(data, size, &p, max);
  check_small(data, size, &p);
  free(p.buf);
  return 0;
}
