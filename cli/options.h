/* SPDX-License-Identifier: MIT */
/* options.h - the `socketbridge run` command line, parsed and checked into a
 * struct. Pure: no I/O, no allocation besides the struct's own arrays (env,
 * unset, shims), so every rule can be unit-tested. */
#ifndef SB_CLI_OPTIONS_H
#define SB_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of `socketbridge run`, as timeout(1) and env(1). */
#define CLI_EXIT_TIMEOUT 124    /* --timeout fired */
#define CLI_EXIT_FAILURE 125    /* socketbridge itself failed (bad option...) */
#define CLI_EXIT_CANNOT_RUN 126 /* the command was found but cannot run */
#define CLI_EXIT_NOT_FOUND 127  /* the command was not found */

/* Room for the one-line error message of a bad command line. */
#define CLI_ERR_MAX 512

typedef enum cli_transport {
  CLI_TRANSPORT_TCP = 0, /* TCP on 127.0.0.1, kernel-chosen port */
  CLI_TRANSPORT_UNIX,    /* a Unix socket in a fresh 0700 directory */
} cli_transport;

typedef enum cli_restart {
  CLI_RESTART_NO = 0,     /* never */
  CLI_RESTART_ON_FAILURE, /* after a non-zero exit or a death by signal */
  CLI_RESTART_ALWAYS,     /* whenever the child ends, up to max_restarts */
} cli_restart;

/* Defaults of the options that have one. */
#define CLI_DEFAULT_KILL_AFTER_MS 5000
#define CLI_DEFAULT_MAX_RESTARTS 5
#define CLI_DEFAULT_BACKOFF_MIN_MS 100
#define CLI_DEFAULT_BACKOFF_MAX_MS 30000

/* Every string points into the argv given to cli_parse_run() (or the
 * environment, for SOCKETBRIDGE_ALLOWLIST); only `env`, `unset` and `shims`
 * (the arrays, not their strings) are allocated: cli_options_free(). */
typedef struct cli_options {
  cli_transport transport;
  bool transport_given;    /* --transport was on the command line */
  const char *host;        /* --host: NULL, the library's 127.0.0.1 */
  const char *allowlist;   /* --allow, else $SOCKETBRIDGE_ALLOWLIST; NULL: none */
  bool allow_given;        /* --allow was on the command line */
  const char *socket_path; /* --socket: NULL, a fresh directory; "@name": abstract */
  unsigned socket_mode;    /* --socket-mode, 0: not given (0600) */
  const char *shim_dir;    /* --shim-dir: NULL, a fresh one removed after the run */
  char **env;              /* "NAME=VALUE" of each --env, NULL-terminated (never NULL) */
  size_t envc;
  char **unset; /* -u NAMEs, NULL-terminated (never NULL) */
  size_t nunset;
  bool ignore_env;         /* -i: COMMAND starts from an empty environment */
  const char *chdir;       /* -C: COMMAND's working directory, NULL: ours */
  bool preserve_status;    /* --preserve-status: the child's status even on --timeout */
  bool verbose;            /* -v: a live trace on stderr */
  const char *stdin_path;  /* NULL: inherited */
  const char *stdout_path; /* NULL: inherited */
  const char *stderr_path; /* NULL: inherited */
  const char *events_path; /* NULL: no events file */
  const char *rules_path;  /* --rules: NULL, every stub call exits 0 */
  const char *record_path; /* --record: NULL, no record */
  char **shims;            /* --shim NAMEs, NULL-terminated (never NULL) */
  size_t nshims;
  uint64_t timeout_ms;    /* 0: none */
  uint64_t kill_after_ms; /* 0: SIGKILL right after the stop signal */
  int stop_signal;
  cli_restart restart;
  unsigned max_restarts;
  uint64_t backoff_min_ms, backoff_max_ms;
  bool no_tty;              /* --no-tty: COMMAND detached from the terminal */
  uint32_t max_bytes;       /* --max-bytes: 0, the default (1 MiB) */
  unsigned max_connections; /* --max-connections: 0, no bound but fds */
  char **command;           /* the first non-option word on, or the words after "--" */
} cli_options;

/* Parses the arguments of `socketbridge run` (argv[0] is "run"; argc counts
 * it), with envp (the environment, for SOCKETBRIDGE_ALLOWLIST; NULL: none).
 * Options are `--name value`, `--name=value`, `-x value`, `-xvalue`, and
 * flags may be grouped (`-iv`); the first word that is not an option (or the
 * one after "--") starts the command. Returns 0; 1 for --help; or -1 with
 * one line (no newline, starting "socketbridge: ") in err, naming the option
 * and what is wrong with it. On 1 and -1 nothing needs freeing. */
int cli_parse_run(int argc, char **argv, char *const *envp, cli_options *out,
                  char err[CLI_ERR_MAX]);
void cli_options_free(cli_options *o);

/* 0 when v can name a shim (a bare file name), else -1 with err set. */
int cli_check_shim_name(const char *v, char err[CLI_ERR_MAX]);

#endif
