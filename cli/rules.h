/* SPDX-License-Identifier: MIT */
/* rules.h - the rules file of `socketbridge run --rules FILE`: which calls of
 * the stub get which answer. Pure: libc and cJSON, no libuv; the only I/O is
 * reading the rules file and opening the stdout_file of its respond actions,
 * once, in rules_load().
 *
 * The file is JSON; the first rule whose match accepts a call wins, else the
 * default, else nothing:
 *
 *   {"rules": [{"match": {"argv0": "git", "args": ["commit", "**"]},
 *               "respond": {"stdout": "ok\n", "exit": 3}},
 *              {"match": {"argv0": "ssh"}, "delegate": {"argv": ["sh", "-c", "{-1}"]}},
 *              {"match": {"argv0": "make"}, "run": {"argv": ["make", "{@}"], "tee":
 * true}}], "default": {"respond": {"exit": 127, "stderr": "unexpected call\n"}}}
 *
 * A rule may carry "times": N (1..RULES_MAX_TIMES): it answers N calls,
 * then the next matching rule answers (the default has none). An argv0
 * glob with a '/' outside brackets never matches a basename: a load error.
 *
 * Globs are fnmatch(3) patterns with flags 0 (`*` also matches `/`); in
 * "args" an element that is exactly "**" matches any number (0+) of
 * arguments. Templates (argv, cwd and env values of delegate/exec/run):
 * {@} all the call's arguments, as separate elements (a whole argv element
 * only); {N} argument N (N >= 1), {-N} the N-th from the end; {0} argv[0] as
 * invoked; {cwd} the call's cwd; {{ and }} literal braces. An argument out of
 * range, or an unknown cwd, expands to "".
 *
 * Strings from calls (argv, env, cwd) are bytes, not necessarily UTF-8. */
#ifndef SB_CLI_RULES_H
#define SB_CLI_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "socketbridge.h" /* SB__ENUM_ENTRY */

/* Room for the one-line message of rules_load(). */
#define RULES_ERR_MAX 512
/* The longest delay_ms of a respond action: one hour. */
#define RULES_MAX_DELAY_MS (3600u * 1000u)
/* The largest "times" of a rule. */
#define RULES_MAX_TIMES 1000000000u
/* The largest rules file read (bytes); a stdout_file is streamed, any size. */
#define RULES_MAX_FILE_BYTES (64u << 20)

/* A rule's action: its member in the rules file is its name. */
#define RULE_ACTION_MAP(X)                                                               \
  X(RULE_RESPOND, 1, "respond") /* the supervisor answers: output and exit status */     \
  /* the supervisor runs a command in the stub's place */                                \
  X(RULE_DELEGATE, 2, "delegate")                                                        \
  X(RULE_EXEC, 3, "exec") /* the stub execs a command (the exec message) */              \
  /* the stub runs a command and relays it (the run message) */                          \
  X(RULE_RUN, 4, "run")
typedef enum rule_action { RULE_ACTION_MAP(SB__ENUM_ENTRY) } rule_action;

/* "respond", "delegate", "exec", "run"; NULL for another value. */
const char *rules_action_name(rule_action a);

/* What a call must look like; every field that is set must match. */
typedef struct rule_match {
  char *argv0;      /* glob against the basename of argv[0]; NULL: any */
  char **args;      /* nargs globs for argv[1..], NULL-terminated; NULL: any */
  size_t nargs;     /* with "**" entries, which match 0+ arguments */
  char *cwd;        /* glob against the call's cwd; NULL: any */
  char **env_names; /* envc variables that must be set ... */
  char **env_globs; /* ... to a value matching these globs */
  size_t envc;
} rule_match;

typedef struct rule_respond {
  char *out; /* stdout bytes (may hold NULs); NULL when out_len is 0 */
  size_t out_len;
  /* stdout_file: the file, open read-only (owned), its bytes sent from it
   * as they are when a call is answered; out is then NULL. Only a regular
   * file: a FIFO or a device would make a call wait on it. */
  bool has_out_file;
  int out_fd;
  char *err; /* stderr bytes; NULL when err_len is 0 */
  size_t err_len;
  int code;          /* exit status 0..255 (when signal is 0) */
  int signal;        /* 0, or the signal the call dies of */
  uint64_t delay_ms; /* wait this long before answering */
  /* Answer without waiting for the end of the call's stdin: the default, as
   * a caller may keep its stdin open while it waits for the answer (a Node
   * spawn's pipe). "stdin": true waits, so the record holds it all. */
  bool at_once;
} rule_respond;

