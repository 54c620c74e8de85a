/* SPDX-License-Identifier: MIT */
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
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
  res->status = wait_pid(pid, H_DEADLINE * h_scale());
  res->seconds = h_now() - start;
  snprintf(out, sizeof out, "%s.out", tag);
  snprintf(err, sizeof err, "%s.err", tag);
  res->out = h_read(h, out, NULL);
  res->err = h_read(h, err, NULL);
}

/* Runs `socketbridge args...` to its end. */
static void cli_env(harness *h, cli_result *res, char *const *env, char *const *args) {
  double start = h_now();
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
  int fd = open(h_path(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  cr_assert(fd >= 0);
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static bool exists(harness *h, const char *name) {
  return access(h_path(h, name), F_OK) == 0;
}

/* Waits (bounded) until no process carries marker: processes the stop
 * sequence signalled may take a moment to be torn down. */
static void assert_none_marked(const char *marker) {
  double end = h_now() + 10 * h_scale();
  unsigned n;
  while ((n = h_count_marked(marker)) > 0 && h_now() < end) {
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
  const char *want[] = {"run [OPTIONS] [--] COMMAND",
                        "stub-path",
                        "--version",
                        "--transport tcp|unix",
                        "--env NAME=VALUE",
                        "--stdin FILE",
                        "--stdout FILE",
                        "--stderr FILE",
                        "--events FILE",
                        "--restart no|on-failure|always",
                        "--max-restarts N",
                        "--backoff MIN_MS:MAX_MS",
                        "--host ADDR",
                        "--allow LIST",
                        "--socket PATH|@NAME",
                        "--socket-mode MODE",
                        "-u, --unset NAME",
                        "-i, --ignore-environment",
                        "-C, --chdir DIR",
                        "--timeout DURATION",
                        "-k, --kill-after DURATION",
                        "-s, --stop-signal SIG",
                        "--preserve-status",
                        "--shim-dir DIR",
                        "-v, --verbose",
                        "137",
                        "--no-tty",
                        "--max-bytes N",
                        "--max-connections N",
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
  char *copy = strdup(h_path(h, "socketbridge"));
  char *args[] = {"/bin/cp", SB_TEST_CLI, copy, NULL};
  pid_t pid;
  cr_assert_eq(posix_spawn(&pid, args[0], NULL, NULL, args, environ), 0);
  cr_assert_eq(wait_pid(pid, H_DEADLINE * h_scale()), 0, "cp failed");
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
  snprintf(env_bad, sizeof env_bad, "SOCKETBRIDGE_STUB=%s", h_path(&h, "no-such-stub"));
  cli_env(&h, &r, (char *[]){env_bad, NULL}, (char *[]){copy, "stub-path", NULL});
  cr_assert_eq(r.status, 125);
  assert_quiet_stdout(&r);
  cr_assert(strncmp(r.err, "socketbridge: stub-path: ", 25) == 0, "stderr: %s", r.err);
  cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "not one line: %s", r.err);
  cli_free(&r);
  free(copy);
  h_fini(&h);
}

/* A copy of socketbridge without its stub made shims pointing nowhere: the
 * shell skipped them and ran the real tools, and run exited 0. Shims need
 * a stub: 125 before anything runs, no output file touched. */
Test(cli, run_with_shims_and_no_stub_to_link_them_to_exits_125_first) {
  harness h;
  h_init(&h, NULL);
  char *copy = lonely_copy(&h);
  cr_assert_neq(access("/usr/local/bin/socketbridge-stub", F_OK), 0, "one is installed");
  unsetenv("SOCKETBRIDGE_STUB");
  setenv("PATH", "/usr/bin:/bin", 1); /* no socketbridge-stub on it */
  write_file(&h, "not-exec", "#!/bin/sh\n", 0644);
  char env_bad[600];
  snprintf(env_bad, sizeof env_bad, "SOCKETBRIDGE_STUB=%s", h_path(&h, "not-exec"));
  char *const *envs[] = {NULL, (char *[]){env_bad, NULL}};
  for (size_t i = 0; i < 2; i++) {
    char script[600];
    snprintf(script, sizeof script, "touch %s; git --version", h_path(&h, "ran"));
    cli_result r;
    cli_env(&h, &r, envs[i],
            (char *[]){copy, "run", "--shim", "git", "--record",
                       (char *)h_path(&h, "rec"), "--", "sh", "-c", script, NULL});
    cr_assert_eq(r.status, 125, "case %zu: %d: %s", i, r.status, r.err);
    assert_quiet_stdout(&r);
    cr_assert(strncmp(r.err, "socketbridge: --shim: ", 22) == 0, "stderr: %s", r.err);
    cr_assert_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1, "one line: %s", r.err);
    cr_assert(!exists(&h, "ran"), "case %zu: the command ran", i);
    cr_assert(!exists(&h, "rec"), "case %zu: --record was created", i);
    cli_free(&r);
  }
  free(copy);
  h_fini(&h);
}

/* socketbridge links the static library: with no stub beside it nor at the
 * configured install path, it finds the one on PATH (not a build-time path
 * that the child would fail on later). */
Test(cli, a_program_linked_statically_finds_the_stub_on_path) {
  harness h;
  h_init(&h, NULL);
  char *copy = lonely_copy(&h);
  cr_assert_neq(access("/usr/local/bin/socketbridge-stub", F_OK), 0, "one is installed");
  cr_assert_eq(mkdir(h_path(&h, "bin"), 0755), 0);
  cr_assert_eq(symlink(SB_TEST_STUB, h_path(&h, "bin/socketbridge-stub")), 0);
  char path[700];
  snprintf(path, sizeof path, "%s:/usr/bin:/bin", h_path(&h, "bin"));
  unsetenv("SOCKETBRIDGE_STUB");
  setenv("PATH", path, 1);
  cli_result r;
  cli_env(&h, &r, NULL, (char *[]){copy, "stub-path", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char want[700];
  snprintf(want, sizeof want, "%s\n", h_path(&h, "bin/socketbridge-stub"));
  cr_assert_str_eq(r.out, want);
  cli_free(&r);
  cli_env(&h, &r, NULL,
          (char *[]){copy, "run", "--shim", "tool", "--", "sh", "-c",
                     "tool; echo code=$?", NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cr_assert_str_eq(r.out, "code=0\n", "answered by the default: exit 0");
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
  CLI(&h, &r, "run", "--", (char *)h_path(&h, "missing/cmd"));
  cr_assert_eq(r.status, 127);
  assert_one_line(&r, "missing/cmd");
  cli_free(&r);

  write_file(&h, "not-executable", "#!/bin/sh\nexit 0\n", 0644);
  CLI(&h, &r, "run", "--", (char *)h_path(&h, "not-executable"));
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
  snprintf(nodir, sizeof nodir, "%s", h_path(&h, "no/such/dir/file"));
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
      {{"--max-bytes", "4095"}, false, "--max-bytes: \"4095\" is not a number of bytes"},
      {{"--max-bytes", "268435457"}, false, "--max-bytes"},
      {{"--max-bytes", "1M"}, false, "--max-bytes"},
      {{"--env", "SOCKETBRIDGE_MAX_BYTES=2000000"}, false, "use --max-bytes"},
      {{"--max-connections", "0"}, false, "--max-connections"},
      {{"--max-connections", "x"}, false, "--max-connections"},
      {{"--stdout="}, false, "--stdout"},
      {{"--stdin", nodir}, false, "--stdin"},
      {{"--stdout", nodir}, false, "--stdout"},
      {{"--stderr", nodir}, false, "--stderr"},
      {{"--events", nodir}, false, "--events"},
      {{"--verbose=1"}, false, "--verbose: takes no value"},
      {{"-k"}, true, "-k: missing value"},
      {{"-iq"}, false, "-q: unknown option"},
      {{"-k", "1w"}, false, "-k: \"1w\" is not a duration"},
      {{"-u", "A=B"}, false, "-u: \"A=B\" is not a variable name"},
      {{"--host", "10.1.2.3"}, false, "--host: 10.1.2.3 is not a loopback address"},
      {{"--allow", "10.0.0.0/33"}, false, "--allow: allowlist entry"},
      {{"--socket", "rel/path"}, false, "--socket: \"rel/path\" is not an absolute"},
      {{"--socket-mode", "0600"}, false, "--socket-mode: applies to a --socket"},
      {{"--shim-dir", nodir}, false, "--shim-dir: needs at least one --shim"},
      {{"-C", nodir}, false, "--chdir"},
      {{NULL}, true, "--"},
  };
  char script[600];
  snprintf(script, sizeof script, "echo ran > '%s'", h_path(&h, "ran"));

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
  snprintf(err_opt, sizeof err_opt, "--stderr=%s", h_path(&h, "err"));
  CLI(&h, &r, "run", "--stdin", (char *)h_path(&h, "in"), "--stdout",
      (char *)h_path(&h, "out"), err_opt, "--", "sh", "-c",
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
           h_path(&h, "env"));
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
           h_path(h, "addr"), h_path(h, "stubout"), h_path(h, "stubcode"));
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
           pre ? pre : ":", h_path(h, "ready"), h_path(h, "ready"), h_path(h, "ready"),
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
  double end = h_now() + 10 * h_scale();
  while (kill(pid, 0) == 0 && h_now() < end) {
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
             h_path(&h, "got"), spell[i][1]);
    char *opts[] = {"--stop-signal", (char *)spell[i][0], NULL};
    pid_t child;
    double start = h_now();
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
    double start = h_now();
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
  double start = h_now();
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
  double start = h_now();
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
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", h_path(&h, "events"));
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
           h_path(&h, "count"), h_path(&h, "count"));
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
           h_path(&h, "token"));
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", h_path(&h, "events"));
  char err_opt[600];
  snprintf(err_opt, sizeof err_opt, "--stderr=%s", h_path(&h, "child.err"));
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
  snprintf(ev_opt, sizeof ev_opt, "--events=%s", h_path(&h, "events"));
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

/* ---- command-line conventions (timeout(1), env(1)) ----------------------- */

Test(cli, the_command_may_follow_the_options_without_dashdash) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  char script[600];
  /* Words after COMMAND are its own, even when they look like options. */
  snprintf(script, sizeof script, "echo \"$X $1\" > '%s'; exit 4", h_path(&h, "said"));
  CLI(&h, &r, "run", "--env", "X=1", "-v", "sh", "-c", script, "sh", "--timeout");
  cr_assert_eq(r.status, 4, "stderr: %s", r.err);
  assert_quiet_stdout(&r);
  char *said = h_read(&h, "said", NULL);
  cr_assert_str_eq(said, "1 --timeout\n");
  free(said);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, durations_take_units_and_s_and_k_are_timeouts_short_options) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  char pre[600];
  /* 0.005m is 300 ms: the unit is read, not refused, and the run stops. */
  CLI(&h, &r, "run", "--timeout", "0.005m", "sleep", "300");
  cr_assert_eq(r.status, 124, "stderr: %s", r.err);
  cr_assert_geq(r.seconds, 0.3, "ended after %.3f s", r.seconds);
  cli_free(&r);
  /* -s USR1 is the stop signal: the child says it got it. */
  snprintf(pre, sizeof pre, "trap 'echo USR1 > \"%s\"; exit 0' USR1; sleep 300 & wait",
           h_path(&h, "got"));
  CLI(&h, &r, "run", "-s", "USR1", "-k1m", "--timeout=0.5s", "sh", "-c", pre);
  cr_assert_eq(r.status, 124, "stderr: %s", r.err);
  char *got = h_read(&h, "got", NULL);
  cr_assert_str_eq(got, "USR1\n");
  free(got);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, a_stop_that_needed_sigkill_exits_137_and_preserve_status_keeps_the_childs) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  /* TERM ignored: the grace ends with SIGKILL, so 137 as timeout -k. */
  CLI(&h, &r, "run", "--timeout", "0.5", "-k", "0.2", "sh", "-c",
      "trap '' TERM; sleep 300 & wait");
  cr_assert_eq(r.status, 137, "stderr: %s", r.err);
  cli_free(&r);
  /* TERM obeyed: 124, or with --preserve-status 128+TERM. */
  CLI(&h, &r, "run", "--timeout", "0.3", "--preserve-status", "sleep", "300");
  cr_assert_eq(r.status, 128 + SIGTERM, "stderr: %s", r.err);
  cli_free(&r);
  /* A child that handles the stop decides the status, kept as it is. */
  CLI(&h, &r, "run", "--preserve-status", "--timeout", "0.3", "sh", "-c",
      "trap 'exit 7' TERM; sleep 300 & wait");
  cr_assert_eq(r.status, 7, "stderr: %s", r.err);
  cli_free(&r);
  h_fini(&h);
}

Test(cli, chdir_unset_and_ignore_environment_as_env) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  char script[800];
  cr_assert_eq(mkdir(h_path(&h, "work"), 0700), 0);
  snprintf(
      script, sizeof script,
      "echo \"$(pwd -P)|${FOO-unset}|${BAR-unset}|${HOME-unset}|"
      "${SOCKETBRIDGE_TOKEN:+token}\" > '%s'; \"$SOCKETBRIDGE_STUB\"; echo $? >> '%s'",
      h_path(&h, "said"), h_path(&h, "said"));
  char *real = realpath(h_path(&h, "work"), NULL), want[1200];

  /* -C DIR and -u NAME; the other variables and the bridge's stay. */
  cli_env(&h, &r, (char *[]){"FOO=foo", "BAR=bar", NULL},
          (char *[]){SB_TEST_CLI, "run", "-C", (char *)h_path(&h, "work"), "-u", "FOO",
                     "/bin/sh", "-c", script, NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  char *said = h_read(&h, "said", NULL);
  snprintf(want, sizeof want, "%s|unset|bar|%s|token\n0\n", real, getenv("HOME"));
  cr_assert_str_eq(said, want);
  free(said);
  cli_free(&r);

  /* -i: nothing of ours but what --env adds; the bridge still works. */
  cli_env(&h, &r, (char *[]){"FOO=foo", "BAR=bar", NULL},
          (char *[]){SB_TEST_CLI, "run", "--chdir", (char *)h_path(&h, "work"), "-i",
                     "--env", "BAR=given", "/bin/sh", "-c", script, NULL});
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  said = h_read(&h, "said", NULL);
  snprintf(want, sizeof want, "%s|unset|given|unset|token\n0\n", real);
  cr_assert_str_eq(said, want);
  free(said);
  cli_free(&r);

  /* A -C that is not a directory: 125 before anything runs. */
  CLI(&h, &r, "run", "-C", (char *)h_path(&h, "no-such"), "sh", "-c", script);
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "--chdir");
  cli_free(&r);
  free(real);
  h_fini(&h);
}

/* ---- supervisor settings: --host, --allow, --socket, --shim-dir ------------ */

/* Runs `socketbridge run opts... sh -c <stub call>` and returns what the
 * stub exited with; *addr gets the child's SOCKETBRIDGE_SOCKET or HOST. */
static int stub_call_under(harness *h, char *const *env, char *const *opts, char **addr) {
  char script[1200];
  char *args[24];
  size_t n = 0;
  snprintf(script, sizeof script,
           "echo \"${SOCKETBRIDGE_SOCKET:-$SOCKETBRIDGE_HOST}\" > '%s'; "
           "\"$SOCKETBRIDGE_STUB\" hello 2> '%s'; echo $? > '%s'",
           h_path(h, "addr"), h_path(h, "stuberr"), h_path(h, "stubcode"));
  args[n++] = SB_TEST_CLI;
  args[n++] = "run";
  for (size_t i = 0; opts[i] != NULL; i++)
    args[n++] = opts[i];
  args[n++] = "sh";
  args[n++] = "-c";
  args[n++] = script;
  args[n] = NULL;
  cli_result r;
  cli_env(h, &r, env, args);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cli_free(&r);
  char *code = h_read(h, "stubcode", NULL);
  int c = atoi(code);
  free(code);
  if (addr != NULL)
    *addr = h_read(h, "addr", NULL);
  return c;
}

Test(cli, host_and_allow_reach_the_supervisor_and_the_allowlist_variable_is_honoured) {
  harness h;
  h_init(&h, NULL);
  char *addr;
  cr_assert_eq(stub_call_under(&h, NULL, (char *[]){"--host", "::1", NULL}, &addr), 0);
  cr_assert_str_eq(addr, "::1\n");
  free(addr);
  /* Loopback is not in the list: the stub is refused, not answered. */
  cr_assert_eq(stub_call_under(&h, NULL, (char *[]){"--allow=10.9.9.9", NULL}, NULL),
               125);
  char *err = h_read(&h, "stuberr", NULL);
  cr_assert_not_null(strstr(err, "not_allowed"), "stub: %s", err);
  free(err);
  cr_assert_eq(stub_call_under(&h, NULL, (char *[]){"--allow=127.0.0.0/8", NULL}, NULL),
               0);
  /* The same from SOCKETBRIDGE_ALLOWLIST, which the supervisor now enforces. */
  cr_assert_eq(stub_call_under(&h, (char *[]){"SOCKETBRIDGE_ALLOWLIST=10.9.9.9", NULL},
                               (char *[]){NULL}, NULL),
               125);
  err = h_read(&h, "stuberr", NULL);
  cr_assert_not_null(strstr(err, "not_allowed"), "stub: %s", err);
  free(err);
  /* A malformed one stops run before anything runs. */
  cli_result r;
  char ran[600];
  snprintf(ran, sizeof ran, "echo ran > '%s'", h_path(&h, "ran"));
  cli_env(&h, &r, (char *[]){"SOCKETBRIDGE_ALLOWLIST=localhost", NULL},
          (char *[]){SB_TEST_CLI, "run", "sh", "-c", ran, NULL});
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "SOCKETBRIDGE_ALLOWLIST");
  cr_assert(!exists(&h, "ran"), "the command ran");
  cli_free(&r);
  h_fini(&h);
}

