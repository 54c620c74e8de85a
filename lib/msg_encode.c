/* SPDX-License-Identifier: MIT */
/* msg_encode.c - sb_msg_encode: every control message, validated and
 * written straight into its frame by the JSON writer (json_write.c), for
 * the stub and the supervisor alike.
 *
 * The buffer is allocated once, at a size no text of the message can
 * exceed (or max_bytes, past which it is refused anyway): no copy, and no
 * stray copy of the hello's token left in freed memory by a buffer that
 * grew. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* What the entries of an array of byte strings must be. */
#define ENC_ENV 1u   /* "NAME=VALUE" */
#define ENC_NAME 2u  /* a variable name: not empty, no '=' */
#define ENC_HELLO 4u /* leave SOCKETBRIDGE_TOKEN=... out, whatever the caller passed */

static bool entry_ok(const char *s, unsigned flags) {
  if (s == NULL)
    return false;
  if ((flags & ENC_ENV) && !sb__env_has_value(s))
    return false;
  return !(flags & ENC_NAME) || (*s != '\0' && !sb__env_has_value(s));
}

/* An array of byte strings, every entry checked before any is written. */
static int put_strv(sb_jw *w, const char *name, const sb_strv *sv, unsigned flags) {
  if (sv->n > 0 && sv->v == NULL)
    return SB_EINVAL;
  for (size_t i = 0; i < sv->n; i++)
    if (!entry_ok(sv->v[i], flags))
      return SB_EINVAL;
  sb_jw_key(w, name);
  sb_jw_open(w, '[');
  for (size_t i = 0; i < sv->n; i++)
    if (!(flags & ENC_HELLO) || !sb__env_is(sv->v[i], SB_ENV_TOKEN))
      sb_jw_bytes(w, sv->v[i]);
  sb_jw_close(w, ']');
  return 0;
}

static void put_winsize(sb_jw *w, const sb_winsize *ws) {
  sb_jw_add_int(w, "rows", ws->rows);
  sb_jw_add_int(w, "cols", ws->cols);
}

static int put_hello(sb_jw *w, const sb_hello *h) {
  int min = h->min_version != 0 ? h->min_version : h->version;
  int r;

  if (h->version < 1 || h->version > 65535 || min < 1 || min > h->version ||
      !sb_token_valid(h->token) || h->pid < 1 || h->pid > INT32_MAX || h->ppid < 0 ||
      h->ppid > INT32_MAX || (h->tty & ~(SB_TTY_STDIN | SB_TTY_STDOUT | SB_TTY_STDERR)))
    return SB_EINVAL;
  /* The token first, right after the type: SB_HELLO_PREFIX, which lets a
   * supervisor authenticate a large hello before it buffers the rest
   * (docs/protocol.md section 1). */
  sb_jw_add_str(w, "token", h->token);
  sb_jw_add_int(w, "version", h->version);
  sb_jw_add_int(w, "min_version", min);
  sb_jw_add_int(w, "pid", h->pid);
  sb_jw_add_int(w, "ppid", h->ppid);
  if ((r = put_strv(w, "argv", &h->argv, 0)) < 0 ||
      (r = put_strv(w, "env", &h->env, ENC_ENV | ENC_HELLO)) < 0)
    return r;
  sb_jw_key(w, "cwd");
  sb_jw_bytes(w, h->cwd);
  sb_jw_key(w, "exe");
  sb_jw_bytes(w, h->exe);
  sb_jw_key(w, "tty");
  sb_jw_open(w, '{');
  sb_jw_add_bool(w, "stdin", h->tty & SB_TTY_STDIN);
  sb_jw_add_bool(w, "stdout", h->tty & SB_TTY_STDOUT);
  sb_jw_add_bool(w, "stderr", h->tty & SB_TTY_STDERR);
  sb_jw_close(w, '}');
  if (h->has_winsize) {
    sb_jw_key(w, "winsize");
    sb_jw_open(w, '{');
    put_winsize(w, &h->winsize);
    sb_jw_close(w, '}');
  }
  return 0;
}

static int put_signal(sb_jw *w, int signum) {
  const char *name = sb_signal_name(signum);
  if (name == NULL)
    return SB_EINVAL;
  sb_jw_add_str(w, "signal", name);
  return 0;
}

/* exit and exited: the signal when there is one, else the code. */
static int put_status(sb_jw *w, const sb_status *st) {
  if (st->signal != 0)
    return put_signal(w, st->signal);
  if (st->code < 0 || st->code > 255)
    return SB_EINVAL;
  sb_jw_add_int(w, "code", st->code);
  return 0;
}

static int put_stream_error(sb_jw *w, int stream, int err, const char *message) {
  if ((stream != 1 && stream != 2) || err >= 0 || err < -4095)
    return SB_EINVAL;
  sb_jw_add_str(w, "stream", stream == 1 ? "stdout" : "stderr");
  sb_jw_add_int(w, "errno", -err);
  sb_jw_add_str(w, "message", message);
  return 0;
}

