/* SPDX-License-Identifier: MIT */
/* msg_encode.c - control messages out: validated, printed into one frame. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

/* What building the JSON tree needs to carry around. */
typedef struct ectx {
  cJSON *obj;
  size_t text; /* bytes of strings added so far: a hint for the buffer size */
} ectx;

static int add_item(ectx *e, const char *name, cJSON *item) {
  if (item == NULL)
    return SB_ENOMEM;
  if (!cJSON_AddItemToObject(e->obj, name, item)) {
    cJSON_Delete(item);
    return SB_ENOMEM;
  }
  return 0;
}

static int add_int(ectx *e, const char *name, int64_t v) {
  return add_item(e, name, cJSON_CreateNumber((double)v));
}

static int add_bool(ectx *e, const char *name, bool v) {
  return add_item(e, name, cJSON_CreateBool(v));
}

/* A JSON string; text for humans, which must already be UTF-8. */
static int add_str(ectx *e, const char *name, const char *s) {
  if (s == NULL)
    s = "";
  size_t n = strlen(s);
  if (!sb_utf8_valid((const uint8_t *)s, n))
    return SB_EINVAL;
  e->text += n;
  return add_item(e, name, cJSON_CreateString(s));
}

static int add_bytes(ectx *e, const char *name, const char *s) {
  if (s == NULL)
    return add_item(e, name, cJSON_CreateNull());
  e->text += strlen(s) * 4 / 3 + 16;
  return add_item(e, name, sb__json_bytes_new(s));
}

static bool is_token_var(const char *s) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  return strncmp(s, prefix, sizeof prefix - 1) == 0;
}

/* What the entries of an array of byte strings must be. */
#define ENC_ENV 1u   /* "NAME=VALUE" */
#define ENC_NAME 2u  /* a variable name: not empty, no '=' */
#define ENC_HELLO 4u /* leave SOCKETBRIDGE_TOKEN=... out, whatever the caller passed */

static bool entry_ok(const char *s, unsigned flags) {
  if (s == NULL)
    return false;
  if ((flags & ENC_ENV) && strchr(s, '=') == NULL)
    return false;
  return !(flags & ENC_NAME) || (*s != '\0' && strchr(s, '=') == NULL);
}

/* An array of byte strings, every entry checked before anything is built. */
static int add_strv(ectx *e, const char *name, const sb_strv *sv, unsigned flags) {
  if (sv->n > 0 && sv->v == NULL)
    return SB_EINVAL;
  for (size_t i = 0; i < sv->n; i++)
    if (!entry_ok(sv->v[i], flags))
      return SB_EINVAL;

  cJSON *arr = cJSON_CreateArray();
  int r = add_item(e, name, arr);
  for (size_t i = 0; r == 0 && i < sv->n; i++) {
    if ((flags & ENC_HELLO) && is_token_var(sv->v[i]))
      continue;
    cJSON *item = sb__json_bytes_new(sv->v[i]);
    if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
      cJSON_Delete(item);
      r = SB_ENOMEM;
    }
    e->text += strlen(sv->v[i]) * 4 / 3 + 16;
  }
  return r;
}

static int add_tty(ectx *e, unsigned tty) {
  ectx t = {cJSON_CreateObject(), 0};
  int r = add_item(e, "tty", t.obj);
  if (r == 0 && (r = add_bool(&t, "stdin", tty & SB_TTY_STDIN)) == 0 &&
      (r = add_bool(&t, "stdout", tty & SB_TTY_STDOUT)) == 0)
    r = add_bool(&t, "stderr", tty & SB_TTY_STDERR);
  return r;
}

static int add_winsize(ectx *e, const sb_winsize *ws) {
  int r = add_int(e, "rows", ws->rows);
  return r < 0 ? r : add_int(e, "cols", ws->cols);
}

