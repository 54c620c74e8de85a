/* The socketbridge command, run as users and scripts run it: its options,
 * its exit statuses, what it writes (and never writes), its events file,
 * and the processes it leaves behind (none). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

TestSuite(cli, .timeout = 90);

extern char **environ;

/* ---- running the command ------------------------------------------------ */

typedef struct cli_result {
  int status; /* the exit status */
  char *out, *err;
  double seconds; /* how long it ran */
} cli_result;

static double scale(void) {
  const char *s = getenv("SB_TEST_TIMEOUT_SCALE");
  double v = s ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Paths in the test's temp dir that stay valid for the whole test. */
static const char *tpath(harness *h, const char *name) {
  static char bufs[32][512];
  static unsigned slot;
  char *b = bufs[slot++ % 32];
  snprintf(b, sizeof bufs[0], "%s/%s", h->dir, name);
  return b;
}

/* A number no other test (or run) uses, for markers. */
static unsigned long unique(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ((unsigned long)getpid() * 1000003ul) ^ (unsigned long)ts.tv_nsec;
}

/* Starts `socketbridge args...` with stdin from in_path (NULL: /dev/null),
 * stdout and stderr to "<tag>.out" and "<tag>.err", and extra env (may be
 * NULL) appended to ours. Every signal is at its default in it. */
static pid_t cli_start(harness *h, char *const *args, const char *in_path,
                       const char *tag, char *const *env) {
  size_t n = 0, m = 0;
  while (environ[n])
    n++;
  while (env && env[m])
    m++;
  char **envp = calloc(n + m + 1, sizeof *envp);
  memcpy(envp, environ, n * sizeof *envp);
  if (m)
    memcpy(envp + n, env, m * sizeof *envp);
  pid_t pid = h_proc_start(h, args, in_path, tag, envp);
  free(envp);
  return pid;
}

/* Waits for pid, bounded by the deadline (then kills it and fails). */
static int wait_pid(pid_t pid, double seconds) {
  bool ended = h_wait_reapable(pid, seconds);
  if (!ended)
    kill(pid, SIGKILL);
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  cr_assert(ended, "socketbridge did not end within %.0f s", seconds);
  cr_assert(WIFEXITED(st), "socketbridge itself died by signal %d", WTERMSIG(st));
  return WEXITSTATUS(st);
}

static void cli_finish(harness *h, pid_t pid, const char *tag, double start,
                       cli_result *res) {
  char out[64], err[64];
  res->status = wait_pid(pid, H_DEADLINE * scale());
  res->seconds = now() - start;
  snprintf(out, sizeof out, "%s.out", tag);
  snprintf(err, sizeof err, "%s.err", tag);
  res->out = h_read(h, out, NULL);
  res->err = h_read(h, err, NULL);
}

/* Runs `socketbridge args...` to its end. */
static void cli_env(harness *h, cli_result *res, char *const *env, char *const *args) {
  double start = now();
  pid_t pid = cli_start(h, args, NULL, "cli", env);
  cli_finish(h, pid, "cli", start, res);
}

#define CLI(h, res, ...)                                                                 \
  cli_env((h), (res), NULL, (char *[]){SB_TEST_CLI, __VA_ARGS__, NULL})

static void cli_free(cli_result *r) {
  free(r->out);
  free(r->err);
}

/* socketbridge wrote nothing of its own to stdout. */
static void assert_quiet_stdout(const cli_result *r) {
  cr_assert_str_empty(r->out, "socketbridge wrote to its stdout: \"%s\"", r->out);
}

static void write_file(harness *h, const char *name, const char *text, mode_t mode) {
  int fd = open(tpath(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static bool exists(harness *h, const char *name) {
  return access(tpath(h, name), F_OK) == 0;
}

/* Waits (bounded) until no process carries marker: processes the stop
 * sequence signalled may take a moment to be torn down. */
static void assert_none_marked(const char *marker) {
  double end = now() + 10 * scale();
  unsigned n;
  while ((n = h_count_marked(marker)) > 0 && now() < end) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  cr_assert_eq(n, 0, "%u processes with %s are left", n, marker);
}

/* ---- --help, --version, stub-path --------------------------------------- */

Test(cli, version_prints_the_library_version) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "--version");
  cr_assert_eq(r.status, 0);
  char want[64];
  snprintf(want, sizeof want, "socketbridge %s\n", sb_version_string());
  cr_assert_str_eq(r.out, want);
  cr_assert_str_empty(r.err);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, help_documents_every_option_exit_status_and_variable) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  const char *want[] = {"run [OPTIONS] -- COMMAND",
                        "stub-path",
                        "--version",
                        "--transport tcp|unix",
                        "--env NAME=VALUE",
                        "--stdin FILE",
                        "--stdout FILE",
                        "--stderr FILE",
                        "--events FILE",
                        "--timeout SECS",
                        "--kill-after SECS",
                        "--stop-signal SIG",
                        "--restart no|on-failure|always",
                        "--max-restarts N",
                        "--backoff MIN_MS:MAX_MS",
                        "128+N",
                        "124",
                        "125",
                        "126",
                        "127",
                        "SOCKETBRIDGE_TOKEN",
                        "SOCKETBRIDGE_HOST",
                        "SOCKETBRIDGE_PORT",
                        "SOCKETBRIDGE_SOCKET",
                        "SOCKETBRIDGE_STUB",
                        "--OPTION=VALUE"};
  const char *spellings[][2] = {{"--help", NULL}, {"run", "--help"}};
  for (size_t s = 0; s < 2; s++) {
    if (spellings[s][1])
      CLI(&h, &r, (char *)spellings[s][0], (char *)spellings[s][1]);
    else
      CLI(&h, &r, (char *)spellings[s][0]);
    cr_assert_eq(r.status, 0);
    cr_assert_str_empty(r.err);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
      cr_assert_not_null(strstr(r.out, want[i]), "--help does not mention %s", want[i]);
    cli_free(&r);
  }
  h_fini(&h);
}

Test(cli, stub_path_prints_the_stub_next_to_the_command) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "stub-path");
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char want[4096], *real = realpath(SB_TEST_STUB, NULL);
  cr_assert_not_null(real);
  snprintf(want, sizeof want, "%s\n", real);
  cr_assert_str_eq(r.out, want);
  cr_assert_str_empty(r.err);
  free(real);
  cli_free(&r);
  h_fini(&h);
}

