/* SPDX-License-Identifier: MIT */
/* Crashes (issue 15, items 1, 9, 12): what `socketbridge run` killed with
 * SIGKILL leaves behind. Each test runs the real command in a process of its
 * own (TMPDIR in the test's directory), brings a stub call into one state,
 * kills the command and checks that the stub fails with 125 and its one line
 * within 500 ms (scaled by SB_TEST_TIMEOUT_SCALE; the figure is logged), on
 * both transports and in every state; that no delegated or run program
 * survives; and that a later run tidies the socket directory the dead one
 * left (Unix transport: TCP leaves nothing in the file system). */
#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(crash, .timeout = 120);

/* What a killed supervisor's stub must take at most to fail (issue 15). */
#define CRASH_BOUND_MS 500.0
/* Bytes of the answer a stub streams: more than any socket buffer holds. */
#define CRASH_ANSWER_BYTES (64ll << 20)

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f, "%s: %s", path, strerror(errno));
  fputs(text, f);
  cr_assert_eq(fclose(f), 0);
}

/* Starts `socketbridge run --transport T --events EVENTS --rules RULES --
 * sh -c SCRIPT` with TMPDIR in the test's directory, stdin from in (-1:
 * /dev/null), stdout on out, and stderr on a pipe whose read end goes to
 * *err_fd: the script writes the stub's status there (`echo $? >&2`). */
static pid_t cli_start(harness *h, bool tcp, const char *rules, const char *script,
                       int in, int out, int *err_fd) {
  char rules_path[300], events[300];
  int ep[2];
  snprintf(rules_path, sizeof rules_path, "%s/rules.json", h->dir);
  snprintf(events, sizeof events, "%s/events", h->dir);
  write_text(rules_path, rules);
  cr_assert_eq(pipe2(ep, O_CLOEXEC), 0);
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setenv("TMPDIR", h->dir, 1);
    if (in < 0)
      in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(ep[1], 2);
    execl(SB_TEST_CLI, SB_TEST_CLI, "run", "--transport", tcp ? "tcp" : "unix",
          "--events", events, "--rules", rules_path, "--", "sh", "-c", script,
          (char *)NULL);
    _exit(127);
  }
  close(ep[1]);
  *err_fd = ep[0];
  return pid;
}

/* Reads the first line of fd (the stub's status), within the deadline. */
static int read_status(int fd) {
  char buf[64] = {0};
  size_t n = 0;
  while (n < sizeof buf - 1 && memchr(buf, '\n', n) == NULL) {
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, (int)(H_DEADLINE * h_scale() * 1000)), 1,
                 "no exit status from the stub in time");
    ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
    if (k <= 0)
      break;
    n += (size_t)k;
  }
  cr_assert(n > 0, "the script wrote no status");
  return atoi(buf);
}

static bool events_have_connect(harness *h, const void *arg) {
  char path[300], buf[8192];
  (void)arg;
  snprintf(path, sizeof path, "%s/events", h->dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return strstr(buf, "\"stub_connect\"") != NULL;
}

/* The pipe holds as much as it takes (a little under 64 KiB when writes
 * are not whole pages): its writer is stuck. */
static bool pipe_full(harness *h, const void *arg) {
  int avail = 0;
  (void)h;
  ioctl(*(const int *)arg, FIONREAD, &avail);
  return avail >= 65536 - 4096;
}

/* A process that has not ended (a zombie has). */
static bool alive(pid_t pid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0)
    return false;
  buf[n] = '\0';
  const char *st = strrchr(buf, ')');
  return st != NULL && st[1] == ' ' && st[2] != 'Z' && st[2] != 'X';
}

static bool pid_gone(harness *h, const void *arg) {
  (void)h;
  return !alive(*(const pid_t *)arg);
}

/* The pid a program wrote to the file "pid" (the test's program writes
 * `echo $$`, then execs: the pid stays). */
static pid_t read_pid(harness *h) {
  h_wait_file(h, "pid");
  char *s = h_read(h, "pid", NULL);
  pid_t pid = (pid_t)atol(s);
  free(s);
  cr_assert(pid > 1, "no pid in the file");
  return pid;
}

/* Kills the command and returns how long the stub took to report 125
 * (its status line through err_fd), in ms. */
static double kill_and_time(pid_t cli, int err_fd, int *status) {
  double t0 = now_ms();
  cr_assert_eq(kill(cli, SIGKILL), 0);
  cr_assert_eq(waitpid(cli, NULL, 0), cli);
  *status = read_status(err_fd);
  return now_ms() - t0;
}

