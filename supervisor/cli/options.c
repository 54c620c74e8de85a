/* options.c - `socketbridge run` options: parsed, checked, and turned into
 * one line of error text when wrong, before anything runs. */
#include "options.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sb_proto.h"

/* The options of `run`; each takes one value. */
typedef enum opt_id {
  OPT_TRANSPORT,
  OPT_ENV,
  OPT_STDIN,
  OPT_STDOUT,
  OPT_STDERR,
  OPT_EVENTS,
  OPT_TIMEOUT,
  OPT_KILL_AFTER,
  OPT_STOP_SIGNAL,
  OPT_RESTART,
  OPT_MAX_RESTARTS,
  OPT_BACKOFF,
  OPT_SHIM,
  OPT_RULES,
  OPT_RECORD,
} opt_id;

static const struct {
  const char *name;
  opt_id id;
} run_opts[] = {
    {"--transport", OPT_TRANSPORT},
    {"--env", OPT_ENV},
    {"--stdin", OPT_STDIN},
    {"--stdout", OPT_STDOUT},
    {"--stderr", OPT_STDERR},
    {"--events", OPT_EVENTS},
    {"--timeout", OPT_TIMEOUT},
    {"--kill-after", OPT_KILL_AFTER},
    {"--stop-signal", OPT_STOP_SIGNAL},
    {"--restart", OPT_RESTART},
    {"--max-restarts", OPT_MAX_RESTARTS},
    {"--backoff", OPT_BACKOFF},
    {"--shim", OPT_SHIM},
    {"--rules", OPT_RULES},
    {"--record", OPT_RECORD},
};

#define N_RUN_OPTS (sizeof run_opts / sizeof run_opts[0])

/* Seconds above this are refused: they would be a mistake, and milliseconds
 * of it still fit any timer. */
#define MAX_SECONDS_DIGITS 9
/* --max-restarts and --backoff bounds. */
#define MAX_RESTARTS_LIMIT 1000000u
#define MAX_BACKOFF_MS (24ull * 3600 * 1000)

/* The variables the bridge sets for every child: an --env copy would be
 * silently replaced, so it is refused instead. */
static const char *const bridge_vars[] = {SB_ENV_TOKEN,  SB_ENV_PORT,      SB_ENV_HOST,
                                          SB_ENV_SOCKET, SB_ENV_MAX_BYTES, SB_ENV_STUB};

__attribute__((format(printf, 2, 3))) static int fail(char err[CLI_ERR_MAX],
                                                      const char *fmt, ...) {
  va_list ap;
  int n = snprintf(err, CLI_ERR_MAX, "socketbridge: ");
  va_start(ap, fmt);
  vsnprintf(err + n, CLI_ERR_MAX - (size_t)n, fmt, ap);
  va_end(ap);
  return -1;
}

/* len bytes of v as they are shown in an error (into at least 74 bytes of
 * buf): control bytes as '?', long
 * ones cut, so the error stays one readable line. */
static const char *bare(const char *v, size_t len, char *buf) {
  size_t i = 0, o = 0;
  for (; i < len && v[i] != '\0' && o < 70; i++)
    buf[o++] = ((unsigned char)v[i] < 0x20 || v[i] == 0x7f) ? '?' : v[i];
  if (i < len && v[i] != '\0') {
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  buf[o] = '\0';
  return buf;
}

/* A value, quoted. */
static const char *shown(const char *v, char buf[80]) {
  size_t n;
  buf[0] = '"';
  n = strlen(bare(v, SIZE_MAX, buf + 1)) + 1; /* bare() writes at most 73 + NUL */
  buf[n] = '"';
  buf[n + 1] = '\0';
  return buf;
}

int cli_parse_seconds(const char *s, uint64_t *ms) {
  uint64_t whole = 0, frac = 0;
  unsigned nwhole = 0, nfrac = 0;
  bool rest = false;
  const char *p = s;

  for (; *p >= '0' && *p <= '9'; p++, nwhole++) {
    if (nwhole == MAX_SECONDS_DIGITS)
      return -1;
    whole = whole * 10 + (uint64_t)(*p - '0');
  }
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
      if (nfrac < 3)
        frac = frac * 10 + (uint64_t)(*p - '0');
      else if (*p != '0')
        rest = true;
    }
  }
  if (*p != '\0' || nwhole + nfrac == 0)
    return -1;
  for (; nfrac < 3; nfrac++)
    frac *= 10;
  *ms = whole * 1000 + frac + (rest ? 1 : 0);
  return 0;
}

