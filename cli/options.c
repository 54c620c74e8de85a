/* SPDX-License-Identifier: MIT */
/* options.c - `socketbridge run` options: parsed, checked, and turned into
 * one line of error text when wrong, before anything runs. */
#include "options.h"

#include <limits.h>
#include <stddef.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "allowlist.h"
#include "proto.h"

/* Durations above this are refused: they would be a mistake (about 31
 * years), and milliseconds of it still fit any timer. */
#define MAX_SECONDS_DIGITS 9
#define MAX_DURATION_MS 1000000000000ull
/* --max-restarts and --backoff bounds. */
#define MAX_RESTARTS_LIMIT 1000000u
#define MAX_BACKOFF_MS (24ull * 3600 * 1000)
/* --max-connections: a bound, not a resource to reserve. */
#define MAX_CONNECTIONS_LIMIT 1000000u

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

/* A unit of a duration, as timeout(1): its letter and seconds. */
static const struct {
  char letter;
  unsigned seconds;
} duration_units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};

/* Parses a duration as timeout(1): decimal digits with an optional fraction
 * ("2", "0.5", "10.") and an optional unit, s (the default), m, h or d,
 * rounded up to whole milliseconds. Returns 0 or -1. */
static int parse_seconds(const char *s, uint64_t *ms) {
  uint64_t whole = 0, frac_ns = 0, scale = 100000000, unit = 1;
  unsigned nwhole = 0, nfrac = 0;
  bool rest = false;
  const char *p = s;
  unsigned __int128 ns;

  for (; *p >= '0' && *p <= '9'; p++, nwhole++) {
    if (nwhole == MAX_SECONDS_DIGITS)
      return -1;
    whole = whole * 10 + (uint64_t)(*p - '0');
  }
  if (*p == '.') {
    for (p++; *p >= '0' && *p <= '9'; p++, nfrac++) {
      if (scale > 0)
        frac_ns += (uint64_t)(*p - '0') * scale;
      else if (*p != '0')
        rest = true;
      scale /= 10;
    }
  }
  if (nwhole + nfrac == 0)
    return -1;
  if (*p != '\0') {
    size_t u = 0;
    while (u < sizeof duration_units / sizeof duration_units[0] &&
           duration_units[u].letter != *p)
      u++;
    if (u == sizeof duration_units / sizeof duration_units[0] || p[1] != '\0')
      return -1;
    unit = duration_units[u].seconds;
  }
  /* In nanoseconds of the unit, then whole milliseconds, rounded up. */
  ns = ((unsigned __int128)whole * 1000000000u + frac_ns) * unit;
  if (ns > (unsigned __int128)MAX_DURATION_MS * 1000000u)
    return -1;
  *ms = (uint64_t)(ns / 1000000u) + ((ns % 1000000u) != 0 || rest ? 1 : 0);
  return 0;
}

/* "TERM", "SIGTERM", "term", or any signal number the kernel has. */
static int parse_signal(const char *s) {
  uint64_t n;
  if (*s >= '0' && *s <= '9')
    return sb__parse_uint(s, (uint64_t)SIGRTMAX, &n) && n > 0 ? (int)n : 0;
  return sb_signal_from_name(s);
}