static void answer_exit_0(harness *h, sb_conn *c) {
  (void)h;
  sb_conn_exit(c, 0);
}

/* The allowlist is the supervisor's: a stub run with a malformed one in its
 * environment (a library user that does not check it) is still answered. */
Test(cli, a_stub_never_fails_on_the_supervisors_allowlist_variable) {
  sb_transport tr[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  for (size_t t = 0; t < 2; t++) {
    harness h;
    h_init(&h, &(sb_server_options){.transport = tr[t]});
    h.on_connect = answer_exit_0;
    h_exit ex;
    h_spawn(&h,
            &(h_spawn_opts){.args = (char *[]){SB_TEST_STUB, "x", NULL},
                            .env = (char *[]){"SOCKETBRIDGE_ALLOWLIST=localhost,", NULL}},
            &ex);
    h_wait_exit(&h, &ex);
    cr_assert_eq(ex.status, 0, "transport %d: the stub ended %lld", (int)tr[t],
                 (long long)ex.status);
    cr_assert_eq(h.connects, 1);
    h_fini(&h);
  }
}

/* A socket file at path that nobody listens on, as a killed run leaves. */
static void leave_stale_socket(const char *path) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert(fd >= 0);
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0, "%s", strerror(errno));
  close(fd);
}

Test(cli, socket_path_with_mode_replaces_a_stale_socket_and_refuses_a_live_one) {
  harness h;
  h_init(&h, NULL);
  char opt[600], *addr;
  const char *path = h_path(&h, "bridge.sock");
  snprintf(opt, sizeof opt, "--socket=%s", path);

  /* A stale socket is replaced; the mode is applied; the file goes after. */
  leave_stale_socket(path);
  char script[1200];
  snprintf(script, sizeof script, "stat -c %%a \"$SOCKETBRIDGE_SOCKET\" > '%s'",
           h_path(&h, "mode"));
  cli_result r;
  CLI(&h, &r, "run", opt, "--socket-mode", "0660", "sh", "-c", script);
  cr_assert_eq(r.status, 0, "stderr: %s", r.err);
  cli_free(&r);
  char *mode = h_read(&h, "mode", NULL);
  cr_assert_str_eq(mode, "660\n");
  free(mode);
  cr_assert(!exists(&h, "bridge.sock"), "the socket file outlived the run");

  cr_assert_eq(stub_call_under(&h, NULL, (char *[]){opt, NULL}, &addr), 0);
  char want[700];
  snprintf(want, sizeof want, "%s\n", path);
  cr_assert_str_eq(addr, want);
  free(addr);

  /* A live listener there, or a file that is not a socket: 125, nothing run,
   * and neither is removed. */
  char ran[600];
  snprintf(ran, sizeof ran, "echo ran > '%s'", h_path(&h, "ran"));
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  int live = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq(bind(live, (struct sockaddr *)&sa, sizeof sa), 0);
  cr_assert_eq(listen(live, 4), 0);
  CLI(&h, &r, "run", opt, "sh", "-c", ran);
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "bridge.sock: a socket someone listens on is there");
  cr_assert(exists(&h, "bridge.sock"), "a live socket was removed");
  cli_free(&r);
  close(live);
  unlink(path);
  write_file(&h, "bridge.sock", "not a socket\n", 0600);
  CLI(&h, &r, "run", opt, "sh", "-c", ran);
  cr_assert_eq(r.status, 125);
  assert_one_line(&r, "bridge.sock: something that is not a socket is there");
  char *kept = h_read(&h, "bridge.sock", NULL);
  cr_assert_str_eq(kept, "not a socket\n");
  free(kept);
  cli_free(&r);
  cr_assert(!exists(&h, "ran"), "the command ran");
  h_fini(&h);
}

