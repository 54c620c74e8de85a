/* SPDX-License-Identifier: MIT */
/* rules.c - loading the rules file: the top level, each rule, its match;
 * the actions are in rules_action.c, positions and messages in rules_json.c. */
#include "rules_internal.h"

#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"rules", "default", NULL};
static const char *const match_keys[] = {"argv0", "args", "cwd", "env", NULL};
static const char *const rule_keys[] = {"match", "respond", "delegate", "exec",
                                        "run",   "times",   NULL};
static const sb__named action_names[] = {RULE_ACTION_MAP(SB__NAMED_ROW)};

const char *rules_action_name(rule_action a) {
  return sb__name_of(action_names, SB__NROWS(action_names), (int)a);
}

static int parse_match(rules_ctx *c, const cJSON *obj, rule_match *m) {
  if (!cJSON_IsObject(obj))
    return rules__fail(c, obj, "expected an object");
  if (rules__check_keys(c, obj, match_keys) < 0)
    return -1;
  const cJSON *v;
  if ((v = rules__field(obj, "argv0")) != NULL) {
    if (rules__string(c, v, RULES_STR_GLOB, &m->argv0) < 0)
      return -1;
    const char *slash = rules__glob_slash(m->argv0), *base = m->argv0;
    for (const char *p = m->argv0; slash != NULL && *p != '\0'; p++)
      if (*p == '/')
        base = p + 1;
    if (slash != NULL)
      return rules__fail(c, v,
                         "\"%s\" can never match: argv0 is matched against the "
                         "basename of argv[0] (write \"%s\")",
                         m->argv0, base);
  }
  if ((v = rules__field(obj, "args")) != NULL &&
      rules__strings(c, v, RULES_STR_GLOB, false, &m->args, &m->nargs) < 0)
    return -1;
  if ((v = rules__field(obj, "cwd")) != NULL &&
      rules__string(c, v, RULES_STR_GLOB, &m->cwd) < 0)
    return -1;
  if ((v = rules__field(obj, "env")) != NULL &&
      rules__env(c, v, RULES_STR_GLOB, &m->env_names, &m->env_globs, &m->envc) < 0)
    return -1;
  return 0;
}

static void match_free(rule_match *m) {
  free(m->argv0);
  rules__strn_free(m->args, m->nargs);
  free(m->cwd);
  rules__strn_free(m->env_names, m->envc);
  rules__strn_free(m->env_globs, m->envc);
  memset(m, 0, sizeof *m);
}

/* The one action member of a rule object, its kind in *a; NULL after a
 * message when there are none or several. */
static const cJSON *find_action(rules_ctx *c, const cJSON *obj, rule_action *a) {
  const cJSON *found = NULL;
  for (size_t i = 0; i < SB__NROWS(action_names); i++) {
    const cJSON *m = rules__field(obj, action_names[i].name);
    if (m == NULL)
      continue;
    if (found != NULL) {
      rules__fail_key(c, m, "expected exactly one of respond, delegate, exec, run");
      return NULL;
    }
    found = m;
    *a = (rule_action)action_names[i].value;
  }
  if (found == NULL)
    rules__fail(c, obj, "expected exactly one of respond, delegate, exec, run");
  return found;
}

/* "times": N, a whole number of calls 1..RULES_MAX_TIMES. */
static int parse_times(rules_ctx *c, const cJSON *v, uint32_t *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > RULES_MAX_TIMES ||
      (double)(uint32_t)v->valuedouble != v->valuedouble)
    return rules__fail(c, v, "expected a number of calls 1..%u", RULES_MAX_TIMES);
  *out = (uint32_t)v->valuedouble;
  return 0;
}