static int put_reject(sb_jw *w, sb_reason reason, const char *message) {
  const char *name = sb_reason_name(reason);
  if (name == NULL)
    return SB_EINVAL;
  sb_jw_add_str(w, "reason", name);
  sb_jw_add_str(w, "message", message);
  return 0;
}

/* "stdin" goes out only when it is not the default (true). */
static int put_welcome(sb_jw *w, int version, bool hold_stdin) {
  if (version < 1 || version > 65535)
    return SB_EINVAL;
  sb_jw_add_int(w, "version", version);
  if (hold_stdin)
    sb_jw_add_bool(w, "stdin", false);
  return 0;
}

/* env and unset go out only when they hold something: absent and empty
 * mean the same, and most calls change nothing. */
static int put_launch(sb_jw *w, const sb_launch *l, bool run) {
  int r;
  if (l->argv.n == 0)
    return SB_EINVAL;
  if ((r = put_strv(w, "argv", &l->argv, 0)) < 0)
    return r;
  if (l->path != NULL) {
    sb_jw_key(w, "path");
    sb_jw_bytes(w, l->path);
  }
  if (l->cwd != NULL) {
    sb_jw_key(w, "cwd");
    sb_jw_bytes(w, l->cwd);
  }
  if ((l->set.n > 0 && (r = put_strv(w, "env", &l->set, ENC_ENV)) < 0) ||
      (l->unset.n > 0 && (r = put_strv(w, "unset", &l->unset, ENC_NAME)) < 0))
    return r;
  if (run && l->tee)
    sb_jw_add_bool(w, "tee", true);
  return 0;
}

static int put_body(sb_jw *w, const sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    return put_hello(w, &m->u.hello);
  case SB_MSG_WELCOME:
    return put_welcome(w, m->u.welcome.version, m->u.welcome.hold_stdin);
  case SB_MSG_REJECT:
    return put_reject(w, m->u.reject.reason, m->u.reject.message);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return put_status(w, &m->u.exit);
  case SB_MSG_SIGNAL:
    return put_signal(w, m->u.signal.signal);
  case SB_MSG_STREAM_ERROR:
    return put_stream_error(w, m->u.stream_error.stream, m->u.stream_error.err,
                            m->u.stream_error.message);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return put_launch(w, &m->u.launch, m->type == SB_MSG_RUN);
  case SB_MSG_WINSIZE:
    put_winsize(w, &m->u.winsize);
    return 0;
  case SB_MSG_PTY:
    return 0;
  }
  return SB_EINVAL;
}

/* At least the length of any text of a string of n bytes: escaped, every
 * byte may take 6; as base64, 4/3 of them and 13 more; plus a comma. */
static size_t str_bound(const char *s) {
  size_t n = s != NULL ? strlen(s) : 0;
  return n > SIZE_MAX / 8 ? SIZE_MAX / 2 : 6 * n + 16;
}

static size_t strv_bound(const sb_strv *sv) {
  size_t b = 0;
  for (size_t i = 0; sv->v != NULL && i < sv->n; i++)
    b += str_bound(sv->v[i]);
  return b;
}

/* No text of m is longer: 512 for the names, numbers and punctuation. */
static size_t bound(const sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    return 512 + strv_bound(&m->u.hello.argv) + strv_bound(&m->u.hello.env) +
           str_bound(m->u.hello.cwd) + str_bound(m->u.hello.exe);
  case SB_MSG_REJECT:
    return 512 + str_bound(m->u.reject.message);
  case SB_MSG_STREAM_ERROR:
    return 512 + str_bound(m->u.stream_error.message);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return 512 + strv_bound(&m->u.launch.argv) + strv_bound(&m->u.launch.set) +
           strv_bound(&m->u.launch.unset) + str_bound(m->u.launch.path) +
           str_bound(m->u.launch.cwd);
  default:
    return 512;
  }
}

int sb_msg_encode(const sb_msg *m, uint32_t max_bytes, uint8_t **frame,
                  size_t *frame_len) {
  const char *type = sb_msg_type_name(m->type);
  sb_jw w;
  char *text;
  size_t len;

  *frame = NULL;
  *frame_len = 0;
  if (max_bytes == 0)
    max_bytes = SB_DEFAULT_MAX_BYTES;
  if (type == NULL)
    return SB_EINVAL;
  /* The JSON may take max_bytes - 1 bytes, and the writer's NUL one more. */
  if (sb_jw_init(&w, SB_FRAME_HEADER, bound(m), max_bytes) < 0)
    return SB_ENOMEM;
  sb_jw_open(&w, '{');
  sb_jw_add_str(&w, "type", type);
  int r = put_body(&w, m);
  sb_jw_close(&w, '}');
  if (r < 0)
    w.err = r;
  if ((r = sb_jw_end(&w, &text, &len)) < 0)
    return r;
  sb_frame_header((uint8_t *)text, SB_KIND_CONTROL, (uint32_t)(len - SB_FRAME_HEADER));
  *frame = (uint8_t *)text;
  *frame_len = len;
  return 0;
}
