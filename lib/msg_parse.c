/* SPDX-License-Identifier: MIT */
/* msg_parse.c - sb__msg_parse_cjson: the reference the one-pass parser
 * (sb_msg_parse, msg_lite_parse.c) is held to by tests/unit/test_lite.c and
 * tests/fuzz/fuzz_lite.c. The payload checks, a cJSON parse, and reading and
 * validating the members of each control message, with the path of a bad
 * member ("hello.argv[3]") in the diag: the same rules written over a
 * tree, so that a mistake would have to be made twice the same way. */
#include "proto.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The object being read and its path ("hello", "hello.tty"). */
typedef struct pctx {
  const cJSON *obj;
  const char *path;
  sb_diag *diag;
} pctx;

static int bad(const pctx *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const pctx *c, const char *name, const char *fmt, ...) {
  if (c->diag != NULL) {
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sb_diag_set(c->diag, SB_EBADMSG, "%s.%s: %s", c->path, name, what);
  }
  return SB_EBADMSG;
}

/* Finds a member by name. A member given twice is refused: two parsers
 * might pick different ones. Missing is an error only when required. */
static int member(const pctx *c, const char *name, bool required, const cJSON **out) {
  const cJSON *found = NULL, *it;
  *out = NULL; /* on every path, so no caller reads an unset pointer */
  cJSON_ArrayForEach(it, c->obj) {
    if (it->string == NULL || strcmp(it->string, name) != 0)
      continue;
    if (found != NULL)
      return bad(c, name, "given twice");
    found = it;
  }
  if (found == NULL && required)
    return bad(c, name, "missing");
  *out = found;
  return 0;
}

/* An optional member given as null counts as absent. */
static int optional(const pctx *c, const char *name, const cJSON **out) {
  int r = member(c, name, false, out);
  if (r == 0 && cJSON_IsNull(*out))
    *out = NULL;
  return r;
}

static int get_int(const pctx *c, const cJSON *it, const char *name, int64_t lo,
                   int64_t hi, int64_t *out) {
  *out = 0;
  if (!cJSON_IsNumber(it))
    return bad(c, name, "expected an integer");
  double d = it->valuedouble;
  if (!(d >= (double)lo && d <= (double)hi))
    return bad(c, name, "expected an integer in %lld..%lld", (long long)lo,
               (long long)hi);
  if ((double)(int64_t)d != d)
    return bad(c, name, "expected an integer");
  *out = (int64_t)d;
  return 0;
}

static int req_int(const pctx *c, const char *name, int64_t lo, int64_t hi,
                   int64_t *out) {
  const cJSON *it = NULL;
  int r = member(c, name, true, &it);
  return r < 0 ? r : get_int(c, it, name, lo, hi, out);
}

static int req_bool(const pctx *c, const char *name, bool *out) {
  const cJSON *it = NULL;
  *out = false;
  int r = member(c, name, true, &it);
  if (r < 0)
    return r;
  if (!cJSON_IsBool(it))
    return bad(c, name, "expected true or false");
  *out = cJSON_IsTrue(it);
  return 0;
}

/* A required JSON string member, borrowed from the tree. */
static int req_str(const pctx *c, const char *name, const char **out) {
  const cJSON *it = NULL;
  int r = member(c, name, true, &it);
  if (r < 0)
    return r;
  if (!cJSON_IsString(it))
    return bad(c, name, "expected a string");
  *out = it->valuestring;
  return 0;
}

static int dup_str(const pctx *c, const char *name, char **out) {
  const char *s;
  int r = req_str(c, name, &s);
  if (r < 0)
    return r;
  *out = strdup(s);
  return *out != NULL ? 0 : SB_ENOMEM;
}

static int get_bytes(const pctx *c, const cJSON *it, const char *name, char **out) {
  char path[96];
  snprintf(path, sizeof path, "%s.%s", c->path, name);
  return sb__json_bytes_get(it, path, out, c->diag);
}

/* A byte string member; with or_null, null gives NULL. */
static int req_bytes(const pctx *c, const char *name, bool or_null, char **out) {
  const cJSON *it = NULL;
  int r = member(c, name, true, &it);
  if (r < 0)
    return r;
  if (or_null && cJSON_IsNull(it))
    return 0;
  return get_bytes(c, it, name, out);
}

static int opt_bytes(const pctx *c, const char *name, char **out) {
  const cJSON *it = NULL;
  int r = optional(c, name, &it);
  if (r < 0 || it == NULL)
    return r;
  return get_bytes(c, it, name, out);
}