static int parse_env(const char *v, char err[CLI_ERR_MAX]) {
  char b[80];
  const char *eq = strchr(v, '=');
  if (eq == NULL)
    return fail(err, "--env: %s is not NAME=VALUE", shown(v, b));
  if (eq == v)
    return fail(err, "--env: %s has an empty NAME", shown(v, b));
  /* The bridge sets these for every child: an --env copy would be
   * silently replaced, so it is refused instead. */
  const char *bridge = sb__bridge_var(v, (size_t)(eq - v));
  if (bridge != NULL)
    return fail(err, "--env: %s is set by socketbridge for each child%s", bridge,
                strcmp(bridge, SB_ENV_MAX_BYTES) == 0 ? " (use --max-bytes N)" : "");
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
  if (!sb__parse_uint(lo, MAX_BACKOFF_MS, &min) ||
      !sb__parse_uint(colon + 1, MAX_BACKOFF_MS, &max))
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

/* ---- one handler per option ---------------------------------------------- */

typedef int (*opt_fn)(cli_options *o, const char *name, const char *v,
                      char err[CLI_ERR_MAX]);

static int opt_transport(cli_options *o, const char *name, const char *v,
                         char err[CLI_ERR_MAX]) {
  char b[80];
  if (strcmp(v, "tcp") == 0)
    o->transport = CLI_TRANSPORT_TCP;
  else if (strcmp(v, "unix") == 0)
    o->transport = CLI_TRANSPORT_UNIX;
  else
    return fail(err, "%s: %s is not tcp or unix", name, shown(v, b));
  o->transport_given = true;
  return 0;
}

static int opt_env(cli_options *o, const char *name, const char *v,
                   char err[CLI_ERR_MAX]) {
  (void)name;
  if (parse_env(v, err) != 0)
    return -1;
  o->env[o->envc++] = (char *)v;
  o->env[o->envc] = NULL;
  return 0;
}

static int opt_unset(cli_options *o, const char *name, const char *v,
                     char err[CLI_ERR_MAX]) {
  char b[80];
  if (*v == '\0' || strchr(v, '=') != NULL)
    return fail(err, "%s: %s is not a variable name", name, shown(v, b));
  if (sb__bridge_var(v, strlen(v)) != NULL)
    return fail(err, "%s: %s is set by socketbridge for each child", name, v);
  o->unset[o->nunset++] = (char *)v;
  o->unset[o->nunset] = NULL;
  return 0;
}

static int opt_shim(cli_options *o, const char *name, const char *v,
                    char err[CLI_ERR_MAX]) {
  (void)name;
  if (cli_check_shim_name(v, err) != 0)
    return -1;
  o->shims[o->nshims++] = (char *)v;
  o->shims[o->nshims] = NULL;
  return 0;
}

/* A file or directory name: anything but empty. */
static int path_value(const char *name, const char *v, const char **to,
                      char err[CLI_ERR_MAX]) {
  if (*v == '\0')
    return fail(err, "%s: the name is empty", name);
  *to = v;
  return 0;
}

static int duration(const char *name, const char *v, uint64_t *to,
                    char err[CLI_ERR_MAX]) {
  char b[80];
  if (parse_seconds(v, to) != 0)
    return fail(err, "%s: %s is not a duration (seconds, or a number with s, m, h or d)",
                name, shown(v, b));
  return 0;
}

static int opt_stop_signal(cli_options *o, const char *name, const char *v,
                           char err[CLI_ERR_MAX]) {
  char b[80];
  o->stop_signal = parse_signal(v);
  if (o->stop_signal == 0)
    return fail(err, "%s: %s is not a signal name or number", name, shown(v, b));
  return 0;
}

static int opt_restart(cli_options *o, const char *name, const char *v,
                       char err[CLI_ERR_MAX]) {
  char b[80];
  if (strcmp(v, "no") == 0)
    o->restart = CLI_RESTART_NO;
  else if (strcmp(v, "on-failure") == 0)
    o->restart = CLI_RESTART_ON_FAILURE;
  else if (strcmp(v, "always") == 0)
    o->restart = CLI_RESTART_ALWAYS;
  else
    return fail(err, "%s: %s is not no, on-failure or always", name, shown(v, b));
  return 0;
}

static int opt_max_restarts(cli_options *o, const char *name, const char *v,
                            char err[CLI_ERR_MAX]) {
  char b[80];
  uint64_t n;
  if (!sb__parse_uint(v, MAX_RESTARTS_LIMIT, &n))
    return fail(err, "%s: %s is not a whole number from 0 to %u", name, shown(v, b),
                MAX_RESTARTS_LIMIT);
  o->max_restarts = (unsigned)n;
  return 0;
}

static int opt_backoff(cli_options *o, const char *name, const char *v,
                       char err[CLI_ERR_MAX]) {
  (void)name;
  return parse_backoff(v, o, err);
}

static int opt_max_bytes(cli_options *o, const char *name, const char *v,
                         char err[CLI_ERR_MAX]) {
  char b[80];
  uint64_t n;
  if (!sb__parse_uint(v, SB_MAX_MAX_BYTES, &n) || n < SB_MIN_MAX_BYTES)
    return fail(err, "%s: %s is not a number of bytes from %u to %u", name, shown(v, b),
                SB_MIN_MAX_BYTES, SB_MAX_MAX_BYTES);
  o->max_bytes = (uint32_t)n;
  return 0;
}

static int opt_max_connections(cli_options *o, const char *name, const char *v,
                               char err[CLI_ERR_MAX]) {
  char b[80];
  uint64_t n;
  if (!sb__parse_uint(v, MAX_CONNECTIONS_LIMIT, &n) || n == 0)
    return fail(err, "%s: %s is not a whole number from 1 to %u", name, shown(v, b),
                MAX_CONNECTIONS_LIMIT);
  o->max_connections = (unsigned)n;
  return 0;
}

/* Host literals only, as the library binds them. */
static int opt_host(cli_options *o, const char *name, const char *v,
                    char err[CLI_ERR_MAX]) {
  char b[80];
  unsigned char addr[16];
  if (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1)
    return fail(err, "%s: %s is not an IPv4 or IPv6 address", name, shown(v, b));
  o->host = v;
  return 0;
}

/* Whether an allowlist parses; the library parses it again for itself. */
static int check_allowlist(const char *name, const char *v, char err[CLI_ERR_MAX]) {
  sb_allowlist l;
  sb_diag diag;
  int r = sb_allowlist_parse(v, &l, &diag);
  sb_allowlist_free(&l);
  if (r == SB_EINVAL)
    return fail(err, "%s: %s", name, diag.msg);
  if (r < 0)
    return fail(err, "%s: %s", name, sb_strerror(r));
  return 0;
}

static int opt_allow(cli_options *o, const char *name, const char *v,
                     char err[CLI_ERR_MAX]) {
  if (*v == '\0')
    return fail(err, "%s: the list is empty", name);
  if (check_allowlist(name, v, err) != 0)
    return -1;
  o->allowlist = v;
  o->allow_given = true;
  return 0;
}

static int opt_socket(cli_options *o, const char *name, const char *v,
                      char err[CLI_ERR_MAX]) {
  char b[80];
  size_t room = sizeof(((struct sockaddr_un *)0)->sun_path);
  if (v[0] != '/' && !(v[0] == '@' && v[1] != '\0'))
    return fail(err, "%s: %s is not an absolute path or @NAME", name, shown(v, b));
  if (strlen(v) >= room)
    return fail(err, "%s: %s is longer than the %zu bytes of a Unix socket address", name,
                shown(v, b), room - 1);
  o->socket_path = v;
  return 0;
}

static int opt_socket_mode(cli_options *o, const char *name, const char *v,
                           char err[CLI_ERR_MAX]) {
  char b[80];
  unsigned mode = 0;
  const char *p = v;
  for (; *p >= '0' && *p <= '7' && mode <= 0777; p++)
    mode = mode * 8 + (unsigned)(*p - '0');
  if (*v == '\0' || *p != '\0' || mode > 0777)
    return fail(err, "%s: %s is not an octal mode from 0 to 0777", name, shown(v, b));
  /* Stubs connect as the user who runs socketbridge. */
  if ((mode & 0600) != 0600)
    return fail(err, "%s: %s leaves the owner without read and write", name, shown(v, b));
  o->socket_mode = mode;
  return 0;
}

/* ---- the table ---------------------------------------------------------------- */

/* What an option does with its value, when the table says it all. */
typedef enum opt_kind {
  OPT_FLAG,     /* no value: sets a bool member */
  OPT_PATH,     /* a file or directory name (not empty) into a string member */
  OPT_DURATION, /* seconds as timeout(1) into a milliseconds member */
  OPT_CALL,     /* its own function */
} opt_kind;

/* The offset of member m of cli_options, which must be of type t: a wrong
 * type in the table does not compile. */
#define MEMBER(t, m)                                                                     \
  (offsetof(cli_options, m) + 0 * sizeof(char[_Generic(((cli_options *)0)->m, t : 1)]))
#define FLAG(m) OPT_FLAG, MEMBER(bool, m), NULL
#define PATH(m) OPT_PATH, MEMBER(const char *, m), NULL
#define DURATION(m) OPT_DURATION, MEMBER(uint64_t, m), NULL
#define CALL(fn) OPT_CALL, 0, fn

/* Every option of run: its long name, its short letter (0: none), and what
 * it does (a kind, the member it sets, or a function). --help and -h are
 * handled before. */
static const struct run_opt {
  const char *name;
  char letter;
  opt_kind kind;
  size_t member; /* OPT_FLAG, OPT_PATH, OPT_DURATION: its offset */
  opt_fn call;   /* OPT_CALL */
} run_opts[] = {
    {"--transport", 0, CALL(opt_transport)},
    {"--host", 0, CALL(opt_host)},
    {"--allow", 0, CALL(opt_allow)},
    {"--socket", 0, CALL(opt_socket)},
    {"--socket-mode", 0, CALL(opt_socket_mode)},
    {"--env", 0, CALL(opt_env)},
    {"--unset", 'u', CALL(opt_unset)},
    {"--ignore-environment", 'i', FLAG(ignore_env)},
    {"--chdir", 'C', PATH(chdir)},
    {"--stdin", 0, PATH(stdin_path)},
    {"--stdout", 0, PATH(stdout_path)},
    {"--stderr", 0, PATH(stderr_path)},
    {"--events", 0, PATH(events_path)},
    {"--timeout", 0, DURATION(timeout_ms)},
    {"--kill-after", 'k', DURATION(kill_after_ms)},
    {"--stop-signal", 's', CALL(opt_stop_signal)},
    {"--preserve-status", 0, FLAG(preserve_status)},
    {"--no-tty", 0, FLAG(no_tty)},
    {"--restart", 0, CALL(opt_restart)},
    {"--max-restarts", 0, CALL(opt_max_restarts)},
    {"--backoff", 0, CALL(opt_backoff)},
    {"--shim", 0, CALL(opt_shim)},
    {"--shim-dir", 0, PATH(shim_dir)},
    {"--rules", 0, PATH(rules_path)},
    {"--record", 0, PATH(record_path)},
    {"--verbose", 'v', FLAG(verbose)},
    {"--max-bytes", 0, CALL(opt_max_bytes)},
    {"--max-connections", 0, CALL(opt_max_connections)},
};

#define N_RUN_OPTS (sizeof run_opts / sizeof run_opts[0])

static const struct run_opt *by_name(const char *arg, size_t len) {
  for (size_t i = 0; i < N_RUN_OPTS; i++)
    if (strlen(run_opts[i].name) == len && memcmp(arg, run_opts[i].name, len) == 0)
      return &run_opts[i];
  return NULL;
}

static const struct run_opt *by_letter(char c) {
  for (size_t i = 0; i < N_RUN_OPTS; i++)
    if (run_opts[i].letter == c && c != 0)
      return &run_opts[i];
  return NULL;
}

static bool takes_value(const struct run_opt *opt) {
  return opt->kind != OPT_FLAG;
}

/* Does what opt says with v (NULL for a flag), name being how it was
 * spelled (the long name, or "-k"). */
static int apply(cli_options *o, const struct run_opt *opt, const char *name,
                 const char *v, char err[CLI_ERR_MAX]) {
  char *member = (char *)o + opt->member;
  switch (opt->kind) {
  case OPT_FLAG:
    *(bool *)member = true;
    return 0;
  case OPT_PATH:
    return path_value(name, v, (const char **)member, err);
  case OPT_DURATION:
    return duration(name, v, (uint64_t *)member, err);
  case OPT_CALL:
    break;
  }
  return opt->call(o, name, v, err);
}

/* "--name", "--name=value" or "--name value": argv[*i] on, *i left on the
 * last word used. */
static int long_option(int argc, char **argv, int *i, cli_options *o,
                       char err[CLI_ERR_MAX]) {
  const char *arg = argv[*i];
  size_t len = strcspn(arg, "=");
  const struct run_opt *opt = by_name(arg, len);
  char b[80];

  if (opt == NULL)
    return fail(err, "%s: unknown option (see socketbridge --help)", bare(arg, len, b));
  if (!takes_value(opt))
    return arg[len] == '=' ? fail(err, "%s: takes no value", opt->name)
                           : apply(o, opt, opt->name, NULL, err);
  if (arg[len] == '=')
    return apply(o, opt, opt->name, arg + len + 1, err);
  if (*i + 1 >= argc)
    return fail(err, "%s: missing value", opt->name);
  return apply(o, opt, opt->name, argv[++*i], err);
}

/* "-iv", "-kVALUE", "-k VALUE": letters as getopt(3) reads them. */
static int short_options(int argc, char **argv, int *i, cli_options *o,
                         char err[CLI_ERR_MAX]) {
  const char *arg = argv[*i];
  char name[3] = "-";
  char b[80];

  for (const char *p = arg + 1; *p != '\0'; p++) {
    const struct run_opt *opt = by_letter(*p);
    name[1] = *p;
    if (opt == NULL)
      return fail(err, "%s: unknown option (see socketbridge --help)", bare(name, 2, b));
    if (!takes_value(opt)) {
      if (apply(o, opt, name, NULL, err) != 0)
        return -1;
      continue;
    }
    if (p[1] != '\0')
      return apply(o, opt, name, p + 1, err);
    if (*i + 1 >= argc)
      return fail(err, "%s: missing value", name);
    return apply(o, opt, name, argv[++*i], err);
  }
  return 0;
}

static bool is_loopback(const char *host) {
  unsigned char a[16];
  static const unsigned char v6_loopback[16] = {[15] = 1};
  static const unsigned char v4_mapped[12] = {[10] = 0xff, [11] = 0xff};
  if (inet_pton(AF_INET, host, a) == 1)
    return a[0] == 127;
  return inet_pton(AF_INET6, host, a) == 1 &&
         (memcmp(a, v6_loopback, 16) == 0 ||
          (memcmp(a, v4_mapped, 12) == 0 && a[12] == 127));
}

/* The checks that need every option seen. */
static int check_together(cli_options *o, char *const *envp, char err[CLI_ERR_MAX]) {
  const char *env_allow = NULL;

  if (o->socket_path != NULL) {
    if (o->transport_given && o->transport != CLI_TRANSPORT_UNIX)
      return fail(err, "--socket: a Unix socket, not --transport tcp");
    o->transport = CLI_TRANSPORT_UNIX;
  }
  if (o->socket_mode != 0 && (o->socket_path == NULL || o->socket_path[0] == '@'))
    return fail(err, "--socket-mode: applies to a --socket PATH (not @NAME)");
  if (o->transport == CLI_TRANSPORT_UNIX && o->host != NULL)
    return fail(err, "--host: applies to --transport tcp only");
  if (o->transport == CLI_TRANSPORT_UNIX && o->allow_given)
    return fail(err, "--allow: applies to --transport tcp only (a Unix socket admits "
                     "the same user only)");
  if (o->allowlist == NULL)
    env_allow = sb__env_value_n(envp, SIZE_MAX, SB_ENV_ALLOWLIST, SB__ENV_LAST);
  if (env_allow != NULL && *env_allow != '\0') {
    if (check_allowlist(SB_ENV_ALLOWLIST, env_allow, err) != 0)
      return -1;
    if (o->transport == CLI_TRANSPORT_TCP)
      o->allowlist = env_allow;
  }
  if (o->host != NULL && !is_loopback(o->host) && o->allowlist == NULL)
    return fail(err,
                "--host: %s is not a loopback address: say who may connect with "
                "--allow",
                o->host);
  if (o->shim_dir != NULL && o->nshims == 0)
    return fail(err, "--shim-dir: needs at least one --shim NAME");
  /* No restart can follow: the same as --restart no. */
  if (o->max_restarts == 0)
    o->restart = CLI_RESTART_NO;
  return 0;
}

/* The defaults, and room for every --env, -u and --shim: at most one per
 * argument, so argc bounds the arrays. -1 when out of memory (free o). */
static int options_init(cli_options *o, int argc) {
  *o = (cli_options){
      .kill_after_ms = CLI_DEFAULT_KILL_AFTER_MS,
      .stop_signal = SIGTERM,
      .max_restarts = CLI_DEFAULT_MAX_RESTARTS,
      .backoff_min_ms = CLI_DEFAULT_BACKOFF_MIN_MS,
      .backoff_max_ms = CLI_DEFAULT_BACKOFF_MAX_MS,
  };
  o->env = calloc((size_t)argc + 1, sizeof *o->env);
  o->unset = calloc((size_t)argc + 1, sizeof *o->unset);
  o->shims = calloc((size_t)argc + 1, sizeof *o->shims);
  return o->env != NULL && o->unset != NULL && o->shims != NULL ? 0 : -1;
}

/* Reads the options before the command: 0 with *cmd the command's index,
 * 1 for --help, or -1 with err set. */
static int read_options(int argc, char **argv, cli_options *o, int *cmd,
                        char err[CLI_ERR_MAX]) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
      return 1;
    /* The first word that is not an option is the command, as env(1). */
    if (arg[0] != '-' || arg[1] == '\0')
      break;
    int r = arg[1] == '-' ? long_option(argc, argv, &i, o, err)
                          : short_options(argc, argv, &i, o, err);
    if (r != 0)
      return -1;
  }
  *cmd = i;
  return 0;
}

int cli_parse_run(int argc, char **argv, char *const *envp, cli_options *out,
                  char err[CLI_ERR_MAX]) {
  cli_options o;
  int cmd = argc, r;

  err[0] = '\0';
  r = options_init(&o, argc) == 0 ? read_options(argc, argv, &o, &cmd, err)
                                  : fail(err, "run: out of memory");
  if (r == 0 && (cmd >= argc || argv[cmd][0] == '\0'))
    r = fail(err, "run: missing COMMAND (after the options, or after --)");
  if (r == 0) {
    o.command = argv + cmd;
    r = check_together(&o, envp, err);
  }
  if (r != 0) {
    cli_options_free(&o);
    return r;
  }
  *out = o;
  return 0;
}

void cli_options_free(cli_options *o) {
  free(o->env);
  free(o->unset);
  free(o->shims);
  o->env = NULL;
  o->unset = NULL;
  o->shims = NULL;
}