/* A copy of the command with no stub beside it, in the test's dir. */
static char *lonely_copy(harness *h) {
  char *copy = strdup(tpath(h, "socketbridge"));
  char *args[] = {"/bin/cp", SB_TEST_CLI, copy, NULL};
  pid_t pid;
  cr_assert_eq(posix_spawn(&pid, args[0], NULL, NULL, args, environ), 0);
  cr_assert_eq(wait_pid(pid, H_DEADLINE * scale()), 0, "cp failed");
  return copy;
}

Test(cli, stub_path_without_a_stub_beside_falls_back_to_the_library_default) {
  harness h;
  h_init(&h, NULL);
  char *copy = lonely_copy(&h);
  cli_result r;

  /* The library's default honours an absolute $SOCKETBRIDGE_STUB. */
  char env_ok[4096];
  snprintf(env_ok, sizeof env_ok, "SOCKETBRIDGE_STUB=%s", SB_TEST_STUB);
  cli_env(&h, &r, (char *[]){env_ok, NULL}, (char *[]){copy, "stub-path", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char want[4096];
  snprintf(want, sizeof want, "%s\n", SB_TEST_STUB);
  cr_assert_str_eq(r.out, want);
  cli_free(&r);

  /* None there: 125 and one line. */
  char env_bad[600];
  snprintf(env_bad, sizeof env_bad, "SOCKETBRIDGE_STUB=%s", tpath(&h, "no-such-stub"));
  cli_env(&h, &r, (char *[]){env_bad, NULL}, (char *[]){copy, "stub-path", NULL});
  cr_assert_eq(r.status, 125);
  assert_quiet_stdout(&r);
  cr_assert(strncmp(r.err, "socketbridge: stub-path: ", 25) == 0, "stderr: %s", r.err);
  cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "not one line: %s", r.err);
  cli_free(&r);
  free(copy);
  h_fini(&h);
}

/* ---- exit statuses -------------------------------------------------------- */

Test(cli, exits_with_the_child_code) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "run", "--", "/bin/sh", "-c", "exit 0");
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cr_assert_str_empty(r.err);
  cli_free(&r);
  CLI(&h, &r, "run", "--", "sh", "-c", "exit 3");
  cr_assert_eq(r.status, 3, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cr_assert_str_empty(r.err);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, exits_128_plus_n_when_signal_n_killed_the_child) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "run", "--", "sh", "-c", "kill -USR1 $$");
  cr_assert_eq(r.status, 128 + SIGUSR1, "stderr: %s", r.err);
  cli_free(&r);
  CLI(&h, &r, "run", "--", "sh", "-c", "kill -KILL $$");
  cr_assert_eq(r.status, 128 + SIGKILL, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, exits_124_when_the_timeout_fires_and_not_before) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "run", "--timeout", "0.3", "--", "sleep", "300");
  cr_assert_eq(r.status, 124, "stderr: %s", r.err);
  cr_assert_geq(r.seconds, 0.3, "ended after %.3f s", r.seconds);
  assert_quiet_stdout(&r);
  cr_assert_str_empty(r.err);
  cli_free(&r);
  /* A child that ends first keeps its own status. */
  CLI(&h, &r, "run", "--timeout=60", "--", "sh", "-c", "exit 5");
  cr_assert_eq(r.status, 5, "stderr: %s", r.err);
  cr_assert_lt(r.seconds, 30.0);
  cli_free(&r);
  h_fini(&h);
}