/* A decimal number without sign or spaces, at most max. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  uint64_t v = 0;
  if (*s == '\0')
    return -1;
  for (; *s != '\0'; s++) {
    if (*s < '0' || *s > '9')
      return -1;
    v = v * 10 + (uint64_t)(*s - '0');
    if (v > max)
      return -1;
  }
  *out = v;
  return 0;
}

/* "TERM", "SIGTERM", "term", or any signal number the kernel has. */
static int parse_signal(const char *s) {
  uint64_t n;
  if (*s >= '0' && *s <= '9')
    return parse_uint(s, (uint64_t)SIGRTMAX, &n) == 0 && n > 0 ? (int)n : 0;
  return sb_signal_from_name(s);
}

static int parse_env(const char *v, char err[CLI_ERR_MAX]) {
  char b[80];
  const char *eq = strchr(v, '=');
  if (eq == NULL)
    return fail(err, "--env: %s is not NAME=VALUE", shown(v, b));
  if (eq == v)
    return fail(err, "--env: %s has an empty NAME", shown(v, b));
  for (size_t i = 0; i < sizeof bridge_vars / sizeof bridge_vars[0]; i++) {
    size_t n = strlen(bridge_vars[i]);
    if ((size_t)(eq - v) == n && memcmp(v, bridge_vars[i], n) == 0)
      return fail(err, "--env: %s is set by socketbridge for each child", bridge_vars[i]);
  }
  return 0;
}