Test(cli, an_abstract_socket_needs_no_file) {
  harness h;
  h_init(&h, NULL);
  char opt[128], *addr, want[128];
  snprintf(opt, sizeof opt, "--socket=@socketbridge-test-%lu", unique());
  cr_assert_eq(stub_call_under(&h, NULL, (char *[]){opt, NULL}, &addr), 0);
  snprintf(want, sizeof want, "%s\n", opt + strlen("--socket="));
  cr_assert_str_eq(addr, want);
  free(addr);
  h_fini(&h);
}

Test(cli, shim_dir_stays_after_the_run_for_a_cmake_build_configured_under_it) {
  harness h;
  h_init(&h, NULL);
  const char *shims = h_path(&h, "shims");
  char *real = realpath(SB_TEST_STUB, NULL), link[4096] = "";
  cr_assert_eq(mkdir(h_path(&h, "src"), 0700), 0);
  write_file(&h, "src/CMakeLists.txt",
             "cmake_minimum_required(VERSION 3.10)\nproject(hello C)\n"
             "add_executable(hello hello.c)\n",
             0600);
  write_file(&h, "src/hello.c",
             "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n", 0600);
  /* cc becomes gcc by a bare name, looked up past the shims. */
  write_file(&h, "rules.json",
             "{\"rules\": [{\"exec\": {\"argv\": [\"gcc\", \"{@}\"]}}]}", 0600);
  char script[2000], dopt[600], ropt[600];
  snprintf(dopt, sizeof dopt, "--shim-dir=%s", shims);
  snprintf(ropt, sizeof ropt, "--rules=%s", h_path(&h, "rules.json"));
  snprintf(script, sizeof script,
           "cmake -S '%s' -B '%s' -DCMAKE_C_COMPILER=\"$(command -v cc)\"",
           h_path(&h, "src"), h_path(&h, "build"));
  cli_result r;
  CLI(&h, &r, "run", dopt, "--shim", "cc", ropt, "sh", "-c", script);
  cr_assert_eq(r.status, 0, "cmake configure: %s", r.err);
  cli_free(&r);
  /* The links stay, so the compiler path cmake cached is still there. */
  cr_assert(readlink(h_path(&h, "shims/cc"), link, sizeof link - 1) > 0,
            "shims/cc is gone");
  cr_assert_str_eq(link, real);
  char *cache = h_read(&h, "build/CMakeCache.txt", NULL);
  char want[700];
  snprintf(want, sizeof want, "CMAKE_C_COMPILER:STRING=%s/cc", shims);
  cr_assert_not_null(strstr(cache, want), "cmake cached another compiler");
  free(cache);
  /* A relative DIR goes on PATH absolute: the child may change its cwd. */
  snprintf(script, sizeof script,
           "cd '%s' && '%s' run --shim-dir shims --shim cc sh -c 'cd / && command -v cc'",
           h.dir, SB_TEST_CLI);
  CLI(&h, &r, "run", "sh", "-c", script);
  cr_assert_eq(r.status, 0, "relative --shim-dir: %s", r.err);
  snprintf(want, sizeof want, "%s/cc\n", shims);
  cr_assert_str_eq(r.out, want);
  cli_free(&r);
  /* A later run builds with it (the same links are kept). */
  snprintf(script, sizeof script, "cmake --build '%s' && '%s/hello'", h_path(&h, "build"),
           h_path(&h, "build"));
  CLI(&h, &r, "run", dopt, "--shim", "cc", ropt, "sh", "-c", script);
  cr_assert_eq(r.status, 0, "cmake --build: %s", r.err);
  cr_assert_not_null(strstr(r.out, "hello\n"), "stdout: %s", r.out);
  cli_free(&r);
  free(real);
  h_fini(&h);
}