static int build_hello(ectx *e, const sb_hello *h) {
  int min = h->min_version != 0 ? h->min_version : h->version;
  int r;

  if (h->version < 1 || h->version > 65535 || min < 1 || min > h->version ||
      !sb_token_valid(h->token) || h->pid < 1 || h->pid > INT32_MAX || h->ppid < 0 ||
      h->ppid > INT32_MAX || (h->tty & ~(SB_TTY_STDIN | SB_TTY_STDOUT | SB_TTY_STDERR)))
    return SB_EINVAL;
  /* The token first: SB_HELLO_PREFIX (docs/protocol.md section 1). */
  if ((r = add_item(e, "token", cJSON_CreateString(h->token))) < 0 ||
      (r = add_int(e, "version", h->version)) < 0 ||
      (r = add_int(e, "min_version", min)) < 0 || (r = add_int(e, "pid", h->pid)) < 0 ||
      (r = add_int(e, "ppid", h->ppid)) < 0 ||
      (r = add_strv(e, "argv", &h->argv, 0)) < 0 ||
      (r = add_strv(e, "env", &h->env, ENC_ENV | ENC_HELLO)) < 0 ||
      (r = add_bytes(e, "cwd", h->cwd)) < 0 || (r = add_bytes(e, "exe", h->exe)) < 0 ||
      (r = add_tty(e, h->tty)) < 0 || !h->has_winsize)
    return r;
  ectx w = {cJSON_CreateObject(), 0};
  if ((r = add_item(e, "winsize", w.obj)) < 0)
    return r;
  return add_winsize(&w, &h->winsize);
}

/* exit and exited: the signal when there is one, else the code. */
static int build_status(ectx *e, const sb_status *st) {
  if (st->signal != 0) {
    const char *name = sb_signal_name(st->signal);
    return name != NULL ? add_item(e, "signal", cJSON_CreateString(name)) : SB_EINVAL;
  }
  if (st->code < 0 || st->code > 255)
    return SB_EINVAL;
  return add_int(e, "code", st->code);
}

static int build_signal(ectx *e, int signum) {
  const char *name = sb_signal_name(signum);
  return name != NULL ? add_item(e, "signal", cJSON_CreateString(name)) : SB_EINVAL;
}

static int build_reject(ectx *e, sb_reason reason, const char *message) {
  const char *name = sb_reason_name(reason);
  int r;
  if (name == NULL)
    return SB_EINVAL;
  if ((r = add_item(e, "reason", cJSON_CreateString(name))) < 0)
    return r;
  return add_str(e, "message", message);
}

static int build_stream_error(ectx *e, int stream, int err, const char *message) {
  int r;
  if ((stream != 1 && stream != 2) || err >= 0 || err < -4095)
    return SB_EINVAL;
  if ((r = add_item(e, "stream", cJSON_CreateString(stream == 1 ? "stdout" : "stderr"))) <
          0 ||
      (r = add_int(e, "errno", -err)) < 0)
    return r;
  return add_str(e, "message", message);
}

/* env and unset go out only when they hold something: absent and empty
 * mean the same, and most calls change nothing. */
static int build_launch(ectx *e, const sb_launch *l, bool run) {
  int r;
  if (l->argv.n == 0)
    return SB_EINVAL;
  if ((r = add_strv(e, "argv", &l->argv, 0)) < 0)
    return r;
  if (l->path != NULL && (r = add_bytes(e, "path", l->path)) < 0)
    return r;
  if (l->cwd != NULL && (r = add_bytes(e, "cwd", l->cwd)) < 0)
    return r;
  if (l->set.n > 0 && (r = add_strv(e, "env", &l->set, ENC_ENV)) < 0)
    return r;
  if (l->unset.n > 0 && (r = add_strv(e, "unset", &l->unset, ENC_NAME)) < 0)
    return r;
  if (run && l->tee)
    return add_bool(e, "tee", true);
  return 0;
}

/* "stdin" goes out only when it is not the default (true). */
static int build_welcome(ectx *e, int version, bool hold_stdin) {
  int r;
  if (version < 1 || version > 65535)
    return SB_EINVAL;
  if ((r = add_int(e, "version", version)) < 0 || !hold_stdin)
    return r;
  return add_bool(e, "stdin", false);
}

