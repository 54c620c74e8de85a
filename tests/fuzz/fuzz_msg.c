/* fuzz_msg.c - the control message parser on any payload.
 *
 * Checks that a parse either fails cleanly (with a diag, leaving the output
 * empty) or gives a message that encodes, decodes as one control frame and
 * parses back to an equal message, whose encoding is then byte for byte the
 * same (the encoding is canonical). */
#include "sb_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);           \
      abort();                                                                           \
    }                                                                                    \
  } while (0)

static bool str_eq(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static bool strv_eq(const sb_strv *a, const sb_strv *b) {
  if (a->n != b->n || a->v[a->n] != NULL || b->v[b->n] != NULL)
    return false;
  for (size_t i = 0; i < a->n; i++)
    if (!str_eq(a->v[i], b->v[i]))
      return false;
  return true;
}

static bool hello_eq(const sb_hello *a, const sb_hello *b) {
  return a->version == b->version && a->min_version == b->min_version &&
         strcmp(a->token, b->token) == 0 && a->pid == b->pid && a->ppid == b->ppid &&
         strv_eq(&a->argv, &b->argv) && strv_eq(&a->env, &b->env) &&
         str_eq(a->cwd, b->cwd) && str_eq(a->exe, b->exe) && a->tty == b->tty;
}

static bool launch_eq(const sb_launch *a, const sb_launch *b) {
  return strv_eq(&a->argv, &b->argv) && str_eq(a->path, b->path) &&
         str_eq(a->cwd, b->cwd) && strv_eq(&a->set, &b->set) &&
         strv_eq(&a->unset, &b->unset) && a->tee == b->tee;
}

static bool msg_eq(const sb_msg *a, const sb_msg *b) {
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case SB_MSG_HELLO:
    return hello_eq(&a->u.hello, &b->u.hello);
  case SB_MSG_WELCOME:
    return a->u.welcome.version == b->u.welcome.version &&
           a->u.welcome.hold_stdin == b->u.welcome.hold_stdin;
  case SB_MSG_REJECT:
    return a->u.reject.reason == b->u.reject.reason &&
           str_eq(a->u.reject.message, b->u.reject.message);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return a->u.exit.signal == b->u.exit.signal && a->u.exit.code == b->u.exit.code;
  case SB_MSG_SIGNAL:
    return a->u.signal.signal == b->u.signal.signal;
  case SB_MSG_STREAM_ERROR:
    return a->u.stream_error.stream == b->u.stream_error.stream &&
           a->u.stream_error.err == b->u.stream_error.err &&
           str_eq(a->u.stream_error.message, b->u.stream_error.message);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return launch_eq(&a->u.launch, &b->u.launch);
  }
  return false;
}

/* Encodes m and parses the frame back into *out. */
static void roundtrip(const sb_msg *m, sb_msg *out, uint8_t **frame, size_t *frame_len) {
  int r = sb_msg_encode(m, SB_MAX_MAX_BYTES, frame, frame_len);
  CHECK(r == 0);

  sb_decoder d;
  sb_decoder_init(&d, SB_MAX_MAX_BYTES);
  const uint8_t *p = *frame;
  size_t n = *frame_len;
  sb_frame f;
  sb_diag diag;
  CHECK(sb_decoder_next(&d, &p, &n, &f, &diag) == 1);
  CHECK(n == 0 && f.kind == SB_KIND_CONTROL && f.end);
  CHECK(sb_msg_parse(f.data, f.len, out, &diag) == 0);
  sb_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sb_msg m, back, again;
  sb_diag diag;
  diag.msg[0] = '\0';

  int r = sb_msg_parse(data, size, &m, &diag);
  if (r < 0) {
    CHECK(r == SB_EBADMSG || r == SB_ENOMEM);
    CHECK(diag.msg[0] != '\0' || r == SB_ENOMEM);
    sb_msg zero;
    memset(&zero, 0, sizeof zero);
    CHECK(memcmp(&m, &zero, sizeof m) == 0);
    return 0;
  }

  uint8_t *f1, *f2;
  size_t n1, n2;
  roundtrip(&m, &back, &f1, &n1);
  CHECK(msg_eq(&m, &back));
  roundtrip(&back, &again, &f2, &n2);
  CHECK(msg_eq(&back, &again));
  CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0);

  free(f1);
  free(f2);
  sb_msg_free(&m);
  sb_msg_free(&back);
  sb_msg_free(&again);
  return 0;
}