/* The command of delegate, exec and run: templates, unexpanded. */
typedef struct rule_program {
  char **argv; /* argc >= 1 templates, NULL-terminated */
  size_t argc;
  char *cwd;         /* template; NULL: the call's own cwd */
  char **env_names;  /* envc variables set or overridden in the call's */
  char **env_values; /* environment, to these templates */
  size_t envc;
  char **unset;  /* nunset names removed from it, NULL-terminated */
  size_t nunset; /* (never NULL; a name is never both set and unset) */
  bool tee;      /* run only: also copy the output to the call's */
} rule_program;

typedef struct rule {
  rule_match match; /* all zero for the default */
  rule_action action;
  rule_respond respond; /* when action is RULE_RESPOND, else zero */
  rule_program program; /* for the other actions, else zero */
  int index;            /* position in "rules"; -1 for the default */
  uint32_t times;       /* "times": matches this many calls, then no more; 0: any */
  uint32_t used;        /* calls matched so far (counted when times > 0) */
} rule;

typedef struct rules {
  rule *v; /* n rules in file order */
  size_t n;
  rule *deflt; /* NULL when the file has no default */
} rules;

/* Reads and checks the rules file at path into *out (zeroed first; the caller
 * frees it with rules_free(), also after a failure). Reads stdout_file
 * entries now (opens them; each must be a regular file), relative ones from the
 * rules file's directory. The rules file itself must be a regular file,
 * opened without waiting (a FIFO is refused, never waited on). Returns 0, or
 * -1 with one line in err (at most errsz bytes, RULES_ERR_MAX is enough):
 * "FILE: reason" when the file cannot be read, else "FILE:LINE: WHERE: reason"
 * with LINE the line of the offending key or value and WHERE its path
 * ("rules[2].respond.exit"; no "WHERE: " at the top level). Control bytes
 * of the file are printed as '?'. path and err must not be NULL. */
int rules_load(const char *path, rules *out, char *err, size_t errsz);

/* Frees what r holds and zeroes it. */
void rules_free(rules *r);

/* The first rule matching a call, else the default, else NULL; a rule with
 * "times" that has matched that many calls is passed over, and the call
 * counts against the rule returned (so the next rule answers the next
 * calls: sequenced answers). argv holds argc strings (argc may be 0: then
 * no argv0 glob matches); env holds envc "NAME=VALUE" strings (the first
 * of a name counts); cwd may be NULL (unknown: no cwd glob matches). The
 * result points into r. */
const rule *rules_match(rules *r, size_t argc, char *const *argv, const char *cwd,
                        size_t envc, char *const *env);

/* A copy of r (its bytes too) that outlives the rules it came from, or
 * NULL when out of memory; free it with rule_respond_free() (NULL: nothing). */
rule_respond *rule_respond_dup(const rule_respond *r);
void rule_respond_free(rule_respond *r);

/* A program's templates expanded for one call. Every string and array is
 * malloc'd and owned by the struct. */
typedef struct rule_launch {
  char **argv;  /* argc strings, NULL-terminated; argc may be 0 (an argv of */
  size_t argc;  /* only "{@}" and a call without arguments): refuse it then */
  char *cwd;    /* NULL when the program has no cwd */
  char **set;   /* "NAME=VALUE" to set in the call's environment, NULL-terminated */
  char **unset; /* names to remove from it, NULL-terminated */
  bool tee;
} rule_launch;

/* Expands p's templates for a call (argc/argv/cwd as in rules_match()) into
 * *out (zeroed first). Returns 0 or -ENOMEM (then *out holds nothing). */
int rules_expand(const rule_program *p, size_t argc, char *const *argv, const char *cwd,
                 rule_launch *out);

/* Frees what l holds and zeroes it. */
void rule_launch_free(rule_launch *l);

#endif
