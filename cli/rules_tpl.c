/* SPDX-License-Identifier: MIT */
/* rules_tpl.c - templates ({@} {N} {-N} {0} {cwd} {{ }}): checked at load,
 * expanded per call by rules_expand(). One tokenizer serves both, so what
 * loads is what expands. */
#include "rules_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum tpl_kind {
  TPL_END,
  TPL_TEXT,     /* len literal bytes at s */
  TPL_ALL,      /* {@} */
  TPL_ARG,      /* {N}, N >= 0 */
  TPL_FROM_END, /* {-N}, N >= 1 */
  TPL_CWD,      /* {cwd} */
  TPL_BAD,      /* s/len: the offending piece; why says what is wrong */
} tpl_kind;

typedef struct tpl_piece {
  tpl_kind kind;
  const char *s;
  size_t len;
  size_t n;
  const char *why, *hint; /* TPL_BAD: why, then the piece, then hint */
} tpl_piece;

/* Nine digits at most: no overflow, and no argv is that long. */
#define TPL_MAX_DIGITS 9

/* Decimal digits without a leading zero (but "0"), into *n. */
static bool parse_index(const char *s, size_t len, size_t *n) {
  if (len == 0 || len > TPL_MAX_DIGITS || (s[0] == '0' && len > 1))
    return false;
  *n = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    *n = *n * 10 + (size_t)(s[i] - '0');
  }
  return true;
}

/* What the inside of a "{...}" names. */
static void classify(const char *in, size_t len, tpl_piece *p) {
  if (len == 1 && in[0] == '@')
    p->kind = TPL_ALL;
  else if (len == 3 && strncmp(in, "cwd", 3) == 0)
    p->kind = TPL_CWD;
  else if (parse_index(in, len, &p->n))
    p->kind = TPL_ARG;
  else if (len > 1 && in[0] == '-' && parse_index(in + 1, len - 1, &p->n) && p->n > 0)
    p->kind = TPL_FROM_END;
  else {
    p->why = "unknown template ";
    p->hint = " (the templates: {@} {N} {-N} {cwd}; write {{ and }} for literal braces)";
  }
}

static tpl_piece tpl_next(const char *t, size_t *pos) {
  const char *s = t + *pos;
  tpl_piece p = {.kind = TPL_BAD, .s = s, .len = 1, .hint = ""};
  if (*s == '\0') {
    p.kind = TPL_END;
  } else if ((s[0] == '{' && s[1] == '{') || (s[0] == '}' && s[1] == '}')) {
    p.kind = TPL_TEXT;
    *pos += 2;
    return p;
  } else if (*s == '}') {
    p.why = "lone ";
    p.hint = " (write }} for a literal brace)";
  } else if (*s == '{') {
    const char *close = strchr(s, '}');
    p.len = close != NULL ? (size_t)(close - s) + 1 : strlen(s);
    if (close == NULL) {
      p.why = "unterminated template ";
      p.hint = " (write {{ for a literal brace)";
    } else {
      classify(s + 1, p.len - 2, &p);
    }
  } else {
    p.kind = TPL_TEXT;
    p.len = strcspn(s, "{}");
  }
  *pos += p.len;
  return p;
}

bool rules__template_ok(const char *t, bool whole_ok, char *why, size_t whysz) {
  size_t pos = 0;
  for (;;) {
    tpl_piece p = tpl_next(t, &pos);
    if (p.kind == TPL_END)
      return true;
    if (p.kind == TPL_BAD) {
      snprintf(why, whysz, "%s%.*s%s", p.why, (int)(p.len > 40 ? 40 : p.len), p.s,
               p.hint);
      return false;
    }
    if (p.kind == TPL_ALL && !(whole_ok && strcmp(t, "{@}") == 0)) {
      snprintf(why, whysz, "{@} must be a whole argv element");
      return false;
    }
  }
}

/* ---- expansion ---------------------------------------------------------- */

/* The call a template is expanded for. */
typedef struct tpl_call {
  size_t argc;
  char *const *argv;
  const char *cwd;
} tpl_call;

/* A growing string; oom once any append failed. */
typedef struct sbuf {
  char *p;
  size_t len, cap;
  bool oom;
} sbuf;