static int build(ectx *e, const sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    return build_hello(e, &m->u.hello);
  case SB_MSG_WELCOME:
    return build_welcome(e, m->u.welcome.version, m->u.welcome.hold_stdin);
  case SB_MSG_REJECT:
    return build_reject(e, m->u.reject.reason, m->u.reject.message);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return build_status(e, &m->u.exit);
  case SB_MSG_SIGNAL:
    return build_signal(e, m->u.signal.signal);
  case SB_MSG_STREAM_ERROR:
    return build_stream_error(e, m->u.stream_error.stream, m->u.stream_error.err,
                              m->u.stream_error.message);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return build_launch(e, &m->u.launch, m->type == SB_MSG_RUN);
  case SB_MSG_WINSIZE:
    return add_winsize(e, &m->u.winsize);
  case SB_MSG_PTY:
    return 0;
  }
  return SB_EINVAL;
}

/* The rare way: print to a fresh string to learn the exact size, for a
 * message close to or over max_bytes. */
static int print_exact(const cJSON *root, uint32_t max_bytes, uint8_t **frame,
                       size_t *frame_len) {
  char *json = cJSON_PrintUnformatted(root);
  if (json == NULL)
    return SB_ENOMEM;
  size_t n = strlen(json);
  int r = 0;
  if (n + 1 > max_bytes) {
    r = SB_EMSGSIZE;
    goto out;
  }
  *frame = malloc(SB_FRAME_HEADER + n);
  if (*frame == NULL) {
    r = SB_ENOMEM;
    goto out;
  }
  memcpy(*frame + SB_FRAME_HEADER, json, n);
  *frame_len = SB_FRAME_HEADER + n;
out:
  free(json);
  return r;
}

/* Prints straight into the frame buffer, behind room kept for the header,
 * so the JSON text is never copied. cJSON cannot say how much it needs, so
 * a buffer too small is grown and the print tried again. */
static int print_frame(const cJSON *root, size_t hint, uint32_t max_bytes,
                       uint8_t **frame, size_t *frame_len) {
  /* cJSON asks for a few bytes more than it writes (26 for a number), so a
   * print that fails in max_bytes plus this slack is surely too large. */
  const size_t slack = 64;
  size_t cap = hint < 256 ? 256 : hint;

  for (;;) {
    if (cap > (size_t)max_bytes + slack)
      cap = (size_t)max_bytes + slack;
    uint8_t *buf = malloc(SB_FRAME_HEADER + cap);
    if (buf == NULL)
      return SB_ENOMEM;
    if (cJSON_PrintPreallocated((cJSON *)root, (char *)buf + SB_FRAME_HEADER, (int)cap,
                                false)) {
      size_t n = strlen((char *)buf + SB_FRAME_HEADER);
      if (n + 1 > max_bytes) {
        free(buf);
        return SB_EMSGSIZE;
      }
      /* Give back what the guess had in excess. */
      uint8_t *shrunk = realloc(buf, SB_FRAME_HEADER + n);
      *frame = shrunk != NULL ? shrunk : buf;
      *frame_len = SB_FRAME_HEADER + n;
      return 0;
    }
    free(buf);
    if (cap >= (size_t)max_bytes + slack)
      return print_exact(root, max_bytes, frame, frame_len);
    cap *= 2;
  }
}

int sb_msg_encode(const sb_msg *m, uint32_t max_bytes, uint8_t **frame,
                  size_t *frame_len) {
  const char *type = sb_msg_type_name(m->type);
  ectx e = {cJSON_CreateObject(), 0};
  int r;

  *frame = NULL;
  *frame_len = 0;
  if (max_bytes == 0)
    max_bytes = SB_DEFAULT_MAX_BYTES;
  if (type == NULL) {
    r = SB_EINVAL;
    goto out;
  }
  if (e.obj == NULL) {
    r = SB_ENOMEM;
    goto out;
  }
  if ((r = add_item(&e, "type", cJSON_CreateString(type))) < 0 || (r = build(&e, m)) < 0)
    goto out;
  if ((r = print_frame(e.obj, 64 + e.text + e.text / 8, max_bytes, frame, frame_len)) < 0)
    goto out;
  sb_frame_header(*frame, SB_KIND_CONTROL, (uint32_t)(*frame_len - SB_FRAME_HEADER));
out:
  cJSON_Delete(e.obj);
  return r;
}
