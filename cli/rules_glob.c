/* SPDX-License-Identifier: MIT */
/* rules_glob.c - globs: checked at load (fnmatch(3) reports no syntax
 * errors, it silently reads a broken pattern some other way), and matched
 * against calls. */
#include "rules_internal.h"

#include <fnmatch.h>
#include <string.h>

static const char *const char_classes[] = {
    "alnum", "alpha", "blank", "cntrl", "digit",  "graph", "lower",
    "print", "punct", "space", "upper", "xdigit", NULL,
};

static bool is_class(const char *name, size_t len) {
  for (size_t i = 0; char_classes[i] != NULL; i++)
    if (strlen(char_classes[i]) == len && strncmp(char_classes[i], name, len) == 0)
      return true;
  return false;
}

/* A "[:class:]", "[.c.]" or "[=c=]" inside a bracket, at g[j] == '[': the
 * index of its last ']', or 0 with *why set. */
static size_t bracket_term(const char *g, size_t j, const char **why) {
  char kind = g[j + 1];
  const char *end = NULL;
  for (size_t k = j + 2; g[k] != '\0' && end == NULL; k++)
    if (g[k] == kind && g[k + 1] == ']')
      end = g + k;
  if (end == NULL) {
    *why = "unterminated [: [. or [= in a bracket";
    return 0;
  }
  if (kind == ':' && !is_class(g + j + 2, (size_t)(end - (g + j + 2)))) {
    *why = "unknown character class";
    return 0;
  }
  return (size_t)(end - g) + 1;
}

/* The index of the ']' closing the bracket opened at g[i], or 0 with *why. */
static size_t bracket_end(const char *g, size_t i, const char **why) {
  size_t j = i + 1;
  if (g[j] == '!' || g[j] == '^')
    j++;
  if (g[j] == ']') /* first: a literal ']' */
    j++;
  for (; g[j] != ']'; j++) {
    if (g[j] == '\0') {
      *why = "unterminated [ (write \\[ for a literal one)";
      return 0;
    }
    if (g[j] == '[' && (g[j + 1] == ':' || g[j + 1] == '.' || g[j + 1] == '=')) {
      j = bracket_term(g, j, why);
      if (j == 0)
        return 0;
    } else if (g[j] == '\\' && g[j + 1] != '\0') {
      j++;
    }
  }
  return j;
}

const char *rules__glob_error(const char *g) {
  const char *why = NULL;
  for (size_t i = 0; g[i] != '\0'; i++) {
    if (g[i] == '\\') {
      if (g[i + 1] == '\0')
        return "ends with a lone \\";
      i++;
    } else if (g[i] == '[') {
      i = bracket_end(g, i, &why);
      if (why != NULL)
        return why;
    }
  }
  return NULL;
}

const char *rules__glob_slash(const char *g) {
  const char *why = NULL;
  for (size_t i = 0; g[i] != '\0'; i++) {
    if (g[i] == '\\' && g[i + 1] != '\0')
      i++;
    else if (g[i] == '[')
      i = bracket_end(g, i, &why); /* a checked glob: it ends */
    if (g[i] == '/')
      return g + i;
  }
  return NULL;
}

/* ---- matching ----------------------------------------------------------- */

static bool glob_ok(const char *glob, const char *s) {
  return fnmatch(glob, s, 0) == 0;
}

static bool is_any(const char *glob) {
  return strcmp(glob, "**") == 0;
}

/* Wildcard matching over arguments, "**" the star: on a mismatch, retry
 * from the last "**" swallowing one more argument. Each other glob takes
 * exactly one argument, so the earliest fit after a star is never worse:
 * O(np * na) fnmatch calls at worst, no recursion. */
static bool match_args(char *const *pats, size_t np, char *const *args, size_t na) {
  size_t p = 0, a = 0, star = 0, mark = 0;
  bool have_star = false;
  while (a < na) {
    if (p < np && is_any(pats[p])) {
      have_star = true;
      star = p++;
      mark = a;
    } else if (p < np && glob_ok(pats[p], args[a])) {
      p++;
      a++;
    } else if (have_star) {
      p = star + 1;
      a = ++mark;
    } else {
      return false;
    }
  }
  while (p < np && is_any(pats[p]))
    p++;
  return p == np;
}

static bool env_ok(const rule_match *m, size_t envc, char *const *env) {
  for (size_t i = 0; i < m->envc; i++) {
    const char *v = sb__env_value_n(env, envc, m->env_names[i], SB__ENV_FIRST);
    if (v == NULL || !glob_ok(m->env_globs[i], v))
      return false;
  }
  return true;
}

static bool argv0_ok(const char *glob, size_t argc, char *const *argv) {
  if (argc == 0)
    return false;
  const char *slash = strrchr(argv[0], '/');
  return glob_ok(glob, slash != NULL ? slash + 1 : argv[0]);
}

static bool rule_ok(const rule_match *m, size_t argc, char *const *argv, const char *cwd,
                    size_t envc, char *const *env) {
  if (m->argv0 != NULL && !argv0_ok(m->argv0, argc, argv))
    return false;
  size_t nargs = argc > 0 ? argc - 1 : 0;
  if (m->args != NULL &&
      !match_args(m->args, m->nargs, nargs > 0 ? argv + 1 : argv, nargs))
    return false;
  if (m->cwd != NULL && (cwd == NULL || !glob_ok(m->cwd, cwd)))
    return false;
  return env_ok(m, envc, env);
}

const rule *rules_match(rules *r, size_t argc, char *const *argv, const char *cwd,
                        size_t envc, char *const *env) {
  for (size_t i = 0; i < r->n; i++) {
    rule *ru = &r->v[i];
    if ((ru->times == 0 || ru->used < ru->times) &&
        rule_ok(&ru->match, argc, argv, cwd, envc, env)) {
      ru->used += ru->times > 0;
      return ru;
    }
  }
  return r->deflt;
}
