/* SPDX-License-Identifier: MIT */
/* rules_json.c - the rules file as text: reading it, parsing it with cJSON,
 * turning a node back into a line for messages (cJSON keeps no positions),
 * and the checked copies of its strings. */
#include "rules_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Deeper nodes are never reported: the schema is shallower than this. */
#define PATH_MAX_DEPTH 16
#define NAME_MAX_LEN 200

/* ---- reading ------------------------------------------------------------ */

static int read_all(int fd, size_t max, char **buf, size_t *len) {
  size_t cap = 4096, n = 0;
  char *b = malloc(cap + 1);
  for (;;) {
    if (b == NULL)
      return -ENOMEM;
    if (n == cap) {
      if (cap > max) {
        free(b);
        return -EFBIG;
      }
      cap *= 2;
      char *nb = realloc(b, cap + 1);
      if (nb == NULL)
        free(b);
      b = nb;
      continue;
    }
    ssize_t r = read(fd, b + n, cap - n);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      int e = errno;
      free(b);
      return -e;
    }
    if (r == 0)
      break;
    n += (size_t)r;
  }
  if (n > max) {
    free(b);
    return -EFBIG;
  }
  b[n] = '\0';
  *buf = b;
  *len = n;
  return 0;
}

int rules__read_file(const char *path, size_t max, char **buf, size_t *len) {
  /* Non-blocking, and only a regular file: a FIFO put in its place must
   * not stop the loop that reloads it. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  struct stat st;
  if (fd < 0)
    return -errno;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return RULES_ENOTREG;
  }
  int r = read_all(fd, max, buf, len);
  close(fd);
  return r;
}

/* ---- positions ---------------------------------------------------------- */

/* The path from the root to a node: child indices, and its name. */
typedef struct jpath {
  size_t idx[PATH_MAX_DEPTH];
  size_t cut[PATH_MAX_DEPTH]; /* name length before component d */
  size_t depth;
  char name[NAME_MAX_LEN];
} jpath;

static void name_push(jpath *p, const cJSON *parent, const cJSON *child, size_t k) {
  size_t len = strlen(p->name);
  p->cut[p->depth] = len;
  p->idx[p->depth++] = k;
  if (cJSON_IsArray(parent))
    snprintf(p->name + len, sizeof p->name - len, "[%zu]", k);
  else
    snprintf(p->name + len, sizeof p->name - len, "%s%s", len > 0 ? "." : "",
             child->string);
}

static bool find_path(const cJSON *node, const cJSON *target, jpath *p) {
  if (node == target)
    return true;
  if (p->depth == PATH_MAX_DEPTH || !(cJSON_IsArray(node) || cJSON_IsObject(node)))
    return false;
  size_t k = 0;
  for (const cJSON *ch = node->child; ch != NULL; ch = ch->next, k++) {
    name_push(p, node, ch, k);
    if (find_path(ch, target, p))
      return true;
    p->depth--;
    p->name[p->cut[p->depth]] = '\0';
  }
  return false;
}

/* The scanner below walks text cJSON has accepted, so it only needs to tell
 * values apart, not check them; it skips what cJSON skips (bytes <= ' '). */
static size_t skip_ws(const char *t, size_t i) {
  while (t[i] != '\0' && (unsigned char)t[i] <= ' ')
    i++;
  return i;
}

static size_t skip_string(const char *t, size_t i) {
  for (i++; t[i] != '\0' && t[i] != '"'; i++)
    if (t[i] == '\\' && t[i + 1] != '\0')
      i++;
  return t[i] == '"' ? i + 1 : i;
}

static size_t skip_value(const char *t, size_t i) {
  if (t[i] == '"')
    return skip_string(t, i);
  if (t[i] != '{' && t[i] != '[') {
    while ((unsigned char)t[i] > ' ' && strchr(",]}", t[i]) == NULL)
      i++;
    return i;
  }
  size_t depth = 0;
  do {
    if (t[i] == '"') {
      i = skip_string(t, i);
      continue;
    }
    if (t[i] == '{' || t[i] == '[')
      depth++;
    else if (t[i] == '}' || t[i] == ']')
      depth--;
    i++;
  } while (depth > 0 && t[i] != '\0');
  return i;
}

/* From an object member's key to its value. */
static size_t past_key(const char *t, size_t i) {
  i = skip_ws(t, skip_string(t, i));
  if (t[i] == ':')
    i++;
  return skip_ws(t, i);
}

/* From a container's opening bracket, to its member k (the key, in an object). */
static size_t nth_member(const char *t, size_t i, size_t k) {
  bool object = t[i] == '{';
  i = skip_ws(t, i + 1);
  for (size_t m = 0; m < k && t[i] != '\0'; m++) {
    if (object)
      i = past_key(t, i);
    i = skip_ws(t, skip_value(t, i));
    if (t[i] == ',')
      i = skip_ws(t, i + 1);
  }
  return i;
}

/* cJSON skips a UTF-8 byte order mark; so must the scanner. */
static size_t skip_bom(const char *t) {
  return strncmp(t, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* The offset of the node at p, or of its key when key is true. */
static size_t locate(const char *t, const jpath *p, bool key) {
  size_t i = skip_ws(t, skip_bom(t));
  for (size_t d = 0; d < p->depth; d++) {
    bool object = t[i] == '{';
    i = nth_member(t, i, p->idx[d]);
    if (object && !(key && d + 1 == p->depth))
      i = past_key(t, i);
  }
  return i;
}

static size_t line_of(const char *t, size_t off) {
  size_t line = 1;
  for (size_t i = 0; i < off && t[i] != '\0'; i++)
    line += t[i] == '\n';
  return line;
}

/* ---- messages ----------------------------------------------------------- */

/* Keys and strings of the file land in messages: keep them on one line. */
static void one_line(char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < ' ' || *s == 0x7f)
      *s = '?';
}

__attribute__((format(printf, 4, 0))) static int
vfail_at(rules_ctx *c, size_t line, const char *where, const char *fmt, va_list ap) {
  if (c->errsz == 0)
    return -1;
  int n = snprintf(c->err, c->errsz, "%s:%zu: %s%s", c->file, line, where,
                   *where != '\0' ? ": " : "");
  if (n >= 0 && (size_t)n < c->errsz)
    vsnprintf(c->err + n, c->errsz - (size_t)n, fmt, ap);
  one_line(c->err);
  return -1;
}

__attribute__((format(printf, 4, 0))) static int
vfail(rules_ctx *c, const cJSON *item, bool key, const char *fmt, va_list ap) {
  jpath p = {.depth = 0};
  size_t off = 0;
  if (find_path(c->root, item, &p)) {
    off = locate(c->text, &p, key);
    if (key && p.depth > 0)
      p.name[p.cut[p.depth - 1]] = '\0';
  }
  return vfail_at(c, line_of(c->text, off), p.name, fmt, ap);
}

int rules__fail(rules_ctx *c, const cJSON *item, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(c, item, false, fmt, ap);
  va_end(ap);
  return -1;
}

int rules__fail_key(rules_ctx *c, const cJSON *member, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail(c, member, true, fmt, ap);
  va_end(ap);
  return -1;
}

__attribute__((format(printf, 3, 4))) static int fail_offset(rules_ctx *c, size_t off,
                                                             const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfail_at(c, line_of(c->text, off), "", fmt, ap);
  va_end(ap);
  return -1;
}

int rules__oom(rules_ctx *c) {
  if (c->errsz == 0)
    return -1;
  snprintf(c->err, c->errsz, "%s: out of memory", c->file);
  one_line(c->err);
  return -1;
}

/* ---- parsing ------------------------------------------------------------ */

/* The offset of the first \u0000 escape in a string, which cJSON would take
 * as the string's end; or len. */
static size_t find_nul_escape(const char *t, size_t len) {
  bool in_string = false;
  for (size_t i = 0; i < len; i++) {
    if (t[i] == '"')
      in_string = !in_string;
    else if (in_string && t[i] == '\\') {
      if (strncmp(t + i, "\\u0000", 6) == 0)
        return i;
      i++;
    }
  }
  return len;
}

cJSON *rules__parse(rules_ctx *c, size_t len) {
  const char *t = c->text;
  size_t nul = strlen(t);
  if (nul < len) {
    fail_offset(c, nul, "NUL byte in the file");
    return NULL;
  }
  if (t[skip_ws(t, skip_bom(t))] == '\0') {
    fail_offset(c, len, "empty file: expected a JSON object");
    return NULL;
  }
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(t, &end, true);
  if (root == NULL) {
    size_t off = end != NULL && end >= t ? (size_t)(end - t) : 0;
    size_t bol = off;
    while (bol > 0 && t[bol - 1] != '\n')
      bol--;
    fail_offset(c, off, "invalid JSON (at column %zu)", off - bol + 1);
    return NULL;
  }
  size_t esc = find_nul_escape(t, len);
  if (esc < len) {
    cJSON_Delete(root);
    fail_offset(c, esc, "\\u0000 in a string (use stdout_file for binary output)");
    return NULL;
  }
  return root;
}

/* ---- keys and strings --------------------------------------------------- */

static bool in_list(const char *s, const char *const *list) {
  for (; *list != NULL; list++)
    if (strcmp(s, *list) == 0)
      return true;
  return false;
}

int rules__check_keys(rules_ctx *c, const cJSON *obj, const char *const *allowed) {
  for (const cJSON *m = obj->child; m != NULL; m = m->next) {
    if (!in_list(m->string, allowed))
      return rules__fail_key(c, m, "unknown key \"%s\"", m->string);
    for (const cJSON *prev = obj->child; prev != m; prev = prev->next)
      if (strcmp(prev->string, m->string) == 0)
        return rules__fail_key(c, m, "duplicate key \"%s\"", m->string);
  }
  return 0;
}

const cJSON *rules__field(const cJSON *obj, const char *key) {
  for (const cJSON *m = obj->child; m != NULL; m = m->next)
    if (strcmp(m->string, key) == 0)
      return m;
  return NULL;
}

static int check_string(rules_ctx *c, const cJSON *item, rules_str kind) {
  const char *s = item->valuestring;
  const char *why;
  char tpl_why[160];
  switch (kind) {
  case RULES_STR_PLAIN:
    return 0;
  case RULES_STR_GLOB:
    why = rules__glob_error(s);
    return why == NULL ? 0 : rules__fail(c, item, "bad glob \"%s\": %s", s, why);
  case RULES_STR_TEMPLATE:
  case RULES_STR_ARGV:
    if (rules__template_ok(s, kind == RULES_STR_ARGV, tpl_why, sizeof tpl_why))
      return 0;
    return rules__fail(c, item, "%s", tpl_why);
  case RULES_STR_NAME:
    if (*s != '\0' && strchr(s, '=') == NULL)
      return 0;
    return rules__fail(c, item, "bad variable name \"%s\" (empty, or holds '=')", s);
  }
  return 0;
}

int rules__string(rules_ctx *c, const cJSON *item, rules_str kind, char **out) {
  if (!cJSON_IsString(item))
    return rules__fail(c, item, "expected a string%s",
                       kind == RULES_STR_GLOB ? " (a glob)" : "");
  if (check_string(c, item, kind) < 0)
    return -1;
  *out = strdup(item->valuestring);
  return *out != NULL ? 0 : rules__oom(c);
}

int rules__strings(rules_ctx *c, const cJSON *arr, rules_str kind, bool nonempty,
                   char ***out, size_t *n) {
  if (!cJSON_IsArray(arr))
    return rules__fail(c, arr, "expected an array of strings");
  size_t count = (size_t)cJSON_GetArraySize(arr);
  if (nonempty && count == 0)
    return rules__fail(c, arr, "expected a non-empty array");
  *out = calloc(count + 1, sizeof **out);
  if (*out == NULL)
    return rules__oom(c);
  *n = count;
  size_t i = 0;
  for (const cJSON *el = arr->child; el != NULL; el = el->next, i++)
    if (rules__string(c, el, kind, &(*out)[i]) < 0)
      return -1;
  return 0;
}

static int check_name_key(rules_ctx *c, const cJSON *member) {
  const char *s = member->string;
  if (*s != '\0' && strchr(s, '=') == NULL)
    return 0;
  return rules__fail_key(c, member, "bad variable name \"%s\" (empty, or holds '=')", s);
}

int rules__env(rules_ctx *c, const cJSON *obj, rules_str kind, char ***names,
               char ***values, size_t *n) {
  if (!cJSON_IsObject(obj))
    return rules__fail(c, obj, "expected an object NAME -> string");
  size_t count = (size_t)cJSON_GetArraySize(obj);
  *names = calloc(count + 1, sizeof **names);
  *values = calloc(count + 1, sizeof **values);
  if (*names == NULL || *values == NULL)
    return rules__oom(c);
  *n = count;
  size_t i = 0;
  for (const cJSON *m = obj->child; m != NULL; m = m->next, i++) {
    for (const cJSON *prev = obj->child; prev != m; prev = prev->next)
      if (strcmp(prev->string, m->string) == 0)
        return rules__fail_key(c, m, "duplicate key \"%s\"", m->string);
    if (check_name_key(c, m) < 0 || rules__string(c, m, kind, &(*values)[i]) < 0)
      return -1;
    (*names)[i] = strdup(m->string);
    if ((*names)[i] == NULL)
      return rules__oom(c);
  }
  return 0;
}

void rules__strn_free(char **v, size_t n) {
  if (v != NULL)
    for (size_t i = 0; i < n; i++)
      free(v[i]);
  free(v);
}
