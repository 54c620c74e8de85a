/* SPDX-License-Identifier: MIT */
/* fuzz_lite.c - the stub's cJSON-free messages against the cJSON ones.
 *
 * Parse: for any input, sb_msg_parse and sb__msg_parse_cjson agree on
 * accept or reject, both leave the output empty when they reject, and when
 * they accept (any type) they give equal messages.
 *
 * Encode: the input also builds the messages a stub sends (a hello whose
 * argv, env, cwd and exe are pieces of the input, any bytes but NUL; a
 * signal, an exited, a stream_error); sb__msg_encode_lite and sb_msg_encode
 * must agree on the result and write the same bytes, which sb__msg_parse_cjson
 * reads back into the message sent (less the token entries of env). */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_eq.h"

#define TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static bool is_zero(const sb_msg *m) {
  static const sb_msg zero;
  return memcmp(m, &zero, sizeof *m) == 0;
}

/* ---- parse ---------------------------------------------------------------- */

static void check_parse(const uint8_t *data, size_t size) {
  sb_msg ref, lite;
  sb_diag ref_diag, lite_diag;
  lite_diag.msg[0] = '\0';
  int want = sb__msg_parse_cjson(data, size, &ref, &ref_diag);
  int r = sb_msg_parse(data, size, &lite, &lite_diag);
  if (want == SB_ENOMEM || r == SB_ENOMEM)
    return;
  if ((r == 0) != (want == 0)) {
    fprintf(stderr, "lite %d (%s), cJSON %d (%s)\n", r, lite_diag.msg, want,
            want < 0 ? ref_diag.msg : "");
    abort();
  }
  if (r < 0) {
    CHECK(r == SB_EBADMSG && want == SB_EBADMSG);
    CHECK(lite_diag.msg[0] != '\0');
    CHECK(is_zero(&lite) && is_zero(&ref));
    return;
  }
  CHECK(msg_eq(&ref, &lite));
  sb_msg_free(&ref);
  sb_msg_free(&lite);
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

/* Encodes m both ways: same result, same bytes; parsed back (by cJSON) it
 * is want. */
static void check_encode_one(const sb_msg *m, const sb_msg *want, uint32_t max_bytes) {
  uint8_t *lite, *ref;
  size_t lite_len, ref_len;
  int r = sb__msg_encode_lite(m, max_bytes, &lite, &lite_len);
  int rr = sb_msg_encode(m, max_bytes, &ref, &ref_len);
  if (r == SB_ENOMEM || rr == SB_ENOMEM)
    goto out;
  CHECK(r == rr);
  if (r < 0) {
    CHECK(lite == NULL && lite_len == 0);
    goto out;
  }
  CHECK(lite_len == ref_len && memcmp(lite, ref, ref_len) == 0);
  sb_msg back;
  sb_diag diag;
  CHECK(lite_len >= SB_FRAME_HEADER && lite[4] == SB_KIND_CONTROL);
  uint32_t n = (uint32_t)lite[0] << 24 | (uint32_t)lite[1] << 16 |
               (uint32_t)lite[2] << 8 | lite[3];
  CHECK(n == lite_len - 4);
  CHECK(sb__msg_parse_cjson(lite + SB_FRAME_HEADER, lite_len - SB_FRAME_HEADER, &back,
                            &diag) == 0);
  CHECK(msg_eq(want, &back));
  sb_msg_free(&back);
out:
  free(lite);
  free(ref);
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