/* The stub's stderr, in the file "stub.err": one line, its own. */
static void assert_one_stub_line(harness *h) {
  size_t len;
  char *e = h_read(h, "stub.err", &len);
  cr_assert(strncmp(e, "socketbridge-stub: ", 19) == 0, "stderr: %s", e);
  cr_assert(len > 0 && strchr(e, '\n') == e + len - 1, "not one line: %s", e);
  free(e);
}

/* ---- 1. the stub of a killed supervisor fails at once, in every state ------ */

typedef enum crash_state {
  C_WAITING,
  C_STREAMING,
  C_BLOCKED,
  C_DELEGATE,
  C_RUN
} crash_state;

static const char *const state_names[] = {
    "waiting for its answer", "streaming to a slow reader", "blocked on its stdout",
    "a delegate's output unread", "running a program"};

typedef struct crash_case {
  int tcp;
  int state;
} crash_case;

ParameterizedTestParameters(crash, kill9_of_the_supervisor_fails_the_stub_at_once) {
  static crash_case cases[] = {
      {1, C_WAITING}, {1, C_STREAMING}, {1, C_BLOCKED}, {1, C_DELEGATE}, {1, C_RUN},
      {0, C_WAITING}, {0, C_STREAMING}, {0, C_BLOCKED}, {0, C_DELEGATE}, {0, C_RUN},
  };
  return cr_make_param_array(crash_case, cases, sizeof cases / sizeof cases[0]);
}

/* The rules that bring the call into state c (into buf). */
static void crash_rules(harness *h, int c, char *buf, size_t size) {
  char big[300];
  snprintf(big, sizeof big, "%s/big", h->dir);
  switch (c) {
  case C_WAITING:
    snprintf(buf, size, "{\"default\": {\"respond\": {\"delay_ms\": 600000}}}");
    break;
  case C_STREAMING:
  case C_BLOCKED: {
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(fd >= 0);
    cr_assert_eq(ftruncate(fd, CRASH_ANSWER_BYTES), 0); /* sparse: costs no disk */
    close(fd);
    snprintf(buf, size, "{\"default\": {\"respond\": {\"stdout_file\": \"%s\"}}}", big);
    break;
  }
  case C_DELEGATE:
    snprintf(
        buf, size,
        "{\"default\": {\"delegate\": {\"argv\": [\"%s\", \"1099511627776\", \"7\"]}}}",
        HELPER_GEN);
    break;
  default:
    snprintf(buf, size,
             "{\"default\": {\"run\": {\"argv\": [\"sh\", \"-c\", "
             "\"echo $$ > '%s/pid'; exec sleep 300\"]}}}",
             h->dir);
    break;
  }
}

/* Reads fd at about 800 KB/s (8 KiB per 10 ms) until EOF, in a process of
 * its own: the slow reader of the issue. It counts what it read in *count
 * (shared memory). */
static pid_t slow_reader(int fd, volatile uint64_t *count) {
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    static char buf[8192];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
      *count += (uint64_t)n;
      poll(NULL, 0, 10);
    }
    _exit(0);
  }
  return pid;
}

/* The stream is well under way: the reader took 512 KiB, by which time
 * every buffer between it and the supervisor is full. */
static bool streaming(harness *h, const void *arg) {
  (void)h;
  return *(const volatile uint64_t *)arg >= 512u * 1024u;
}