static int parse_rule(rules_ctx *c, const cJSON *obj, bool is_default, rule *r) {
  if (!cJSON_IsObject(obj))
    return rules__fail(c, obj, "expected an object");
  const cJSON *match = rules__field(obj, "match");
  if (is_default && match != NULL)
    return rules__fail_key(c, match, "the default has no \"match\"");
  const cJSON *times = rules__field(obj, "times");
  if (is_default && times != NULL)
    return rules__fail_key(c, times,
                           "the default has no \"times\" (it answers every "
                           "call no rule takes)");
  if (times != NULL && parse_times(c, times, &r->times) < 0)
    return -1;
  rule_action a = RULE_RESPOND;
  const cJSON *act;
  if (rules__check_keys(c, obj, rule_keys) < 0 || (act = find_action(c, obj, &a)) == NULL)
    return -1;
  if (match != NULL && parse_match(c, match, &r->match) < 0)
    return -1;
  r->action = a;
  if (a == RULE_RESPOND)
    return rules__respond(c, act, &r->respond);
  return rules__program(c, act, a, &r->program);
}

static void rule_free(rule *r) {
  match_free(&r->match);
  rules__respond_free(&r->respond);
  rules__program_free(&r->program);
}

static int parse_list(rules_ctx *c, const cJSON *arr, rules *out) {
  if (!cJSON_IsArray(arr))
    return rules__fail(c, arr, "expected an array of rules");
  size_t n = (size_t)cJSON_GetArraySize(arr);
  out->v = calloc(n > 0 ? n : 1, sizeof *out->v);
  if (out->v == NULL)
    return rules__oom(c);
  for (const cJSON *el = arr->child; el != NULL; el = el->next) {
    rule *r = &out->v[out->n++];
    r->index = (int)(out->n - 1);
    if (parse_rule(c, el, false, r) < 0)
      return -1;
  }
  return 0;
}

static int parse_top(rules_ctx *c, const cJSON *root, rules *out) {
  if (!cJSON_IsObject(root))
    return rules__fail(c, root, "expected an object with \"rules\" and/or \"default\"");
  if (rules__check_keys(c, root, top_keys) < 0)
    return -1;
  const cJSON *v;
  if ((v = rules__field(root, "rules")) != NULL && parse_list(c, v, out) < 0)
    return -1;
  if ((v = rules__field(root, "default")) == NULL)
    return 0;
  out->deflt = calloc(1, sizeof *out->deflt);
  if (out->deflt == NULL)
    return rules__oom(c);
  out->deflt->index = -1;
  return parse_rule(c, v, true, out->deflt);
}

/* The directory part of path, '/' included ("" for a bare name): what a
 * relative stdout_file is relative to. */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  return strndup(path, slash != NULL ? (size_t)(slash - path) + 1 : 0);
}

/* Parses and checks the text already in c. */
static int load_text(rules_ctx *c, size_t len, rules *out) {
  cJSON *root = rules__parse(c, len);
  if (root == NULL)
    return -1;
  char *dir = dir_of(c->file);
  int r = -1;
  if (dir == NULL) {
    rules__oom(c);
  } else {
    c->root = root;
    c->dir = dir;
    r = parse_top(c, root, out);
  }
  free(dir);
  cJSON_Delete(root);
  return r;
}

int rules_load(const char *path, rules *out, char *err, size_t errsz) {
  memset(out, 0, sizeof *out);
  char *text = NULL;
  size_t len = 0;
  int r = rules__read_file(path, RULES_MAX_FILE_BYTES, &text, &len);
  if (r < 0) {
    snprintf(err, errsz, "%s: %s", path,
             r == RULES_ENOTREG ? "not a regular file" : strerror(-r));
    return -1;
  }
  rules_ctx c = {.file = path, .text = text, .err = err, .errsz = errsz};
  r = load_text(&c, len, out);
  free(text);
  if (r < 0)
    rules_free(out);
  return r;
}

void rules_free(rules *r) {
  for (size_t i = 0; i < r->n; i++)
    rule_free(&r->v[i]);
  free(r->v);
  if (r->deflt != NULL)
    rule_free(r->deflt);
  free(r->deflt);
  memset(r, 0, sizeof *r);
}