/* ---- -v: the live trace ---------------------------------------------------- */

Test(cli, verbose_traces_each_event_and_call_over_tcp_and_unix) {
  const char *transports[] = {"tcp", "unix"};
  for (size_t t = 0; t < 2; t++) {
    harness h;
    h_init(&h, NULL);
    write_file(
        &h, "rules.json",
        "{\"rules\": [{\"match\": {\"argv0\": \"git\", \"args\": [\"push\", \"**\"]},"
        " \"respond\": {\"exit\": 3}}], \"default\": {\"respond\": {}}}",
        0600);
    char ropt[600], topt[64];
    snprintf(ropt, sizeof ropt, "--rules=%s", h_path(&h, "rules.json"));
    snprintf(topt, sizeof topt, "--transport=%s", transports[t]);
    cli_result r;
    CLI(&h, &r, "run", "-v", topt, "--shim", "git", ropt, "sh", "-c",
        "git push origin 'a b'; git status; exit 5");
    cr_assert_eq(r.status, 5, "stderr: %s", r.err);
    assert_quiet_stdout(&r);
    const char *want[] = {"spawn pid ",
                          ": sh -c 'git push origin '\\''a b'\\''; git status; exit 5'\n",
                          "call pid ",
                          ": git push origin 'a b'\n",
                          ": git push origin 'a b': rule 0 respond, exit 3, ",
                          ": git status: default respond, exit 0, ",
                          "exit pid ",
                          ": exit 5, "};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
      cr_assert_not_null(strstr(r.err, want[i]), "%s: no \"%s\" in:\n%s", transports[t],
                         want[i], r.err);
    /* Every line is the trace's: "socketbridge HH:MM:SS.mmm what...". */
    unsigned lines = 0;
    for (char *p = r.err; *p != '\0'; p = strchr(p, '\n') + 1, lines++) {
      int hh, mm, ss, ms;
      cr_assert_eq(sscanf(p, "socketbridge %2d:%2d:%2d.%3d ", &hh, &mm, &ss, &ms), 4,
                   "not a trace line: %.80s", p);
      cr_assert_neq(strchr(p, '\n'), NULL);
    }
    cr_assert_eq(lines, 6, "%s: %u lines:\n%s", transports[t], lines, r.err);
    cli_free(&r);
    h_fini(&h);
  }
}