static bool is_token_var(const char *entry) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  return strncmp(entry, prefix, sizeof prefix - 1) == 0;
}

/* Flags of an array of byte strings. */
#define STRV_ENV 1u        /* every entry must contain '=' */
#define STRV_DROP_TOKEN 2u /* leave SOCKETBRIDGE_TOKEN=... out */
#define STRV_NONEMPTY 4u   /* at least one entry */
#define STRV_NAME 8u       /* every entry is a variable name: not empty, no '=' */

static int get_strv(const pctx *c, const cJSON *arr, const char *name, unsigned flags,
                    sb_strv *out) {
  char path[96];
  int r;

  if (!cJSON_IsArray(arr))
    return bad(c, name, "expected an array");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  if (n == 0 && (flags & STRV_NONEMPTY))
    return bad(c, name, "must not be empty");
  if ((r = sb__strv_alloc(out, n)) < 0)
    return r;

  size_t i = 0;
  const cJSON *it = NULL;
  cJSON_ArrayForEach(it, arr) {
    char *s;
    snprintf(path, sizeof path, "%s.%s[%zu]", c->path, name, i++);
    if ((r = sb__json_bytes_get(it, path, &s, c->diag)) < 0)
      return r;
    if ((flags & STRV_ENV) && strchr(s, '=') == NULL) {
      free(s);
      return sb_diag_set(c->diag, SB_EBADMSG, "%s: expected NAME=VALUE (no '=')", path);
    }
    if ((flags & STRV_NAME) && (*s == '\0' || strchr(s, '=') != NULL)) {
      free(s);
      return sb_diag_set(c->diag, SB_EBADMSG, "%s: expected a variable name", path);
    }
    /* Defence in depth: the token must not reach a child's environment
     * through a stub that forgot to leave it out. */
    if ((flags & STRV_DROP_TOKEN) && is_token_var(s)) {
      explicit_bzero(s, strlen(s));
      free(s);
      continue;
    }
    out->v[out->n++] = s;
  }
  return 0;
}

static int req_strv(const pctx *c, const char *name, unsigned flags, sb_strv *out) {
  const cJSON *it = NULL;
  int r = member(c, name, true, &it);
  return r < 0 ? r : get_strv(c, it, name, flags, out);
}

/* ---- the messages ----------------------------------------------------- */

static int parse_tty(const pctx *c, unsigned *tty) {
  const cJSON *it = NULL;
  bool in, out, err;
  int r = member(c, "tty", true, &it);
  if (r < 0)
    return r;
  if (!cJSON_IsObject(it))
    return bad(c, "tty",
               "expected an object {\"stdin\": bool, \"stdout\": bool, "
               "\"stderr\": bool}");
  pctx t = {it, "hello.tty", c->diag};
  if ((r = req_bool(&t, "stdin", &in)) < 0 || (r = req_bool(&t, "stdout", &out)) < 0 ||
      (r = req_bool(&t, "stderr", &err)) < 0)
    return r;
  *tty = (in ? SB_TTY_STDIN : 0) | (out ? SB_TTY_STDOUT : 0) | (err ? SB_TTY_STDERR : 0);
  return 0;
}

/* rows and cols of c's object. */
static int get_winsize(const pctx *c, sb_winsize *ws) {
  int64_t rows, cols;
  int r;
  if ((r = req_int(c, "rows", 0, 65535, &rows)) < 0 ||
      (r = req_int(c, "cols", 0, 65535, &cols)) < 0)
    return r;
  ws->rows = (uint16_t)rows;
  ws->cols = (uint16_t)cols;
  return 0;
}

/* hello's optional "winsize" object. */
static int parse_hello_winsize(const pctx *c, sb_hello *h) {
  const cJSON *it = NULL;
  int r = optional(c, "winsize", &it);
  if (r < 0 || it == NULL)
    return r;
  if (!cJSON_IsObject(it))
    return bad(c, "winsize", "expected an object {\"rows\": int, \"cols\": int}");
  pctx w = {it, "hello.winsize", c->diag};
  h->has_winsize = true;
  return get_winsize(&w, &h->winsize);
}

static int parse_token(const pctx *c, char token[SB_TOKEN_HEX + 1]) {
  const char *s;
  int r = req_str(c, "token", &s);
  if (r < 0)
    return r;
  /* Never quote it: even a wrong token may be someone's secret. */
  if (!sb_token_valid(s))
    return bad(c, "token", "not %d lowercase hex digits", SB_TOKEN_HEX);
  memcpy(token, s, SB_TOKEN_HEX + 1);
  return 0;
}