/* A shim is a link in one directory: a bare file name. */
int cli_check_shim_name(const char *v, char err[CLI_ERR_MAX]) {
  char b[80];
  if (*v == '\0')
    return fail(err, "--shim: the name is empty");
  if (strchr(v, '/') != NULL || strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
    return fail(err, "--shim: %s is not a program name (no '/', not . or ..)",
                shown(v, b));
  return 0;
}

static int parse_backoff(const char *v, cli_options *o, char err[CLI_ERR_MAX]) {
  char b[80], lo[24];
  const char *colon = strchr(v, ':');
  size_t n = colon ? (size_t)(colon - v) : 0;
  uint64_t min, max;

  if (colon == NULL || n >= sizeof lo)
    return fail(err, "--backoff: %s is not MIN_MS:MAX_MS", shown(v, b));
  memcpy(lo, v, n);
  lo[n] = '\0';
  if (parse_uint(lo, MAX_BACKOFF_MS, &min) != 0 ||
      parse_uint(colon + 1, MAX_BACKOFF_MS, &max) != 0)
    return fail(err, "--backoff: %s is not MIN_MS:MAX_MS (milliseconds, at most %llu)",
                shown(v, b), (unsigned long long)MAX_BACKOFF_MS);
  if (min == 0)
    return fail(err, "--backoff: %s: MIN_MS must be at least 1", shown(v, b));
  if (min > max)
    return fail(err, "--backoff: %s: MIN_MS is above MAX_MS", shown(v, b));
  o->backoff_min_ms = min;
  o->backoff_max_ms = max;
  return 0;
}

/* Applies one option's value. */
static int apply(opt_id id, const char *name, const char *v, cli_options *o,
                 char err[CLI_ERR_MAX]) {
  char b[80];
  uint64_t n;

  switch (id) {
  case OPT_TRANSPORT:
    if (strcmp(v, "tcp") == 0)
      o->transport = CLI_TRANSPORT_TCP;
    else if (strcmp(v, "unix") == 0)
      o->transport = CLI_TRANSPORT_UNIX;
    else
      return fail(err, "%s: %s is not tcp or unix", name, shown(v, b));
    return 0;
  case OPT_ENV:
    if (parse_env(v, err) != 0)
      return -1;
    o->env[o->envc++] = (char *)v;
    o->env[o->envc] = NULL;
    return 0;
  case OPT_SHIM:
    if (cli_check_shim_name(v, err) != 0)
      return -1;
    o->shims[o->nshims++] = (char *)v;
    o->shims[o->nshims] = NULL;
    return 0;
  case OPT_STDIN:
  case OPT_STDOUT:
  case OPT_STDERR:
  case OPT_EVENTS:
  case OPT_RULES:
  case OPT_RECORD:
    if (*v == '\0')
      return fail(err, "%s: the file name is empty", name);
    *(id == OPT_STDIN    ? &o->stdin_path
      : id == OPT_STDOUT ? &o->stdout_path
      : id == OPT_STDERR ? &o->stderr_path
      : id == OPT_EVENTS ? &o->events_path
      : id == OPT_RULES  ? &o->rules_path
                         : &o->record_path) = v;
    return 0;
  case OPT_TIMEOUT:
  case OPT_KILL_AFTER:
    if (cli_parse_seconds(v, &n) != 0)
      return fail(err, "%s: %s is not a number of seconds", name, shown(v, b));
    if (id == OPT_TIMEOUT)
      o->timeout_ms = n;
    else
      o->kill_after_ms = n;
    return 0;
  case OPT_STOP_SIGNAL:
    o->stop_signal = parse_signal(v);
    if (o->stop_signal == 0)
      return fail(err, "%s: %s is not a signal name or number", name, shown(v, b));
    return 0;
  case OPT_RESTART:
    if (strcmp(v, "no") == 0)
      o->restart = CLI_RESTART_NO;
    else if (strcmp(v, "on-failure") == 0)
      o->restart = CLI_RESTART_ON_FAILURE;
    else if (strcmp(v, "always") == 0)
      o->restart = CLI_RESTART_ALWAYS;
    else
      return fail(err, "%s: %s is not no, on-failure or always", name, shown(v, b));
    return 0;
  case OPT_MAX_RESTARTS:
    if (parse_uint(v, MAX_RESTARTS_LIMIT, &n) != 0)
      return fail(err, "%s: %s is not a whole number from 0 to %u", name, shown(v, b),
                  MAX_RESTARTS_LIMIT);
    o->max_restarts = (unsigned)n;
    return 0;
  case OPT_BACKOFF:
    return parse_backoff(v, o, err);
  }
  return fail(err, "%s: unknown option", name);
}

/* Finds the option an argument names: "--timeout" or "--timeout=5". */
static int lookup(const char *arg, size_t *name_len) {
  size_t len = strcspn(arg, "=");
  for (size_t i = 0; i < N_RUN_OPTS; i++) {
    if (strlen(run_opts[i].name) == len && memcmp(arg, run_opts[i].name, len) == 0) {
      *name_len = len;
      return (int)i;
    }
  }
  return -1;
}

int cli_parse_run(int argc, char **argv, cli_options *out, char err[CLI_ERR_MAX]) {
  cli_options o = {
      .kill_after_ms = CLI_DEFAULT_KILL_AFTER_MS,
      .stop_signal = SIGTERM,
      .max_restarts = CLI_DEFAULT_MAX_RESTARTS,
      .backoff_min_ms = CLI_DEFAULT_BACKOFF_MIN_MS,
      .backoff_max_ms = CLI_DEFAULT_BACKOFF_MAX_MS,
  };
  char b[80], name[32];
  int i;

  err[0] = '\0';
  /* At most one --env or --shim per argument: argc bounds the arrays. */
  o.env = calloc((size_t)argc + 1, sizeof *o.env);
  o.shims = calloc((size_t)argc + 1, sizeof *o.shims);
  if (o.env == NULL || o.shims == NULL) {
    cli_options_free(&o);
    return fail(err, "run: out of memory");
  }

  for (i = 1; i < argc; i++) {
    const char *arg = argv[i], *value;
    size_t len;
    int k;

    if (strcmp(arg, "--") == 0)
      break;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      cli_options_free(&o);
      return 1;
    }
    if (arg[0] != '-') {
      fail(err, "run: %s is not an option; the command goes after --", shown(arg, b));
      goto error;
    }
    k = lookup(arg, &len);
    if (k < 0) {
      fail(err, "%s: unknown option (see socketbridge --help)",
           bare(arg, strcspn(arg, "="), b));
      goto error;
    }
    snprintf(name, sizeof name, "%s", run_opts[k].name);
    if (arg[len] == '=') {
      value = arg + len + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fail(err, "%s: missing value", name);
      goto error;
    }
    if (apply(run_opts[k].id, name, value, &o, err) != 0)
      goto error;
  }

  if (i >= argc) {
    fail(err, "run: missing -- COMMAND");
    goto error;
  }
  if (i + 1 >= argc || argv[i + 1][0] == '\0') {
    fail(err, "run: missing COMMAND after --");
    goto error;
  }
  o.command = argv + i + 1;
  /* No restart can follow: the same as --restart no. */
  if (o.max_restarts == 0)
    o.restart = CLI_RESTART_NO;
  *out = o;
  return 0;

error:
  cli_options_free(&o);
  return -1;
}

void cli_options_free(cli_options *o) {
  free(o->env);
  free(o->shims);
  o->env = NULL;
  o->shims = NULL;
}