static void assert_one_line(const cli_result *r, const char *mentions) {
  size_t n = strlen(r->err);
  cr_assert(n > 0 && r->err[n - 1] == '\n' && strchr(r->err, '\n') == r->err + n - 1,
            "stderr is not one line: \"%s\"", r->err);
  cr_assert(strncmp(r->err, "socketbridge: ", 14) == 0, "stderr: %s", r->err);
  cr_assert_not_null(strstr(r->err, mentions), "stderr does not name %s: %s", mentions,
                     r->err);
}

Test(cli, exits_127_when_the_command_is_not_found_and_126_when_it_cannot_run) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "run", "--", "socketbridge-test-no-such-command");
  cr_assert_eq(r.status, 127);
  assert_quiet_stdout(&r);
  assert_one_line(&r, "socketbridge-test-no-such-command");
  cli_free(&r);
  CLI(&h, &r, "run", "--", (char *)tpath(&h, "missing/cmd"));
  cr_assert_eq(r.status, 127);
  assert_one_line(&r, "missing/cmd");
  cli_free(&r);

  write_file(&h, "not-executable", "#!/bin/sh\nexit 0\n", 0644);
  CLI(&h, &r, "run", "--", (char *)tpath(&h, "not-executable"));
  cr_assert_eq(r.status, 126);
  assert_quiet_stdout(&r);
  assert_one_line(&r, "not-executable");
  cli_free(&r);
  h_fini(&h);
}

/* ---- bad command lines: 125, one line, nothing run ------------------------ */

typedef struct bad_case {
  const char *args[6]; /* between "run" and "--" (NULL-terminated) */
  bool no_dashdash;    /* leave out "-- COMMAND" */
  const char *mentions;
} bad_case;