static int parse_hello(const pctx *c, sb_hello *h) {
  const cJSON *it = NULL;
  int64_t v, min, pid, ppid;
  int r;

  if ((r = req_int(c, "version", 1, 65535, &v)) < 0)
    return r;
  h->version = (int)v;
  if ((r = optional(c, "min_version", &it)) < 0)
    return r;
  min = v;
  if (it != NULL && (r = get_int(c, it, "min_version", 1, v, &min)) < 0)
    return r;
  h->min_version = (int)min;
  if ((r = parse_token(c, h->token)) < 0 ||
      (r = req_int(c, "pid", 1, INT32_MAX, &pid)) < 0 ||
      (r = req_int(c, "ppid", 0, INT32_MAX, &ppid)) < 0)
    return r;
  h->pid = pid;
  h->ppid = ppid;
  if ((r = req_strv(c, "argv", 0, &h->argv)) < 0 ||
      (r = req_strv(c, "env", STRV_ENV | STRV_DROP_TOKEN, &h->env)) < 0 ||
      (r = req_bytes(c, "cwd", true, &h->cwd)) < 0 ||
      (r = req_bytes(c, "exe", true, &h->exe)) < 0 || (r = parse_tty(c, &h->tty)) < 0)
    return r;
  return parse_hello_winsize(c, h);
}

/* An optional bool member; absent (or null) leaves *out as it is. */
static int opt_bool(const pctx *c, const char *name, bool *out) {
  const cJSON *it = NULL;
  int r = optional(c, name, &it);
  if (r < 0 || it == NULL)
    return r;
  if (!cJSON_IsBool(it))
    return bad(c, name, "expected true or false");
  *out = cJSON_IsTrue(it);
  return 0;
}

static int parse_welcome(const pctx *c, sb_msg *m) {
  int64_t v;
  bool relay_stdin = true;
  int r = req_int(c, "version", 1, 65535, &v);
  if (r < 0 || (r = opt_bool(c, "stdin", &relay_stdin)) < 0)
    return r;
  m->u.welcome.version = (int)v;
  m->u.welcome.hold_stdin = !relay_stdin;
  return 0;
}

static int parse_reject(const pctx *c, sb_msg *m) {
  const char *reason;
  char q[64];
  int r = req_str(c, "reason", &reason);
  if (r < 0)
    return r;
  m->u.reject.reason = sb_reason_from_name(reason);
  if (m->u.reject.reason == 0) {
    sb__quote(q, sizeof q, reason);
    return bad(c, "reason", "unknown reason %s", q);
  }
  return dup_str(c, "message", &m->u.reject.message);
}

static int parse_signal_name(const pctx *c, const cJSON *it, const char *name, int *out) {
  char q[48];
  if (!cJSON_IsString(it))
    return bad(c, name, "expected a signal name (\"TERM\")");
  *out = sb__signal_from_wire(it->valuestring);
  if (*out == 0) {
    sb__quote(q, sizeof q, it->valuestring);
    return bad(c, name, "unknown signal name %s", q);
  }
  return 0;
}

/* exit and exited: a code or a signal, exactly one. */
static int parse_status(const pctx *c, sb_status *st) {
  const cJSON *code, *sig;
  int64_t v;
  int r;

  if ((r = member(c, "code", false, &code)) < 0 ||
      (r = member(c, "signal", false, &sig)) < 0)
    return r;
  if ((code == NULL) == (sig == NULL))
    return sb_diag_set(c->diag, SB_EBADMSG, "%s: needs exactly one of code and signal",
                       c->path);
  if (sig != NULL)
    return parse_signal_name(c, sig, "signal", &st->signal);
  if ((r = get_int(c, code, "code", 0, 255, &v)) < 0)
    return r;
  st->code = (int)v;
  return 0;
}

static int parse_signal(const pctx *c, sb_msg *m) {
  const cJSON *it = NULL;
  int r = member(c, "signal", true, &it);
  return r < 0 ? r : parse_signal_name(c, it, "signal", &m->u.signal.signal);
}

