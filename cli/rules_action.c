/* SPDX-License-Identifier: MIT */
/* rules_action.c - the actions of a rule: respond (the answer itself), and
 * delegate / exec / run (a command, as templates). */
#include "rules_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"

/* ---- respond ------------------------------------------------------------ */

static const char *const respond_keys[] = {"stdout", "stderr",   "stdout_file", "exit",
                                           "signal", "delay_ms", "stdin",       NULL};

/* A JSON number that is a whole number in [lo, hi] (small bounds: the cast
 * cannot overflow once the range holds). */
static bool int_in(const cJSON *v, double lo, double hi) {
  return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi &&
         (double)(int64_t)v->valuedouble == v->valuedouble;
}

static int get_signal(rules_ctx *c, const cJSON *v, int *out) {
  char num[16];
  const char *name = cJSON_IsString(v) ? v->valuestring : NULL;
  if (int_in(v, 1, 999)) {
    snprintf(num, sizeof num, "%d", (int)v->valuedouble);
    name = num;
  }
  *out = name != NULL ? sb_signal_from_name(name) : 0;
  if (*out != 0)
    return 0;
  if (cJSON_IsString(v))
    return rules__fail(c, v, "unknown signal \"%s\"", v->valuestring);
  return rules__fail(c, v, "expected a signal name (\"TERM\") or number");
}

/* The bytes of a string value (NULL when empty). */
static int get_bytes(rules_ctx *c, const cJSON *v, char **out, size_t *len) {
  if (!cJSON_IsString(v))
    return rules__fail(c, v, "expected a string");
  *len = strlen(v->valuestring);
  if (*len == 0)
    return 0;
  *out = strdup(v->valuestring);
  return *out != NULL ? 0 : rules__oom(c);
}

/* The file, open: a relative path is relative to the rules file. Opened
 * without waiting, and only a regular file: its bytes are read when a call
 * is answered, a chunk at a time, and a read must never wait on a writer. */
static int get_file(rules_ctx *c, const cJSON *v, rule_respond *out) {
  if (!cJSON_IsString(v) || *v->valuestring == '\0')
    return rules__fail(c, v, "expected a file name");
  const char *name = v->valuestring;
  char *path = NULL;
  struct stat st;
  if (asprintf(&path, "%s%s", name[0] == '/' ? "" : c->dir, name) < 0)
    return rules__oom(c);
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    rules__fail(c, v, "%s: %s", path, fd < 0 ? strerror(errno) : "not a regular file");
    if (fd >= 0)
      close(fd);
    free(path);
    return -1;
  }
  free(path);
  out->has_out_file = true;
  out->out_fd = fd;
  return 0;
}

static int respond_exclusive(rules_ctx *c, const cJSON *obj) {
  const cJSON *file = rules__field(obj, "stdout_file");
  const cJSON *sig = rules__field(obj, "signal");
  if (file != NULL && rules__field(obj, "stdout") != NULL)
    return rules__fail_key(c, file, "stdout and stdout_file are exclusive");
  if (sig != NULL && rules__field(obj, "exit") != NULL)
    return rules__fail_key(c, sig, "exit and signal are exclusive");
  return 0;
}

static int respond_numbers(rules_ctx *c, const cJSON *obj, rule_respond *out) {
  const cJSON *v;
  if ((v = rules__field(obj, "exit")) != NULL) {
    if (!int_in(v, 0, 255))
      return rules__fail(c, v, "expected an integer 0..255");
    out->code = (int)v->valuedouble;
  }
  if ((v = rules__field(obj, "signal")) != NULL && get_signal(c, v, &out->signal) < 0)
    return -1;
  if ((v = rules__field(obj, "delay_ms")) != NULL) {
    if (!int_in(v, 0, RULES_MAX_DELAY_MS))
      return rules__fail(c, v, "expected an integer 0..%u (milliseconds, 1 hour at most)",
                         RULES_MAX_DELAY_MS);
    out->delay_ms = (uint64_t)v->valuedouble;
  }
  return 0;
}

int rules__respond(rules_ctx *c, const cJSON *obj, rule_respond *out) {
  if (!cJSON_IsObject(obj))
    return rules__fail(c, obj, "expected an object");
  if (rules__check_keys(c, obj, respond_keys) < 0 || respond_exclusive(c, obj) < 0 ||
      respond_numbers(c, obj, out) < 0)
    return -1;
  const cJSON *v;
  if ((v = rules__field(obj, "stdout")) != NULL &&
      get_bytes(c, v, &out->out, &out->out_len) < 0)
    return -1;
  if ((v = rules__field(obj, "stdout_file")) != NULL && get_file(c, v, out) < 0)
    return -1;
  if ((v = rules__field(obj, "stderr")) != NULL &&
      get_bytes(c, v, &out->err, &out->err_len) < 0)
    return -1;
  if ((v = rules__field(obj, "stdin")) != NULL && !cJSON_IsBool(v))
    return rules__fail(c, v,
                       "expected true (read the call's stdin to its end first) "
                       "or false (answer at once, the default)");
  out->at_once = !cJSON_IsTrue(v);
  return 0;
}