Test(cli, a_bad_command_line_exits_125_with_one_line_and_runs_nothing) {
  harness h;
  h_init(&h, NULL);
  char nodir[600];
  snprintf(nodir, sizeof nodir, "%s", tpath(&h, "no/such/dir/file"));
  const bad_case cases[] = {
      {{"--frobnicate", "1"}, false, "--frobnicate"},
      {{"--frobnicate=1"}, false, "--frobnicate"},
      {{"-x"}, false, "-x"},
      {{"--timeout"}, true, "--timeout"},
      {{"--timeout", "abc"}, false, "--timeout: \"abc\" is not a duration"},
      {{"--timeout=-1"}, false, "--timeout"},
      {{"--timeout", "1e3"}, false, "--timeout"},
      {{"--timeout", ""}, false, "--timeout"},
      {{"--timeout", "."}, false, "--timeout"},
      {{"--kill-after", "soon"}, false, "--kill-after"},
      {{"--transport", "udp"}, false, "--transport"},
      {{"--env", "NOEQUALS"}, false, "--env"},
      {{"--env", "=value"}, false, "--env"},
      {{"--env", "SOCKETBRIDGE_TOKEN=x"}, false, "--env"},
      {{"--stop-signal", "NOPE"}, false, "--stop-signal"},
      {{"--stop-signal", "0"}, false, "--stop-signal"},
      {{"--stop-signal", "999"}, false, "--stop-signal"},
      {{"--restart", "sometimes"}, false, "--restart"},
      {{"--max-restarts", "-1"}, false, "--max-restarts"},
      {{"--max-restarts", "many"}, false, "--max-restarts"},
      {{"--backoff", "100"}, false, "--backoff"},
      {{"--backoff", "0:10"}, false, "--backoff"},
      {{"--backoff", "50:10"}, false, "--backoff"},
      {{"--backoff", "a:b"}, false, "--backoff"},
      {{"--stdout="}, false, "--stdout"},
      {{"--stdin", nodir}, false, "--stdin"},
      {{"--stdout", nodir}, false, "--stdout"},
      {{"--stderr", nodir}, false, "--stderr"},
      {{"--events", nodir}, false, "--events"},
      {{"sh"}, true, "--"},
      {{NULL}, true, "--"},
  };
  char script[600];
  snprintf(script, sizeof script, "echo ran > '%s'", tpath(&h, "ran"));

  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    char *args[16];
    size_t n = 0;
    args[n++] = SB_TEST_CLI;
    args[n++] = "run";
    for (size_t i = 0; cases[c].args[i]; i++)
      args[n++] = (char *)cases[c].args[i];
    if (!cases[c].no_dashdash) {
      args[n++] = "--";
      args[n++] = "sh";
      args[n++] = "-c";
      args[n++] = script;
    }
    args[n] = NULL;
    cli_result r;
    cli_env(&h, &r, NULL, args);
    cr_assert_eq(r.status, 125, "case %zu (%s): status %d", c, cases[c].mentions,
                 r.status);
    assert_quiet_stdout(&r);
    assert_one_line(&r, cases[c].mentions);
    cr_assert(!exists(&h, "ran"), "case %zu (%s): the command ran", c, cases[c].mentions);
    cli_free(&r);
  }

  /* And without a command after "--", or without a subcommand at all. */
  cli_result r;
  CLI(&h, &r, "run", "--");
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "COMMAND");
  cli_free(&r);
  cli_env(&h, &r, NULL, (char *[]){SB_TEST_CLI, NULL});
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "subcommand");
  cli_free(&r);
  CLI(&h, &r, "launch");
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "launch");
  cli_free(&r);
  h_fini(&h);
}

/* ---- the child's stdio and environment ---------------------------------- */

Test(cli, stdio_files_capture_the_child_and_the_cli_stdout_stays_empty) {
  harness h;
  h_init(&h, NULL);
  write_file(&h, "in", "line one\nline two\n", 0600);
  write_file(&h, "out", "stale content that must be truncated away\n", 0600);
  cli_result r;
  char err_opt[600];
  snprintf(err_opt, sizeof err_opt, "--stderr=%s", tpath(&h, "err"));
  CLI(&h, &r, "run", "--stdin", (char *)tpath(&h, "in"), "--stdout",
      (char *)tpath(&h, "out"), err_opt, "--", "sh", "-c",
      "cat; echo to-stderr >&2; exit 4");
  cr_assert_eq(r.status, 4, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cr_assert_str_empty(r.err);
  char *out = h_read(&h, "out", NULL), *err = h_read(&h, "err", NULL);
  cr_assert_str_eq(out, "line one\nline two\n");
  cr_assert_str_eq(err, "to-stderr\n");
  free(out);
  free(err);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, env_adds_variables_and_the_bridge_variables_are_set) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  char script[600];
  snprintf(script, sizeof script,
           "echo \"$FOO|$BAR|${SOCKETBRIDGE_HOST:-none}|${SOCKETBRIDGE_PORT:-none}|"
           "${SOCKETBRIDGE_SOCKET:-none}|$SOCKETBRIDGE_STUB\" > '%s'",
           tpath(&h, "env"));
  CLI(&h, &r, "run", "--env", "FOO=one two", "--env=BAR=x=y", "--transport", "tcp", "--",
      "sh", "-c", script);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char *env = h_read(&h, "env", NULL);
  char *real = realpath(SB_TEST_STUB, NULL);
  /* FOO|BAR|host|port|socket|stub */
  char port[16], sock[16], stub[4096];
  cr_assert_eq(
      sscanf(env, "one two|x=y|127.0.0.1|%15[^|]|%15[^|]|%4095[^\n]", port, sock, stub),
      3, "env: %s", env);
  cr_assert_gt(atoi(port), 0, "SOCKETBRIDGE_PORT: %s", port);
  cr_assert_str_eq(sock, "none", "a socket with tcp: %s", env);
  cr_assert_not_null(strstr(env, real), "SOCKETBRIDGE_STUB: %s", env);
  free(real);
  free(env);
  cli_free(&r);
  h_fini(&h);
}