static int parse_stream_error(const pctx *c, sb_msg *m) {
  const char *stream;
  int64_t err;
  int r;

  if ((r = req_str(c, "stream", &stream)) < 0)
    return r;
  if (strcmp(stream, "stdout") == 0)
    m->u.stream_error.stream = 1;
  else if (strcmp(stream, "stderr") == 0)
    m->u.stream_error.stream = 2;
  else
    return bad(c, "stream", "expected \"stdout\" or \"stderr\"");
  if ((r = req_int(c, "errno", 1, 4095, &err)) < 0)
    return r;
  m->u.stream_error.err = (int)-err;
  return dup_str(c, "message", &m->u.stream_error.message);
}

/* An optional array of byte strings; absent gives an empty vector (v[0]
 * is NULL, as sb_strv promises), not a NULL one. */
static int opt_strv(const pctx *c, const char *name, unsigned flags, sb_strv *out) {
  const cJSON *it = NULL;
  int r = optional(c, name, &it);
  if (r < 0)
    return r;
  return it != NULL ? get_strv(c, it, name, flags, out) : sb__strv_alloc(out, 0);
}

static int parse_launch(const pctx *c, sb_launch *l, bool run) {
  int r;
  if ((r = req_strv(c, "argv", STRV_NONEMPTY, &l->argv)) < 0 ||
      (r = opt_bytes(c, "path", &l->path)) < 0 ||
      (r = opt_bytes(c, "cwd", &l->cwd)) < 0 ||
      (r = opt_strv(c, "env", STRV_ENV, &l->set)) < 0 ||
      (r = opt_strv(c, "unset", STRV_NAME, &l->unset)) < 0)
    return r;
  return run ? opt_bool(c, "tee", &l->tee) : 0;
}

static int parse_body(const pctx *c, sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    return parse_hello(c, &m->u.hello);
  case SB_MSG_WELCOME:
    return parse_welcome(c, m);
  case SB_MSG_REJECT:
    return parse_reject(c, m);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return parse_status(c, &m->u.exit);
  case SB_MSG_SIGNAL:
    return parse_signal(c, m);
  case SB_MSG_STREAM_ERROR:
    return parse_stream_error(c, m);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return parse_launch(c, &m->u.launch, m->type == SB_MSG_RUN);
  case SB_MSG_WINSIZE:
    return get_winsize(c, &m->u.winsize);
  case SB_MSG_PTY:
    return 0;
  }
  return SB_EBADMSG;
}

int sb__msg_parse_object(const cJSON *root, sb_msg *out, sb_diag *diag) {
  pctx c = {root, "message", diag};
  const char *type = NULL;
  char q[48];
  int r;

  if ((r = req_str(&c, "type", &type)) < 0)
    return r;
  out->type = sb__msg_type_from_name(type);
  if (out->type == 0) {
    sb__quote(q, sizeof q, type);
    return sb_diag_set(diag, SB_EBADMSG, "message.type: unknown type %s", q);
  }
  c.path = sb_msg_type_name(out->type);
  return parse_body(&c, out);
}

/* ---- the whole payload ------------------------------------------------ */

static bool is_json_space(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int parse_json(const uint8_t *payload, size_t len, cJSON **root, sb_diag *diag) {
  const char *end = NULL;
  int r;

  if (len == 0)
    return sb_diag_set(diag, SB_EBADMSG, "control message: empty payload");
  if ((r = sb__json_precheck(payload, len, diag)) < 0)
    return r;
  *root = cJSON_ParseWithLengthOpts((const char *)payload, len, &end, false);
  if (*root == NULL) {
    size_t at = end != NULL ? (size_t)((const uint8_t *)end - payload) : 0;
    return sb_diag_set(
        diag, SB_EBADMSG,
        "control message: invalid JSON (or nested deeper than %d) at offset "
        "%zu",
        CJSON_NESTING_LIMIT, at);
  }
  size_t at = (size_t)((const uint8_t *)end - payload);
  while (at < len && is_json_space(payload[at]))
    at++;
  if (at < len)
    return sb_diag_set(diag, SB_EBADMSG,
                       "control message: data after the JSON value at offset %zu", at);
  if (!cJSON_IsObject(*root))
    return sb_diag_set(diag, SB_EBADMSG, "control message: not a JSON object");
  return 0;
}

int sb__msg_parse_cjson(const uint8_t *payload, size_t len, sb_msg *out, sb_diag *diag) {
  cJSON *root = NULL;

  memset(out, 0, sizeof *out);
  int r = parse_json(payload, len, &root, diag);
  if (r < 0)
    goto out;

  r = sb__msg_parse_object(root, out, diag);

out:
  cJSON_Delete(root);
  if (r < 0)
    sb_msg_free(out);
  return r;
}