void rules__respond_free(rule_respond *r) {
  if (r->has_out_file)
    close(r->out_fd);
  free(r->out);
  free(r->err);
  memset(r, 0, sizeof *r);
}

/* NUL-terminated, as get_bytes makes them. */
static char *dup_bytes(const char *s, size_t len, bool *oom) {
  char *p = len > 0 ? malloc(len + 1) : NULL;
  if (len > 0 && p == NULL)
    *oom = true;
  else if (p != NULL) {
    memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

rule_respond *rule_respond_dup(const rule_respond *r) {
  rule_respond *d = malloc(sizeof *d);
  bool oom = false;
  if (d == NULL)
    return NULL;
  *d = *r;
  d->out = dup_bytes(r->out, r->out_len, &oom);
  d->err = dup_bytes(r->err, r->err_len, &oom);
  /* The copy holds a stdout_file of its own: each closes its fd. */
  if (r->has_out_file && (d->out_fd = fcntl(r->out_fd, F_DUPFD_CLOEXEC, 3)) < 0) {
    d->has_out_file = false;
    oom = true;
  }
  if (oom) {
    rule_respond_free(d);
    return NULL;
  }
  return d;
}

void rule_respond_free(rule_respond *r) {
  if (r == NULL)
    return;
  rules__respond_free(r);
  free(r);
}

/* ---- delegate, exec, run ------------------------------------------------ */

static const char *const program_keys[] = {"argv", "cwd", "env", "unset", "tee", NULL};

/* A variable both set (env) and unset would depend on the order they are
 * applied in: refuse it. */
static int set_and_unset(rules_ctx *c, const cJSON *obj, const rule_program *p) {
  const cJSON *unset = rules__field(obj, "unset");
  size_t i = 0;
  for (const cJSON *el = unset != NULL ? unset->child : NULL; el != NULL;
       el = el->next, i++)
    for (size_t k = 0; k < p->envc; k++)
      if (strcmp(p->unset[i], p->env_names[k]) == 0)
        return rules__fail(c, el, "\"%s\" is both in env and in unset", p->unset[i]);
  return 0;
}

static int program_fields(rules_ctx *c, const cJSON *obj, rule_program *out) {
  const cJSON *v = rules__field(obj, "argv");
  if (v == NULL)
    return rules__fail(c, obj, "missing \"argv\"");
  if (rules__strings(c, v, RULES_STR_ARGV, true, &out->argv, &out->argc) < 0)
    return -1;
  if ((v = rules__field(obj, "cwd")) != NULL &&
      rules__string(c, v, RULES_STR_TEMPLATE, &out->cwd) < 0)
    return -1;
  if ((v = rules__field(obj, "env")) != NULL &&
      rules__env(c, v, RULES_STR_TEMPLATE, &out->env_names, &out->env_values,
                 &out->envc) < 0)
    return -1;
  if ((v = rules__field(obj, "unset")) != NULL) {
    if (rules__strings(c, v, RULES_STR_NAME, false, &out->unset, &out->nunset) < 0)
      return -1;
    return set_and_unset(c, obj, out);
  }
  out->unset = calloc(1, sizeof *out->unset);
  return out->unset != NULL ? 0 : rules__oom(c);
}

int rules__program(rules_ctx *c, const cJSON *obj, rule_action a, rule_program *out) {
  if (!cJSON_IsObject(obj))
    return rules__fail(c, obj, "expected an object");
  const cJSON *tee = rules__field(obj, "tee");
  if (tee != NULL && a != RULE_RUN)
    return rules__fail_key(c, tee, "\"tee\" is only for run");
  if (rules__check_keys(c, obj, program_keys) < 0 || program_fields(c, obj, out) < 0)
    return -1;
  if (tee != NULL && !cJSON_IsBool(tee))
    return rules__fail(c, tee, "expected true or false");
  out->tee = cJSON_IsTrue(tee);
  return 0;
}

void rules__program_free(rule_program *p) {
  rules__strn_free(p->argv, p->argc);
  free(p->cwd);
  rules__strn_free(p->env_names, p->envc);
  rules__strn_free(p->env_values, p->envc);
  rules__strn_free(p->unset, p->nunset);
  memset(p, 0, sizeof *p);
}