/* The child calls the stub; the stub is answered exit 0, no output. */
static void run_stub_child(harness *h, const char *transport, const char *events) {
  char script[1200];
  snprintf(script, sizeof script,
           "echo \"${SOCKETBRIDGE_SOCKET:-none} ${SOCKETBRIDGE_PORT:-none}\" > '%s'; "
           "\"$SOCKETBRIDGE_STUB\" hello world > '%s' 2>&1 < /dev/null; echo $? > '%s'",
           tpath(h, "addr"), tpath(h, "stubout"), tpath(h, "stubcode"));
  cli_result r;
  char tr[64], ev[600];
  snprintf(tr, sizeof tr, "--transport=%s", transport);
  snprintf(ev, sizeof ev, "--events=%s", events ? events : "/dev/null");
  CLI(h, &r, "run", tr, ev, "--", "sh", "-c", script);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cr_assert_str_empty(r.err);
  cli_free(&r);
  char *code = h_read(h, "stubcode", NULL), *out = h_read(h, "stubout", NULL);
  cr_assert_str_eq(code, "0\n", "the stub exited %s", code);
  cr_assert_str_empty(out, "the stub wrote: %s", out);
  free(code);
  free(out);
}

Test(cli, a_stub_is_answered_exit_0_over_tcp_and_unix) {
  harness h;
  h_init(&h, NULL);
  run_stub_child(&h, "tcp", NULL);
  char *addr = h_read(&h, "addr", NULL);
  cr_assert(strncmp(addr, "none ", 5) == 0 && strcmp(addr, "none none\n") != 0, "tcp: %s",
            addr);
  free(addr);
  run_stub_child(&h, "unix", NULL);
  addr = h_read(&h, "addr", NULL);
  cr_assert(addr[0] == '/' && strstr(addr, " none\n") != NULL, "unix: %s", addr);
  free(addr);
  h_fini(&h);
}

/* ---- stopping: timeout, grace, stop signal, signals to socketbridge ------ */

Test(cli, timeout_leaves_no_grandchild_behind) {
  harness h;
  h_init(&h, NULL);
  char marker[64], script[256];
  snprintf(marker, sizeof marker, "300.%lu", unique() % 1000000000ul);
  snprintf(script, sizeof script, "sleep %s & sleep %s & sleep %s", marker, marker,
           marker);
  cli_result r;
  CLI(&h, &r, "run", "--timeout", "0.5", "--", "sh", "-c", script);
  cr_assert_eq(r.status, 124, "stderr: %s", r.err);
  assert_none_marked(marker);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, kill_after_sends_sigkill_to_a_child_ignoring_the_stop_signal) {
  harness h;
  h_init(&h, NULL);
  char marker[64], script[256];
  snprintf(marker, sizeof marker, "300.%lu", unique() % 1000000000ul);
  /* TERM ignored by the shell and, inherited, by its sleeps. */
  snprintf(script, sizeof script, "trap '' TERM; sleep %s & sleep %s", marker, marker);
  cli_result r;
  /* The timeout leaves the shell ample time to set its trap. */
  CLI(&h, &r, "run", "--timeout", "1", "--kill-after", "0.4", "--", "sh", "-c", script);
  /* As timeout -k: the stop needed SIGKILL, 137 and not 124. */
  cr_assert_eq(r.status, 128 + SIGKILL, "stderr: %s", r.err);
  cr_assert_geq(r.seconds, 1.4, "ended after %.3f s, before the grace", r.seconds);
  assert_none_marked(marker);
  cli_free(&r);
  h_fini(&h);
}

/* Starts `socketbridge run -- sh -c script` where the script writes its
 * pid to "ready" once running; returns the command's pid and the child's. */
