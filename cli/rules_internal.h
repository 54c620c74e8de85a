/* SPDX-License-Identifier: MIT */
/* rules_internal.h - what the rules_*.c files share; not for other callers. */
#ifndef SB_CLI_RULES_INTERNAL_H
#define SB_CLI_RULES_INTERNAL_H

#include "proto.h"
#include "rules.h"

#include <cjson/cJSON.h>

/* One rules_load(): the text, its tree, and where the error message goes. */
typedef struct rules_ctx {
  const char *file; /* the path as given, for messages */
  const char *text; /* the whole file, NUL-terminated */
  const cJSON *root;
  const char *dir; /* the file's directory with its '/', or "" */
  char *err;
  size_t errsz;
} rules_ctx;

/* What a string value is, for checking it (rules__string()). */
typedef enum rules_str {
  RULES_STR_PLAIN,    /* any string */
  RULES_STR_GLOB,     /* an fnmatch(3) pattern */
  RULES_STR_TEMPLATE, /* a template without {@} */
  RULES_STR_ARGV,     /* a template that may be exactly {@} */
  RULES_STR_NAME,     /* a variable name: non-empty, no '=' */
} rules_str;

/* ---- rules_json.c: the text, positions, messages ----------------------- */

/* Reads a whole file (at most max bytes) into a fresh NUL-terminated buffer.
 * Returns 0 or a negative errno (-EFBIG past max). */
int rules__read_file(const char *path, size_t max, char **buf, size_t *len);
/* rules__read_file's error for a path that is not a regular file (no errno
 * says so). */
#define RULES_ENOTREG (-100000)

/* Parses c->text (len bytes) and checks what cJSON lets through (NUL bytes,
 * \u0000 escapes, which would cut strings short). NULL after a message. */
cJSON *rules__parse(rules_ctx *c, size_t len);

/* Fill c->err with "FILE:LINE: WHERE: reason" for item (a node of c->root),
 * and return -1. fail points at the value, fail_key at the member's key and
 * names the object holding it. */
__attribute__((format(printf, 3, 4))) int rules__fail(rules_ctx *c, const cJSON *item,
                                                      const char *fmt, ...);
__attribute__((format(printf, 3, 4))) int
rules__fail_key(rules_ctx *c, const cJSON *member, const char *fmt, ...);
/* "FILE: out of memory"; returns -1. */
int rules__oom(rules_ctx *c);

/* Fails on a key of obj not in allowed (NULL-terminated) or seen twice. */
int rules__check_keys(rules_ctx *c, const cJSON *obj, const char *const *allowed);
/* obj's member named key (case-sensitive), or NULL. */
const cJSON *rules__field(const cJSON *obj, const char *key);

/* Checks that item is a string of that kind, and copies it to *out. */
int rules__string(rules_ctx *c, const cJSON *item, rules_str kind, char **out);
/* Checks an array of strings of that kind, copies it into a NULL-terminated
 * array. nonempty: refuse []. */
int rules__strings(rules_ctx *c, const cJSON *arr, rules_str kind, bool nonempty,
                   char ***out, size_t *n);
/* Checks an object NAME -> string of that kind, copies it to two arrays. */
int rules__env(rules_ctx *c, const cJSON *obj, rules_str kind, char ***names,
               char ***values, size_t *n);

/* Frees n strings of v (which may hold NULLs), and v. */
void rules__strn_free(char **v, size_t n);

/* ---- rules_action.c: respond, delegate, exec, run ---------------------- */

int rules__respond(rules_ctx *c, const cJSON *obj, rule_respond *out);
int rules__program(rules_ctx *c, const cJSON *obj, rule_action a, rule_program *out);
void rules__respond_free(rule_respond *r);
void rules__program_free(rule_program *p);

/* ---- rules_glob.c ------------------------------------------------------ */

/* Why fnmatch(3) would not read glob as meant, or NULL when it is fine. */
const char *rules__glob_error(const char *glob);
/* The first '/' of a checked glob outside its brackets, or NULL: an argv0
 * glob holding one never matches a basename. */
const char *rules__glob_slash(const char *glob);

/* ---- rules_tpl.c ------------------------------------------------------- */

/* Checks a template; on error returns false and writes why (naming the bad
 * piece) into why. whole_ok: t is an argv element, which may be "{@}". */
bool rules__template_ok(const char *t, bool whole_ok, char *why, size_t whysz);

#endif
