/* SPDX-License-Identifier: MIT */
/* msg_parse.c - sb_msg_parse, for the stub and the supervisor alike: no
 * tree. The payload is checked and its members indexed in one pass
 * (json_read.c); the members of the type are then read from where they
 * are.
 *
 * Names given twice (docs/protocol.md section 2): a member the type reads
 * is refused when given twice (two readers might pick different ones);
 * other members are ignored, duplicates included; in a byte string object,
 * the first "base64" is the one read. */
#include "proto.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every member name of every message type: one index serves all types. */
static const char *const top_names[] = {
    "type",   "version", "min_version", "token", "pid",    "ppid",    "argv", "env",
    "cwd",    "exe",     "tty",         "stdin", "reason", "message", "code", "signal",
    "stream", "errno",   "path",        "unset", "tee",    "winsize", "rows", "cols",
};
static const char *const tty_names[] = {"stdin", "stdout", "stderr"};
static const char *const winsize_names[] = {"rows", "cols"};
static const char *const bytes_names[] = {"base64"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
_Static_assert(COUNT(top_names) <= SB_JR_MAX_NAMES, "index too small");

/* No member there. */
#define ABSENT ((size_t)-1)

/* The object being read, its members and its path ("hello", "hello.tty"). */
typedef struct lctx {
  const sb_jr *j;
  const sb_jr_index *ix;
  const char *path;
  sb_diag *diag;
} lctx;

static int bad(const lctx *c, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const lctx *c, const char *name, const char *fmt, ...) {
  if (c->diag != NULL) {
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    SB_VSNPRINTF(what, sizeof what, fmt, ap);
    va_end(ap);
    sb_diag_set(c->diag, SB_EBADMSG, "%s.%s: %s", c->path, name, what);
  }
  return SB_EBADMSG;
}

static sb_jr_kind kind(const lctx *c, size_t at) {
  return at == ABSENT ? SB_JR_BAD : sb_jr_kind_at(c->j, at);
}

/* Finds a member by name (*at: its value, or ABSENT). Given twice is
 * refused; missing is an error only when required. */
static int member(const lctx *c, const char *name, bool required, size_t *at) {
  *at = ABSENT;
  for (size_t k = 0; k < c->ix->n; k++) {
    if (strcmp(c->ix->names[k], name) != 0)
      continue;
    if (c->ix->count[k] > 1)
      return bad(c, name, "given twice");
    if (c->ix->count[k] == 1)
      *at = c->ix->at[k];
    break;
  }
  if (*at == ABSENT && required)
    return bad(c, name, "missing");
  return 0;
}

/* An optional member given as null counts as absent. */
static int optional(const lctx *c, const char *name, size_t *at) {
  int r = member(c, name, false, at);
  if (r == 0 && kind(c, *at) == SB_JR_NULL)
    *at = ABSENT;
  return r;
}

static int get_int(const lctx *c, size_t at, const char *name, int64_t lo, int64_t hi,
                   int64_t *out) {
  *out = 0;
  if (kind(c, at) != SB_JR_NUMBER)
    return bad(c, name, "expected an integer");
  int r = sb_jr_int(c->j, at, lo, hi, out);
  if (r == SB_JR_INT_RANGE)
    return bad(c, name, "expected an integer in %lld..%lld", (long long)lo,
               (long long)hi);
  if (r == SB_JR_INT_FRACTION)
    return bad(c, name, "expected an integer");
  return r;
}

static int req_int(const lctx *c, const char *name, int64_t lo, int64_t hi,
                   int64_t *out) {
  size_t at;
  int r = member(c, name, true, &at);
  return r < 0 ? r : get_int(c, at, name, lo, hi, out);
}

static int get_bool(const lctx *c, size_t at, const char *name, bool *out) {
  sb_jr_kind k = kind(c, at);
  if (k != SB_JR_TRUE && k != SB_JR_FALSE)
    return bad(c, name, "expected true or false");
  *out = k == SB_JR_TRUE;
  return 0;
}

static int req_bool(const lctx *c, const char *name, bool *out) {
  size_t at;
  *out = false;
  int r = member(c, name, true, &at);
  return r < 0 ? r : get_bool(c, at, name, out);
}

/* An optional bool member; absent (or null) leaves *out as it is. */
static int opt_bool(const lctx *c, const char *name, bool *out) {
  size_t at;
  int r = optional(c, name, &at);
  return r < 0 || at == ABSENT ? r : get_bool(c, at, name, out);
}

/* A required JSON string member, decoded into a fresh string. */
static int req_str(const lctx *c, const char *name, char **out) {
  size_t at;
  *out = NULL;
  int r = member(c, name, true, &at);
  if (r < 0)
    return r;
  if (kind(c, at) != SB_JR_STRING)
    return bad(c, name, "expected a string");
  return sb_jr_string(c->j, at, out);
}

/* ---- byte strings ---------------------------------------------------------- */

/* Where a byte string is, for a diag: c->path.name, or c->path.name[i].
 * Formatted only when something is wrong: env may have many entries. */
typedef struct where {
  const lctx *c;
  const char *name;
  size_t i; /* ABSENT: not in an array */
} where;

static int bad_bytes(const where *w, const char *what) {
  if (w->c->diag == NULL)
    return SB_EBADMSG;
  if (w->i == ABSENT)
    return sb_diag_set(w->c->diag, SB_EBADMSG, "%s.%s%s", w->c->path, w->name, what);
  return sb_diag_set(w->c->diag, SB_EBADMSG, "%s.%s[%zu]%s", w->c->path, w->name, w->i,
                     what);
}

/* {"base64": "..."}: strict base64 of bytes without a NUL. */
static int bytes_from_b64(const where *w, size_t at, char **out) {
  sb_jr_index ix = {bytes_names, COUNT(bytes_names), {0}, {0}};
  char *b64;
  int r = sb_jr_object_index(w->c->j, at, &ix);
  if (r < 0)
    return r;
  if (ix.count[0] == 0 || sb_jr_kind_at(w->c->j, ix.at[0]) != SB_JR_STRING)
    return bad_bytes(w, ": expected a string or {\"base64\": ...}");
  if ((r = sb_jr_string(w->c->j, ix.at[0], &b64)) < 0)
    return r;
  size_t len = strlen(b64);
  char *s = malloc(len / 4 * 3 + 1);
  ptrdiff_t n = s != NULL ? sb__b64_decode(b64, len, (uint8_t *)s) : 0;
  free(b64);
  if (s == NULL)
    return SB_ENOMEM;
  if (n < 0 || memchr(s, '\0', (size_t)n) != NULL) {
    free(s);
    return bad_bytes(w, n < 0 ? ".base64: not padded RFC 4648 base64"
                              : ".base64: decodes to bytes with a NUL");
  }
  s[n] = '\0';
  *out = s;
  return 0;
}

static int get_bytes(const where *w, size_t at, char **out) {
  *out = NULL;
  switch (kind(w->c, at)) {
  case SB_JR_STRING:
    /* The payload check refused \u0000, so the string is whole. */
    return sb_jr_string(w->c->j, at, out);
  case SB_JR_OBJECT:
    return bytes_from_b64(w, at, out);
  default:
    return bad_bytes(w, ": expected a string or {\"base64\": ...}");
  }
}

/* A byte string member; with or_null, null gives NULL. */
static int req_bytes(const lctx *c, const char *name, bool or_null, char **out) {
  where w = {c, name, ABSENT};
  size_t at;
  int r = member(c, name, true, &at);
  if (r < 0)
    return r;
  if (or_null && kind(c, at) == SB_JR_NULL)
    return 0;
  return get_bytes(&w, at, out);
}

static int opt_bytes(const lctx *c, const char *name, char **out) {
  where w = {c, name, ABSENT};
  size_t at;
  int r = optional(c, name, &at);
  return r < 0 || at == ABSENT ? r : get_bytes(&w, at, out);
}

/* Flags of an array of byte strings. */
#define STRV_ENV 1u        /* every entry must contain '=' */
#define STRV_DROP_TOKEN 2u /* leave SOCKETBRIDGE_TOKEN=... out */
#define STRV_NONEMPTY 4u   /* at least one entry */
#define STRV_NAME 8u       /* every entry is a variable name: not empty, no '=' */

/* Checks entry s of an array against flags; frees it when refused. */
static int entry_check(const where *w, char *s, unsigned flags) {
  if ((flags & STRV_ENV) && !sb__env_has_value(s)) {
    free(s);
    return bad_bytes(w, ": expected NAME=VALUE (no '=')");
  }
  if ((flags & STRV_NAME) && (*s == '\0' || sb__env_has_value(s))) {
    free(s);
    return bad_bytes(w, ": expected a variable name");
  }
  return 0;
}

/* Appends s to out, keeping v[n] NULL, the vector grown by doubling: an
 * array is walked once, not once to count it and once more to read it. */
static int strv_push(sb_strv *out, size_t *cap, char *s) {
  if (out->n == *cap) {
    char **v = realloc(out->v, (2 * *cap + 1) * sizeof *v);
    if (v == NULL) {
      free(s);
      return SB_ENOMEM;
    }
    out->v = v;
    *cap *= 2;
  }
  out->v[out->n++] = s;
  out->v[out->n] = NULL;
  return 0;
}

static int get_strv(const lctx *c, size_t arr, const char *name, unsigned flags,
                    sb_strv *out) {
  where w = {c, name, 0};
  size_t elem, cap = 16;
  int r;

  if (kind(c, arr) != SB_JR_ARRAY)
    return bad(c, name, "expected an array");
  if ((r = sb__strv_alloc(out, cap)) < 0)
    return r;
  for (; (r = sb_jr_array_next(c->j, &arr, &elem)) > 0; w.i++) {
    char *s;
    if ((r = get_bytes(&w, elem, &s)) < 0 || (r = entry_check(&w, s, flags)) < 0)
      return r;
    /* Defence in depth: the token must not reach a child's environment
     * through a stub that forgot to leave it out. */
    if ((flags & STRV_DROP_TOKEN) && sb__env_is(s, SB_ENV_TOKEN)) {
      explicit_bzero(s, strlen(s));
      free(s);
      continue;
    }
    if ((r = strv_push(out, &cap, s)) < 0)
      return r;
  }
  if (r == 0 && w.i == 0 && (flags & STRV_NONEMPTY))
    return bad(c, name, "must not be empty");
  return r;
}

static int req_strv(const lctx *c, const char *name, unsigned flags, sb_strv *out) {
  size_t at;
  int r = member(c, name, true, &at);
  return r < 0 ? r : get_strv(c, at, name, flags, out);
}

/* An optional array of byte strings; absent gives an empty vector (v[0]
 * is NULL, as sb_strv promises), not a NULL one. */
static int opt_strv(const lctx *c, const char *name, unsigned flags, sb_strv *out) {
  size_t at;
  int r = optional(c, name, &at);
  if (r < 0)
    return r;
  return at != ABSENT ? get_strv(c, at, name, flags, out) : sb__strv_alloc(out, 0);
}

/* ---- the messages ----------------------------------------------------- */

static int parse_tty(const lctx *c, unsigned *tty) {
  sb_jr_index ix = {tty_names, COUNT(tty_names), {0}, {0}};
  bool in, out, err;
  size_t at;
  int r = member(c, "tty", true, &at);
  if (r < 0)
    return r;
  if (kind(c, at) != SB_JR_OBJECT)
    return bad(c, "tty",
               "expected an object {\"stdin\": bool, \"stdout\": bool, "
               "\"stderr\": bool}");
  if ((r = sb_jr_object_index(c->j, at, &ix)) < 0)
    return r;
  lctx t = {c->j, &ix, "hello.tty", c->diag};
  if ((r = req_bool(&t, "stdin", &in)) < 0 || (r = req_bool(&t, "stdout", &out)) < 0 ||
      (r = req_bool(&t, "stderr", &err)) < 0)
    return r;
  *tty = (in ? SB_TTY_STDIN : 0) | (out ? SB_TTY_STDOUT : 0) | (err ? SB_TTY_STDERR : 0);
  return 0;
}

/* rows and cols of c's object. */
static int get_winsize(const lctx *c, sb_winsize *ws) {
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
static int parse_hello_winsize(const lctx *c, sb_hello *h) {
  sb_jr_index ix = {winsize_names, COUNT(winsize_names), {0}, {0}};
  size_t at;
  int r = optional(c, "winsize", &at);
  if (r < 0 || at == ABSENT)
    return r;
  if (kind(c, at) != SB_JR_OBJECT)
    return bad(c, "winsize", "expected an object {\"rows\": int, \"cols\": int}");
  if ((r = sb_jr_object_index(c->j, at, &ix)) < 0)
    return r;
  lctx w = {c->j, &ix, "hello.winsize", c->diag};
  h->has_winsize = true;
  return get_winsize(&w, &h->winsize);
}

static int parse_token(const lctx *c, char token[SB_TOKEN_HEX + 1]) {
  char *s;
  int r = req_str(c, "token", &s);
  if (r < 0)
    return r;
  /* Never quote it: even a wrong token may be someone's secret. */
  if (sb_token_valid(s))
    memcpy(token, s, SB_TOKEN_HEX + 1);
  else
    r = bad(c, "token", "not %d lowercase hex digits", SB_TOKEN_HEX);
  explicit_bzero(s, strlen(s));
  free(s);
  return r;
}

static int parse_hello(const lctx *c, sb_hello *h) {
  size_t at;
  int64_t v, min, pid, ppid;
  int r;

  if ((r = req_int(c, "version", 1, 65535, &v)) < 0)
    return r;
  h->version = (int)v;
  if ((r = optional(c, "min_version", &at)) < 0)
    return r;
  min = v;
  if (at != ABSENT && (r = get_int(c, at, "min_version", 1, v, &min)) < 0)
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

static int parse_welcome(const lctx *c, sb_msg *m) {
  int64_t v;
  bool relay_stdin = true;
  int r = req_int(c, "version", 1, 65535, &v);
  if (r < 0 || (r = opt_bool(c, "stdin", &relay_stdin)) < 0)
    return r;
  m->u.welcome.version = (int)v;
  m->u.welcome.hold_stdin = !relay_stdin;
  return 0;
}

static int parse_reject(const lctx *c, sb_msg *m) {
  char *reason, q[64];
  int r = req_str(c, "reason", &reason);
  if (r < 0)
    return r;
  m->u.reject.reason = sb_reason_from_name(reason);
  if (m->u.reject.reason == 0) {
    sb__quote(q, sizeof q, reason);
    r = bad(c, "reason", "unknown reason %s", q);
  }
  free(reason);
  return r < 0 ? r : req_str(c, "message", &m->u.reject.message);
}

static int parse_signal_name(const lctx *c, size_t at, const char *name, int *out) {
  char *s, q[48];
  if (kind(c, at) != SB_JR_STRING)
    return bad(c, name, "expected a signal name (\"TERM\")");
  int r = sb_jr_string(c->j, at, &s);
  if (r < 0)
    return r;
  *out = sb__signal_from_wire(s);
  if (*out == 0) {
    sb__quote(q, sizeof q, s);
    r = bad(c, name, "unknown signal name %s", q);
  }
  free(s);
  return r;
}

/* exit and exited: a code or a signal, exactly one (null counts as given). */
static int parse_status(const lctx *c, sb_status *st) {
  size_t code, sig;
  int64_t v;
  int r;

  if ((r = member(c, "code", false, &code)) < 0 ||
      (r = member(c, "signal", false, &sig)) < 0)
    return r;
  if ((code == ABSENT) == (sig == ABSENT))
    return sb_diag_set(c->diag, SB_EBADMSG, "%s: needs exactly one of code and signal",
                       c->path);
  if (sig != ABSENT)
    return parse_signal_name(c, sig, "signal", &st->signal);
  if ((r = get_int(c, code, "code", 0, 255, &v)) < 0)
    return r;
  st->code = (int)v;
  return 0;
}

static int parse_signal(const lctx *c, sb_msg *m) {
  size_t at;
  int r = member(c, "signal", true, &at);
  return r < 0 ? r : parse_signal_name(c, at, "signal", &m->u.signal.signal);
}

static int parse_stream_error(const lctx *c, sb_msg *m) {
  char *stream;
  int64_t err;
  int r;

  if ((r = req_str(c, "stream", &stream)) < 0)
    return r;
  if (strcmp(stream, "stdout") == 0)
    m->u.stream_error.stream = 1;
  else if (strcmp(stream, "stderr") == 0)
    m->u.stream_error.stream = 2;
  else
    r = bad(c, "stream", "expected \"stdout\" or \"stderr\"");
  free(stream);
  if (r < 0 || (r = req_int(c, "errno", 1, 4095, &err)) < 0)
    return r;
  m->u.stream_error.err = (int)-err;
  return req_str(c, "message", &m->u.stream_error.message);
}

static int parse_launch(const lctx *c, sb_launch *l, bool run) {
  int r;
  if ((r = req_strv(c, "argv", STRV_NONEMPTY, &l->argv)) < 0 ||
      (r = opt_bytes(c, "path", &l->path)) < 0 ||
      (r = opt_bytes(c, "cwd", &l->cwd)) < 0 ||
      (r = opt_strv(c, "env", STRV_ENV, &l->set)) < 0 ||
      (r = opt_strv(c, "unset", STRV_NAME, &l->unset)) < 0)
    return r;
  return run ? opt_bool(c, "tee", &l->tee) : 0;
}

static int parse_body(const lctx *c, sb_msg *m) {
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

static int parse_object(const sb_jr *j, const sb_jr_index *ix, sb_msg *out) {
  lctx c = {j, ix, "message", j->diag};
  char *type, q[48];
  int r = req_str(&c, "type", &type);
  if (r < 0)
    return r;
  out->type = sb__msg_type_from_name(type);
  if (out->type == 0) {
    sb__quote(q, sizeof q, type);
    r = sb_diag_set(c.diag, SB_EBADMSG, "message.type: unknown type %s", q);
  }
  free(type);
  if (r < 0)
    return r;
  c.path = sb_msg_type_name(out->type);
  return parse_body(&c, out);
}

int sb_msg_parse(const uint8_t *payload, size_t len, sb_msg *out, sb_diag *diag) {
  sb_jr j = {payload, len, diag};
  sb_jr_index top = {top_names, COUNT(top_names), {0}, {0}};

  memset(out, 0, sizeof *out);
  int r = sb_jr_document(&j, &top);
  if (r == 0)
    r = parse_object(&j, &top, out);
  if (r < 0)
    sb_msg_free(out);
  return r;
}