static pid_t start_ready(harness *h, const char *pre, const char *body, char *const *opts,
                         pid_t *child) {
  char script[2400];
  snprintf(script, sizeof script, "%s; echo $$ > '%s.tmp' && mv '%s.tmp' '%s'; %s",
           pre ? pre : ":", tpath(h, "ready"), tpath(h, "ready"), tpath(h, "ready"),
           body);
  char *args[24];
  size_t n = 0;
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  for (size_t i = 0; opts && opts[i]; i++)
    args[n++] = opts[i];
  args[n++] = "--";
  args[n++] = "sh";
  args[n++] = "-c";
  args[n++] = script;
  args[n] = NULL;
  pid_t pid = cli_start(h, args, NULL, "cli", NULL);
  h_wait_file(h, "ready");
  char *s = h_read(h, "ready", NULL);
  *child = (pid_t)atoi(s);
  free(s);
  cr_assert_gt(*child, 1);
  return pid;
}

/* The child is gone: reaped, not a zombie of anyone's. */
static void assert_gone(pid_t pid) {
  double end = now() + 10 * scale();
  while (kill(pid, 0) == 0 && now() < end) {
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  cr_assert(kill(pid, 0) < 0 && errno == ESRCH, "the child %d is still there", (int)pid);
}

Test(cli, stop_signal_by_name_and_number) {
  const char *spell[][2] = {{"INT", "INT"}, {"SIGUSR1", "USR1"}, {"12", "USR2"}};
  for (size_t i = 0; i < 3; i++) {
    harness h;
    h_init(&h, NULL);
    char pre[600];
    /* The trap kills the background sleep too, then reports the signal. */
    snprintf(pre, sizeof pre, "trap 'kill $!; echo %s > \"%s\"; exit 0' %s", spell[i][1],
             tpath(&h, "got"), spell[i][1]);
    char *opts[] = {"--stop-signal", (char *)spell[i][0], NULL};
    pid_t child;
    double start = now();
    pid_t pid = start_ready(&h, pre, "sleep 300 & wait", opts, &child);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cli_result r;
    cli_finish(&h, pid, "cli", start, &r);
    cr_assert_eq(r.status, 0, "--stop-signal %s: status %d, stderr: %s", spell[i][0],
                 r.status, r.err);
    char *got = h_read(&h, "got", NULL), want[16];
    snprintf(want, sizeof want, "%s\n", spell[i][1]);
    cr_assert_str_eq(got, want, "--stop-signal %s", spell[i][0]);
    free(got);
    cli_free(&r);
    h_fini(&h);
  }
}

Test(cli, sigterm_and_sigint_to_socketbridge_stop_the_child_and_pass_its_status) {
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  for (size_t i = 0; i < 3; i++) {
    harness h;
    h_init(&h, NULL);
    pid_t child;
    double start = now();
    pid_t pid = start_ready(&h, NULL, "exec sleep 300", NULL, &child);
    cr_assert_eq(kill(pid, sigs[i]), 0);
    cli_result r;
    cli_finish(&h, pid, "cli", start, &r);
    /* The stop signal (TERM) killed the child: the command exits as it. */
    cr_assert_eq(r.status, 128 + SIGTERM, "signal %d: status %d, stderr %s", sigs[i],
                 r.status, r.err);
    assert_quiet_stdout(&r);
    cr_assert_str_empty(r.err);
    assert_gone(child);
    cli_free(&r);
    h_fini(&h);
  }
}

Test(cli, a_child_that_handles_the_stop_signal_decides_the_status) {
  harness h;
  h_init(&h, NULL);
  pid_t child;
  double start = now();
  pid_t pid =
      start_ready(&h, "trap 'kill $!; exit 7' TERM", "sleep 300 & wait", NULL, &child);
  cr_assert_eq(kill(pid, SIGTERM), 0);
  cli_result r;
  cli_finish(&h, pid, "cli", start, &r);
  cr_assert_eq(r.status, 7, "status %d, stderr %s", r.status, r.err);
  assert_gone(child);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, a_second_signal_kills_at_once) {
  harness h;
  h_init(&h, NULL);
  pid_t child;
  double start = now();
  char *opts[] = {"--kill-after", "300", NULL};
  pid_t pid = start_ready(&h, "trap '' TERM", "exec sleep 300", opts, &child);
  /* Two different signals, so the kernel cannot merge them into one. */
  cr_assert_eq(kill(pid, SIGTERM), 0);
  cr_assert_eq(kill(pid, SIGINT), 0);
  cli_result r;
  cli_finish(&h, pid, "cli", start, &r);
  cr_assert_eq(r.status, 128 + SIGKILL, "status %d, stderr %s", r.status, r.err);
  cr_assert_lt(r.seconds, 60.0);
  assert_gone(child);
  cli_free(&r);
  h_fini(&h);
}

/* ---- the events file ------------------------------------------------------ */

typedef struct events {
  cJSON *items[256];
  size_t n;
} events;

/* Parses the events file: every line one JSON object with an "event" and
 * a "ts" (sb_event_to_json). */
static void read_events(harness *h, const char *name, events *ev) {
  char *text = h_read(h, name, NULL), *line = text, *nl;
  ev->n = 0;
  cr_assert(text[0] == '\0' || text[strlen(text) - 1] == '\n', "a partial last line");
  while ((nl = strchr(line, '\n')) != NULL) {
    *nl = '\0';
    cJSON *j = cJSON_Parse(line);
    cr_assert_not_null(j, "not JSON: %s", line);
    cr_assert(cJSON_IsObject(j), "not an object: %s", line);
    cr_assert(cJSON_IsString(cJSON_GetObjectItem(j, "event")), "no event: %s", line);
    cr_assert(cJSON_IsNumber(cJSON_GetObjectItem(j, "ts")), "no ts: %s", line);
    cr_assert_lt(ev->n, 256u);
    ev->items[ev->n++] = j;
    line = nl + 1;
  }
  free(text);
}

static void free_events(events *ev) {
  for (size_t i = 0; i < ev->n; i++)
    cJSON_Delete(ev->items[i]);
}

static const char *type_of(const events *ev, size_t i) {
  return cJSON_GetObjectItem(ev->items[i], "event")->valuestring;
}

static unsigned count_type(const events *ev, const char *type) {
  unsigned n = 0;
  for (size_t i = 0; i < ev->n; i++)
    n += strcmp(type_of(ev, i), type) == 0;
  return n;
}

static double number(const cJSON *j, const char *name) {
  const cJSON *v = cJSON_GetObjectItem(j, name);
  cr_assert(cJSON_IsNumber(v), "no number %s", name);
  return v->valuedouble;
}

Test(cli, restarts_are_counted_and_the_backoff_grows_within_its_bounds) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  char ev_opt[600];
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", tpath(&h, "events"));
  CLI(&h, &r, "run", ev_opt, "--restart", "always", "--max-restarts", "3", "--backoff",
      "10:40", "--", "sh", "-c", "exit 2");
  cr_assert_eq(r.status, 2, "the last run's status; stderr: %s", r.err);
  assert_quiet_stdout(&r);
  cli_free(&r);

  events ev;
  read_events(&h, "events", &ev);
  cr_assert_eq(count_type(&ev, "spawn"), 4, "1 run + 3 restarts");
  cr_assert_eq(count_type(&ev, "exit"), 4);
  cr_assert_eq(count_type(&ev, "restart"), 3);
  cr_assert_eq(count_type(&ev, "backoff"), 3);
  cr_assert_eq(count_type(&ev, "give_up"), 1);
  /* The delay before restart k+1 is in [max(10, b/2), b] with
   * b = min(10 * 2^k, 40); so 10, 10..20, 20..40, never decreasing. */
  double prev = 0;
  unsigned k = 0, spawns = 0;
  for (size_t i = 0; i < ev.n; i++) {
    if (strcmp(type_of(&ev, i), "spawn") == 0)
      cr_assert_eq(number(ev.items[i], "restarts"), spawns++, "spawn %u", spawns);
    if (strcmp(type_of(&ev, i), "backoff") != 0)
      continue;
    double d = number(ev.items[i], "delay_ms"), b = 10.0 * (1u << k);
    if (b > 40)
      b = 40;
    double lo = b / 2 < 10 ? 10 : b / 2;
    cr_assert(d >= lo && d <= b, "backoff %u: %.0f ms outside [%.0f, %.0f]", k, d, lo, b);
    cr_assert_geq(d, prev, "backoff %u shrank: %.0f after %.0f", k, d, prev);
    prev = d;
    k++;
  }
  free_events(&ev);

  /* on-failure: a run that succeeds is not restarted. */
  char script[600];
  snprintf(script, sizeof script,
           "n=$(cat '%s' 2>/dev/null || echo 0); echo $((n+1)) > '%s'; [ $n -ge 1 ]",
           tpath(&h, "count"), tpath(&h, "count"));
  CLI(&h, &r, "run", ev_opt, "--restart=on-failure", "--backoff=1:2", "--", "sh", "-c",
      script);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  read_events(&h, "events", &ev);
  cr_assert_eq(count_type(&ev, "spawn"), 2, "one failure, one restart");
  cr_assert_eq(count_type(&ev, "give_up"), 0);
  free_events(&ev);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, events_are_json_lines_with_the_stub_calls_and_never_the_token) {
  harness h;
  h_init(&h, NULL);
  char script[1200], ev_opt[600];
  snprintf(script, sizeof script,
           "printf %%s \"$SOCKETBRIDGE_TOKEN\" > '%s'; \"$SOCKETBRIDGE_STUB\" one two; "
           "echo \"$SOCKETBRIDGE_TOKEN\" >&2; exit 3",
           tpath(&h, "token"));
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", tpath(&h, "events"));
  char err_opt[600];
  snprintf(err_opt, sizeof err_opt, "--stderr=%s", tpath(&h, "child.err"));
  cli_result r;
  CLI(&h, &r, "run", ev_opt, err_opt, "--", "sh", "-c", script);
  cr_assert_eq(r.status, 3, "stderr: %s", r.err);
  assert_quiet_stdout(&r);

  size_t tlen;
  char *token = h_read(&h, "token", &tlen);
  cr_assert_eq(tlen, 64, "token: %s", token);
  /* The child got it (it printed it to its own stderr, captured)... */
  char *child_err = h_read(&h, "child.err", NULL);
  cr_assert_not_null(strstr(child_err, token));
  /* ...and socketbridge wrote it nowhere. */
  char *raw = h_read(&h, "events", NULL);
  cr_assert_null(strstr(raw, token), "the token is in the events");
  cr_assert_null(strstr(r.err, token), "the token is on stderr");
  cr_assert_null(strstr(r.out, token), "the token is on stdout");

  events ev;
  read_events(&h, "events", &ev);
  /* spawn, then stub_connect, then stub_exit; the child's exit follows the
   * connection, though it may be reaped before the stub's socket closes. */
  const char *order[] = {"spawn", "stub_connect", "stub_exit"};
  size_t k = 0, connect_at = 0;
  for (size_t i = 0; i < ev.n && k < 3; i++) {
    if (strcmp(type_of(&ev, i), order[k]) != 0)
      continue;
    if (k == 1)
      connect_at = i;
    k++;
  }
  cr_assert_eq(k, 3, "events out of order or missing (%zu events)", ev.n);
  unsigned exits = 0;
  for (size_t i = 0; i < ev.n; i++) {
    if (strcmp(type_of(&ev, i), "exit") == 0) {
      cr_assert_gt(i, connect_at, "the child's exit before its stub connected");
      cr_assert_eq(number(ev.items[i], "status"), 3);
      exits++;
    }
  }
  cr_assert_eq(exits, 1);
  free_events(&ev);
  free(raw);
  free(child_err);
  free(token);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, timeout_and_stop_show_in_the_events) {
  harness h;
  h_init(&h, NULL);
  char ev_opt[600];
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", tpath(&h, "events"));
  cli_result r;
  CLI(&h, &r, "run", ev_opt, "--timeout", "1", "--kill-after", "0.2", "--", "sh", "-c",
      "trap '' TERM; exec sleep 300");
  cr_assert_eq(r.status, 128 + SIGKILL, "stderr: %s", r.err);
  events ev;
  read_events(&h, "events", &ev);
  cr_assert_eq(count_type(&ev, "timeout"), 1);
  unsigned stops = 0;
  for (size_t i = 0; i < ev.n; i++) {
    if (strcmp(type_of(&ev, i), "stop") != 0)
      continue;
    const cJSON *sig = cJSON_GetObjectItem(ev.items[i], "signal");
    const char *want = stops++ == 0 ? "TERM" : "KILL";
    cr_assert(cJSON_IsString(sig), "stop %u: no signal name", stops);
    cr_assert_str_eq(sig->valuestring, want, "stop %u", stops);
  }
  cr_assert_eq(stops, 2, "the stop signal, then KILL");
  free_events(&ev);
  cli_free(&r);
  h_fini(&h);
}