static void sbuf_add(sbuf *b, const char *s, size_t n) {
  if (b->oom)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap == 0 ? 64 : b->cap;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
      b->oom = true;
      return;
    }
    b->p = np;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sbuf_adds(sbuf *b, const char *s) {
  if (s != NULL)
    sbuf_add(b, s, strlen(s));
}

/* Argument i of the call, or NULL when out of range. */
static const char *call_arg(const tpl_call *c, size_t i) {
  return i < c->argc ? c->argv[i] : NULL;
}

static void expand_piece(sbuf *b, const tpl_piece *p, const tpl_call *c) {
  switch (p->kind) {
  case TPL_TEXT:
  case TPL_BAD: /* never loaded; kept literally */
    sbuf_add(b, p->s, p->len);
    break;
  case TPL_ARG:
    sbuf_adds(b, call_arg(c, p->n));
    break;
  case TPL_FROM_END: /* of the arguments: never argv[0] */
    sbuf_adds(b, p->n < c->argc ? call_arg(c, c->argc - p->n) : NULL);
    break;
  case TPL_CWD:
    sbuf_adds(b, c->cwd);
    break;
  case TPL_ALL: /* only whole argv elements, expanded by the caller */
  case TPL_END:
    break;
  }
}

/* Appends template t expanded to b. */
static void expand_into(sbuf *b, const char *t, const tpl_call *c) {
  size_t pos = 0;
  for (tpl_piece p = tpl_next(t, &pos); p.kind != TPL_END; p = tpl_next(t, &pos))
    expand_piece(b, &p, c);
}

/* A fresh string: prefix, then t expanded; NULL when out of memory. */
static char *expand(const char *prefix, const char *t, const tpl_call *c) {
  sbuf b = {.p = NULL};
  sbuf_add(&b, "", 0);
  sbuf_adds(&b, prefix);
  expand_into(&b, t, c);
  if (b.oom) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

static bool is_all(const char *t) {
  return strcmp(t, "{@}") == 0;
}

static int expand_argv(const rule_program *p, const tpl_call *c, rule_launch *out) {
  size_t nargs = c->argc > 0 ? c->argc - 1 : 0, n = 0;
  for (size_t i = 0; i < p->argc; i++)
    n += is_all(p->argv[i]) ? nargs : 1;
  out->argv = calloc(n + 1, sizeof *out->argv);
  if (out->argv == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < p->argc; i++) {
    if (!is_all(p->argv[i])) {
      out->argv[out->argc] = expand(NULL, p->argv[i], c);
      if (out->argv[out->argc++] == NULL)
        return -ENOMEM;
      continue;
    }
    for (size_t k = 1; k <= nargs; k++) {
      out->argv[out->argc] = strdup(c->argv[k]);
      if (out->argv[out->argc++] == NULL)
        return -ENOMEM;
    }
  }
  return 0;
}

static int expand_env(const rule_program *p, const tpl_call *c, rule_launch *out) {
  out->set = calloc(p->envc + 1, sizeof *out->set);
  out->unset = calloc(p->nunset + 1, sizeof *out->unset);
  if (out->set == NULL || out->unset == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < p->envc; i++) {
    sbuf b = {.p = NULL};
    sbuf_adds(&b, p->env_names[i]);
    sbuf_add(&b, "=", 1);
    expand_into(&b, p->env_values[i], c);
    out->set[i] = b.p;
    if (b.oom)
      return -ENOMEM;
  }
  for (size_t i = 0; i < p->nunset; i++)
    if ((out->unset[i] = strdup(p->unset[i])) == NULL)
      return -ENOMEM;
  return 0;
}

int rules_expand(const rule_program *p, size_t argc, char *const *argv, const char *cwd,
                 rule_launch *out) {
  tpl_call c = {argc, argv, cwd};
  memset(out, 0, sizeof *out);
  out->tee = p->tee;
  int r = expand_argv(p, &c, out);
  if (r == 0 && p->cwd != NULL && (out->cwd = expand(NULL, p->cwd, &c)) == NULL)
    r = -ENOMEM;
  if (r == 0)
    r = expand_env(p, &c, out);
  if (r < 0)
    rule_launch_free(out);
  return r;
}

void rule_launch_free(rule_launch *l) {
  sb__vec_free(l->argv);
  free(l->cwd);
  sb__vec_free(l->set);
  sb__vec_free(l->unset);
  memset(l, 0, sizeof *l);
}