ParameterizedTest(crash_case *c, crash, kill9_of_the_supervisor_fails_the_stub_at_once) {
  harness h;
  h_init(&h, NULL);
  char rules[1024], script[512];
  crash_rules(&h, c->state, rules, sizeof rules);
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" 2>'%s/stub.err'; echo $? >&2",
           h.dir);

  /* The stub's stdout: nowhere, a slow reader, or a pipe nobody reads. */
  int out[2];
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  bool to_pipe =
      c->state == C_STREAMING || c->state == C_BLOCKED || c->state == C_DELEGATE;
  int err_fd;
  pid_t cli = cli_start(&h, c->tcp, rules, script, -1, to_pipe ? out[1] : null, &err_fd);
  close(out[1]);
  close(null);
  volatile uint64_t *count = mmap(NULL, sizeof *count, PROT_READ | PROT_WRITE,
                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  cr_assert(count != MAP_FAILED);
  *count = 0;
  pid_t reader = c->state == C_STREAMING ? slow_reader(out[0], count) : -1;

  pid_t prog = -1;
  if (c->state == C_RUN)
    prog = read_pid(&h);
  else if (c->state == C_STREAMING)
    h_poll_until(&h, streaming, (const void *)count, "the stream never got going");
  else if (c->state == C_BLOCKED || c->state == C_DELEGATE)
    h_poll_until(&h, pipe_full, &out[0], "the stub's stdout never filled");
  else
    h_poll_until(&h, events_have_connect, NULL, "the stub never connected");

  int status;
  uint64_t before = *count;
  double ms = kill_and_time(cli, err_fd, &status);
  uint64_t after_kill = *count - before;
  bool prog_left = prog > 0 && !h_poll_for(&h, pid_gone, &prog);
  if (prog_left)
    kill(prog, SIGKILL); /* do not leave it behind */
  cr_log_info("kill -9 over %s, stub %s: 125 after %.1f ms (%llu bytes read meanwhile)",
              c->tcp ? "TCP" : "Unix", state_names[c->state], ms,
              (unsigned long long)after_kill);
  cr_assert_eq(status, 125, "the stub ended with %d", status);
  assert_one_stub_line(&h);
  cr_assert_leq(ms, CRASH_BOUND_MS * h_scale(), "the stub took %.1f ms to fail", ms);
  cr_assert_not(prog_left, "the program run by the stub outlived it");

  close(out[0]);
  close(err_fd);
  if (reader > 0)
    cr_assert_eq(waitpid(reader, NULL, 0), reader);
  munmap((void *)count, sizeof *count);
  h_fini(&h);
}

/* The stub's stdout is a pipe it cannot re-open through /proc (mode 000,
 * and no CAP_DAC_OVERRIDE for the command and what it runs): it writes the
 * blocking fd itself, only when poll() says it has room, and still notices
 * the bridge's loss while the pipe is full. */
ParameterizedTestParameters(crash,
                            kill9_finds_a_stub_blocked_on_a_pipe_it_cannot_reopen) {
  static int tcp[] = {1, 0};
  return cr_make_param_array(int, tcp, 2);
}

ParameterizedTest(int *tcp, crash,
                  kill9_finds_a_stub_blocked_on_a_pipe_it_cannot_reopen) {
  /* Root re-opens anything: the programs started from here on may not. */
  if (geteuid() == 0 && (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) != 0 ||
                         prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) != 0))
    cr_skip_test("cannot drop CAP_DAC_OVERRIDE: %s", strerror(errno));
  harness h;
  h_init(&h, NULL);
  char rules[1024], script[512];
  crash_rules(&h, C_BLOCKED, rules, sizeof rules);
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" 2>'%s/stub.err'; echo $? >&2",
           h.dir);
  int out[2], err_fd;
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  cr_assert_eq(fchmod(out[1], 0), 0);
  pid_t cli = cli_start(&h, *tcp, rules, script, -1, out[1], &err_fd);
  close(out[1]);
  h_poll_until(&h, pipe_full, &out[0], "the stub's stdout never filled");
  int status;
  double ms = kill_and_time(cli, err_fd, &status);
  cr_log_info(
      "kill -9 over %s, stub blocked on a pipe it cannot re-open: 125 after %.1f ms",
      *tcp ? "TCP" : "Unix", ms);
  cr_assert_eq(status, 125, "the stub ended with %d", status);
  assert_one_stub_line(&h);
  cr_assert_leq(ms, CRASH_BOUND_MS * h_scale(), "the stub took %.1f ms to fail", ms);
  close(out[0]);
  close(err_fd);
  h_fini(&h);
}

/* ---- 9. a delegated program does not outlive the supervisor --------------- */

ParameterizedTestParameters(crash, kill9_of_the_supervisor_ends_its_delegates) {
  static int tcp[] = {1, 0};
  return cr_make_param_array(int, tcp, 2);
}