/* At a terminal, where -v is meant to be read: under script(1)'s
 * pseudo-terminal the lines come through it, whole. */
Test(cli, verbose_lines_reach_a_terminal) {
  harness h;
  h_init(&h, NULL);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "%s run -v sh -c 'exit 3'", SB_TEST_CLI);
  cli_result r;
  cli_env(&h, &r, NULL, (char *[]){"/usr/bin/script", "-qefc", cmd, "/dev/null", NULL});
  cr_assert_eq(r.status, 3, "stderr: %s", r.err);
  cr_assert_not_null(strstr(r.out, ": sh -c 'exit 3'\r\n"), "through the terminal: %s",
                     r.out);
  cr_assert_not_null(strstr(r.out, ": exit 3, "), "through the terminal: %s", r.out);
  cli_free(&r);
  h_fini(&h);
}

/* stderr a pipe that is full and that nobody reads: the trace must not stop
 * the loop, so every call is still answered and the run ends. */
Test(cli, verbose_never_waits_for_a_stuck_stderr_over_tcp_and_unix) {
  const char *transports[] = {"tcp", "unix"};
  for (size_t t = 0; t < 2; t++) {
    harness h;
    h_init(&h, NULL);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    char fill[4096];
    memset(fill, 'x', sizeof fill);
    while (write(p[1], fill, sizeof fill) > 0)
      ;
    cr_assert_eq(errno, EAGAIN);
    /* Blocking again, as a terminal or a pipe normally is. */
    cr_assert_eq(fcntl(p[1], F_SETFL, 0), 0);
    char topt[64], script[600];
    snprintf(topt, sizeof topt, "--transport=%s", transports[t]);
    snprintf(
        script, sizeof script,
        "i=0; while [ $i -lt 200 ]; do \"$SOCKETBRIDGE_STUB\" call $i 2>/dev/null || "
        "exit 9; i=$((i+1)); done; echo done > '%s'",
        h_path(&h, "done"));
    char *args[] = {SB_TEST_CLI, "run", "-v", topt, "sh", "-c", script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, SB_TEST_CLI, &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    int status = wait_pid(pid, H_DEADLINE * h_scale());
    cr_assert_eq(status, 0, "%s: exit %d", transports[t], status);
    cr_assert(exists(&h, "done"), "%s: the calls did not all end", transports[t]);
    close(p[0]);
    h_fini(&h);
  }
}

/* Lines stderr did not take are written once it takes them again, while
 * the run goes on, not only with the next event. */
Test(cli, verbose_lines_held_back_by_a_full_stderr_follow_once_it_drains) {
  const char *transports[] = {"tcp", "unix"};
  for (size_t t = 0; t < 2; t++) {
    harness h;
    h_init(&h, NULL);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
    char buf[4096];
    memset(buf, '\1', sizeof buf); /* no byte of a line */
    while (write(p[1], buf, sizeof buf) > 0)
      ;
    cr_assert_eq(fcntl(p[1], F_SETFL, 0), 0);
    const char *fifo = h_path(&h, "go");
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    char topt[64], script[600], eopt[600];
    snprintf(topt, sizeof topt, "--transport=%s", transports[t]);
    snprintf(eopt, sizeof eopt, "--events=%s", h_path(&h, "events"));
    /* The call ends, then nothing happens until the test says so. */
    snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" held back; read x < '%s'",
             fifo);
    char *args[] = {SB_TEST_CLI, "run", "-v", topt, eopt, "sh", "-c", script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    pid_t pid;
    cr_assert_eq(posix_spawn(&pid, SB_TEST_CLI, &fa, NULL, args, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    /* The call is over (its last event is out) before the pipe drains, so
     * no event comes after to carry its lines. */
    double end = h_now() + H_DEADLINE * h_scale();
    for (;;) {
      char *ev = exists(&h, "events") ? h_read(&h, "events", NULL) : NULL;
      bool over = ev != NULL && strstr(ev, "\"stub_exit\"") != NULL;
      free(ev);
      if (over)
        break;
      cr_assert_lt(h_now(), end, "%s: no stub_exit event", transports[t]);
      struct timespec ts = {0, 10 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
    /* Drain, and read until the call's end line, within the deadline. */
    static char got[1 << 16];
    size_t len = 0;
    while (h_now() < end) {
      struct pollfd pfd = {.fd = p[0], .events = POLLIN};
      if (poll(&pfd, 1, 100) <= 0)
        continue;
      ssize_t n = read(p[0], buf, sizeof buf);
      if (n <= 0)
        break;
      for (ssize_t i = 0; i < n; i++)
        if (buf[i] != '\1' && len < sizeof got - 1)
          got[len++] = buf[i];
      got[len] = '\0';
      if (strstr(got, " held back: no rule respond, exit 0") != NULL)
        break;
    }
    bool seen = strstr(got, " held back: no rule respond, exit 0") != NULL;
    int w = open(fifo, O_WRONLY | O_CLOEXEC);
    cr_assert(w >= 0);
    cr_assert_eq(write(w, "\n", 1), 1);
    close(w);
    int status = wait_pid(pid, H_DEADLINE * h_scale());
    close(p[0]);
    cr_assert(seen, "%s: the call's lines did not come while the run went on: %s",
              transports[t], got);
    cr_assert_eq(status, 0);
    h_fini(&h);
  }
}

/* ---- --help and the README say the same ----------------------------------- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The options named between from and to in text, sorted, deduplicated,
 * joined by spaces: each "--name", and each "-x, --name" pairing. */
static void option_names(const char *text, const char *from, const char *to, char *out,
                         size_t size) {
  const char *a = strstr(text, from), *b;
  char *names[256];
  size_t n = 0;
  cr_assert_not_null(a, "no \"%s\"", from);
  b = strstr(a, to);
  cr_assert_not_null(b, "no \"%s\" after \"%s\"", to, from);
  for (const char *p = a; p < b && n < 256; p++) {
    size_t len = 0;
    bool pair = false;
    if (p > a && (p[-1] == '-' || (p[-1] >= 'a' && p[-1] <= 'z') ||
                  (p[-1] >= 'A' && p[-1] <= 'Z')))
      continue;
    if (p[0] == '-' && ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')) &&
        p[2] == ',' && p[3] == ' ' && p[4] == '-' && p[5] == '-')
      pair = true;
    else if (!(p[0] == '-' && p[1] == '-' && p[2] >= 'a' && p[2] <= 'z'))
      continue;
    const char *q = pair ? p + 4 : p;
    for (len = 2; q + len < b && ((q[len] >= 'a' && q[len] <= 'z') || q[len] == '-');
         len++)
      ;
    if (pair)
      cr_assert(asprintf(&names[n++], "%c%c,%.*s", p[0], p[1], (int)len, q) > 0);
    else
      cr_assert(asprintf(&names[n++], "%.*s", (int)len, q) > 0);
  }
  qsort(names, n, sizeof *names, cmp_str);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if ((i == 0 || strcmp(names[i], names[i - 1]) != 0) &&
        strlen(out) + strlen(names[i]) + 2 < size) {
      strcat(out, " ");
      strcat(out, names[i]);
    }
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
}

Test(cli, the_readme_and_help_name_the_same_options) {
  harness h;
  h_init(&h, NULL);
  cli_result r;
  CLI(&h, &r, "--help");
  cr_assert_eq(r.status, 0);
  FILE *f = fopen(SB_TEST_SRCDIR "/README.md", "r");
  cr_assert_not_null(f);
  static char readme[1 << 20];
  size_t n = fread(readme, 1, sizeof readme - 1, f);
  readme[n] = '\0';
  fclose(f);
  char in_help[4096], in_readme[4096];
  option_names(r.out, "Options of run", "\n\n", in_help, sizeof in_help);
  option_names(readme, "socketbridge run [OPTIONS]", "socketbridge shim", in_readme,
               sizeof in_readme);
  /* -h/--help is --help's own business. */
  char *hh = strstr(in_help, " -h,--help");
  cr_assert_not_null(hh);
  memmove(hh, hh + 10, strlen(hh + 10) + 1);
  hh = strstr(in_help, " --help");
  cr_assert_not_null(hh);
  memmove(hh, hh + 7, strlen(hh + 7) + 1);
  cr_assert_str_eq(in_readme, in_help, "README: [%s]\n--help: [%s]", in_readme, in_help);
  cli_free(&r);
  h_fini(&h);
}