ParameterizedTest(int *tcp, crash, kill9_of_the_supervisor_ends_its_delegates) {
  harness h;
  h_init(&h, NULL);
  char rules[1024], script[512];
  /* A program that neither reads its stdin nor writes: the end of its
   * pipes does not end it. */
  snprintf(rules, sizeof rules,
           "{\"default\": {\"delegate\": {\"argv\": [\"sh\", \"-c\", "
           "\"echo $$ > '%s/pid'; exec sleep 300\"]}}}",
           h.dir);
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" 2>'%s/stub.err'; echo $? >&2",
           h.dir);
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  int err_fd;
  pid_t cli = cli_start(&h, *tcp, rules, script, -1, null, &err_fd);
  close(null);
  pid_t prog = read_pid(&h);
  cr_assert(alive(prog));

  double t0 = now_ms();
  int status;
  double stub_ms = kill_and_time(cli, err_fd, &status);
  bool gone = h_poll_for(&h, pid_gone, &prog);
  double prog_ms = now_ms() - t0;
  if (!gone)
    kill(prog, SIGKILL); /* do not leave it behind */
  cr_log_info(
      "kill -9 over %s: the delegate ended within %.1f ms, the stub 125 after %.1f ms",
      *tcp ? "TCP" : "Unix", prog_ms, stub_ms);
  cr_assert(gone, "the delegated program outlived the supervisor");
  cr_assert_eq(status, 125, "the stub ended with %d", status);
  assert_one_stub_line(&h);
  close(err_fd);
  h_fini(&h);
}

/* ---- 12. socket directories of dead supervisors are tidied ----------------- */

/* The directory of the socket path a child wrote to file `name`. */
static char *sock_dir_of(harness *h, const char *name) {
  h_wait_file(h, name);
  char *s = h_read(h, name, NULL);
  char *nl = strchr(s, '\n');
  if (nl != NULL)
    *nl = '\0';
  char *slash = strrchr(s, '/');
  cr_assert_not_null(slash, "not a socket path: %s", s);
  *slash = '\0';
  return s;
}

static bool exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

/* Unix transport only: a TCP supervisor leaves nothing in the file system. */
Test(crash, a_run_tidies_socket_dirs_of_dead_supervisors) {
  harness h;
  h_init(&h, NULL);
  char script[512], foreign[300], sock_b[300];
  /* Not ours to remove: without a socket and a lock file, nothing is
   * proven. */
  snprintf(foreign, sizeof foreign, "%s/socketbridge-AbCdEf", h.dir);
  cr_assert_eq(mkdir(foreign, 0700), 0);

  /* Two supervisors whose children wait on stdin: one to be killed, one to
   * stay alive. */
  int in_a[2], in_b[2], err_a, err_b;
  cr_assert_eq(pipe2(in_a, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(in_b, O_CLOEXEC), 0);
  snprintf(script, sizeof script,
           "echo \"$SOCKETBRIDGE_SOCKET\" > '%s/sock.a'; read x || :", h.dir);
  pid_t a = cli_start(&h, false, "{\"rules\": []}", script, in_a[0], 1, &err_a);
  char *dir_a = sock_dir_of(&h, "sock.a");
  snprintf(script, sizeof script,
           "echo \"$SOCKETBRIDGE_SOCKET\" > '%s/sock.b'; read x || :", h.dir);
  pid_t b = cli_start(&h, false, "{\"rules\": []}", script, in_b[0], 1, &err_b);
  char *dir_b = sock_dir_of(&h, "sock.b");
  snprintf(sock_b, sizeof sock_b, "%s/sock", dir_b);
  close(in_a[0]);
  close(in_b[0]);

  cr_assert_eq(kill(a, SIGKILL), 0);
  cr_assert_eq(waitpid(a, NULL, 0), a);
  cr_assert(exists(dir_a), "the killed supervisor's directory is not there to tidy");

  /* A later run, to its end. */
  int err_c;
  double t0 = now_ms();
  pid_t c = cli_start(&h, false, "{\"rules\": []}", "true", -1, 1, &err_c);
  cr_assert(h_wait_reapable(c, H_DEADLINE * h_scale()), "the later run did not end");
  int st;
  cr_assert_eq(waitpid(c, &st, 0), c);
  cr_log_info("a run that tidied one dead directory took %.1f ms", now_ms() - t0);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the later run failed: status %d", st);

  bool a_left = exists(dir_a), b_kept = exists(sock_b), foreign_kept = exists(foreign);
  /* The living one ends: its child reads EOF. */
  close(in_b[1]);
  cr_assert(h_wait_reapable(b, H_DEADLINE * h_scale()),
            "the living supervisor did not end");
  cr_assert_eq(waitpid(b, &st, 0), b);
  close(in_a[1]);
  close(err_a);
  close(err_b);
  close(err_c);

  cr_assert_not(a_left, "the dead supervisor's directory %s is still there", dir_a);
  cr_assert(b_kept, "the living supervisor's socket was removed");
  cr_assert(foreign_kept, "a directory that holds no socket was removed");
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the living supervisor ended %d", st);
  free(dir_a);
  free(dir_b);
  h_fini(&h);
}
