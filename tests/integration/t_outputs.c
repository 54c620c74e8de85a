/* SPDX-License-Identifier: MIT */
/* The files `socketbridge run` reads and writes, as a hostile or careless
 * caller gives them: readers that stall, FIFOs and directories where files
 * belong, outputs that must not be truncated, answers far bigger than
 * memory (issue 15 items 2, 3, 7, 10, 11; issue 16 item 7). Nothing the loop
 * does may wait on a file; memory stays bounded; nothing is lost silently. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "harness.h"

TestSuite(outputs, .timeout = 300);

/* Peak RSS bounds are for the plain build: ASan's shadow memory and its
 * quarantine of freed blocks multiply what a process holds. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_SLACK 8
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_SLACK 8
#endif
#endif
#ifndef RSS_SLACK
#define RSS_SLACK 1
#endif

extern char **environ;

/* The bridge's two transports, as --transport names them. Parameters hold
 * no pointers: a test runs in another process, where they would dangle. */
typedef struct transport {
  char name[8];
} transport;
static transport transports[] = {{"tcp"}, {"unix"}};

static void put(harness *h, const char *name, const char *text) {
  int fd = open(h_path(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert(fd >= 0, "%s: %s", name, strerror(errno));
  cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static void fifo(harness *h, const char *name) {
  cr_assert_eq(mkfifo(h_path(h, name), 0600), 0, "mkfifo: %s", strerror(errno));
}

/* Starts args with stdin from /dev/null, stdout and stderr appended to
 * "<tag>.out" and "<tag>.err" (created empty unless they exist: a test can
 * put text there first), our environment plus env, in the temp dir. */
static pid_t start(harness *h, const char *tag, char *const *env,
                   const char *const *args) {
  char out[600], err[600];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  size_t n = 0, m = 0;
  pid_t pid;

  while (environ[n])
    n++;
  while (env && env[m])
    m++;
  char **envp = calloc(n + m + 1, sizeof *envp);
  memcpy(envp, environ, n * sizeof *envp);
  if (m)
    memcpy(envp + n, env, m * sizeof *envp);
  snprintf(out, sizeof out, "%s/%s.out", h->dir, tag);
  snprintf(err, sizeof err, "%s/%s.err", h->dir, tag);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_addchdir_np(&fa, h->dir);
  posix_spawnattr_init(&at);
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  int r = posix_spawnp(&pid, args[0], &fa, &at, (char *const *)args, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  free(envp);
  cr_assert_eq(r, 0, "posix_spawn %s: %s", args[0], strerror(r));
  return pid;
}

/* Waits for pid (bounded: a hang fails the test, never blocks it); its
 * exit status. */
static int finish(pid_t pid, const char *what) {
  double limit = H_DEADLINE * h_scale();
  bool ended = h_wait_reapable(pid, limit);
  int st;
  if (!ended)
    kill(pid, SIGKILL);
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  cr_assert(ended, "%s: socketbridge did not end within %.0f s (it hangs)", what, limit);
  cr_assert(WIFEXITED(st), "%s: socketbridge died by signal %d", what, WTERMSIG(st));
  return WEXITSTATUS(st);
}

#define RUN(h, tag, ...)                                                                 \
  start((h), (tag), NULL, (const char *[]){SB_TEST_CLI, "run", __VA_ARGS__, NULL})

/* The largest resident set of any process this test reaped, socketbridge
 * included (KiB). */
static long peak_rss_kib(void) {
  struct rusage ru;
  cr_assert_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
  return ru.ru_maxrss;
}

static bool exists(harness *h, const char *name) {
  return access(h_path(h, name), F_OK) == 0;
}

/* Waits, bounded, until the file exists (what the command's script touches
 * when it has done its part). */
static void wait_file(harness *h, const char *name, pid_t pid) {
  double end = h_now() + H_DEADLINE * h_scale();
  while (!exists(h, name)) {
    cr_assert(h_now() < end, "%s never appeared: socketbridge stopped answering", name);
    cr_assert(!h_wait_reapable(pid, 0.01), "socketbridge ended before %s appeared", name);
  }
}

/* ---- 15.2: a reader that stalls ------------------------------------------- */

#define CALLS 600
/* Each call names an 8000-byte argument: its event or record line is that
 * long, so 600 calls outgrow a pipe (64 KiB) and the writer's bound (4 MiB). */
#define BIG_CALLS_SCRIPT                                                                 \
  "big=$(head -c 8000 /dev/zero | tr '\\0' x); i=0; "                                    \
  "while [ $i -lt 600 ]; do \"$SOCKETBRIDGE_STUB\" \"$big\" || exit 9; i=$((i+1)); "     \
  "done; "                                                                               \
  ": > done; "

typedef struct stall_case {
  char option[16]; /* --events or --record */
  char transport[8];
} stall_case;

ParameterizedTestParameters(outputs, a_stalled_reader_stops_no_call_signal_or_timeout) {
  static stall_case cases[] = {{"--events", "tcp"},
                               {"--events", "unix"},
                               {"--record", "tcp"},
                               {"--record", "unix"}};
  return cr_make_param_array(stall_case, cases, sizeof cases / sizeof cases[0]);
}

/* The test holds the FIFO's read end and never reads it: the writer fills
 * the pipe, then its bound. Calls go on, and SIGTERM still stops the run
 * (before, the loop froze in write(2) after ~120 events). */
ParameterizedTest(stall_case *c, outputs,
                  a_stalled_reader_stops_no_call_signal_or_timeout) {
  harness h;
  h_init(&h, NULL);
  fifo(&h, "out.fifo");
  int rd = open(h_path(&h, "out.fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert(rd >= 0);
  pid_t pid = RUN(&h, "cli", "--transport", c->transport, c->option, "out.fifo", "--",
                  "sh", "-c", BIG_CALLS_SCRIPT "exec sleep 3600");
  wait_file(&h, "done", pid);
  double t0 = h_now();
  kill(pid, SIGTERM);
  int status = finish(pid, "SIGTERM with a stalled reader");
  double took = h_now() - t0;
  long rss = peak_rss_kib();
  char *err = h_read(&h, "cli.err", NULL);
  cr_log_info("%s %s: %d calls with the reader stalled; SIGTERM to exit %.2f s; peak RSS "
              "%ld KiB; stderr: %s",
              c->option, c->transport, CALLS, took, rss, err);
  cr_assert_eq(status, 128 + SIGTERM, "exit %d; stderr: %s", status, err);
  cr_assert_not_null(strstr(err, "lines are dropped from here"), "stderr: %s", err);
  cr_assert_not_null(strstr(err, "were not written"), "stderr: %s", err);
  cr_assert_lt(rss, 24 * 1024 * RSS_SLACK, "peak RSS %ld KiB with a stalled reader", rss);
  free(err);
  close(rd);
  h_fini(&h);
}

/* The same stall, with --timeout: it fires on time. */
ParameterizedTestParameters(outputs, the_timeout_fires_with_a_stalled_events_reader) {
  return cr_make_param_array(transport, transports, 2);
}

ParameterizedTest(transport *tr, outputs,
                  the_timeout_fires_with_a_stalled_events_reader) {
  harness h;
  h_init(&h, NULL);
  fifo(&h, "ev.fifo");
  int rd = open(h_path(&h, "ev.fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert(rd >= 0);
  pid_t pid = RUN(&h, "cli", "--transport", tr->name, "--events", "ev.fifo", "--timeout",
                  "4", "--", "sh", "-c", BIG_CALLS_SCRIPT "exec sleep 3600");
  int status = finish(pid, "--timeout with a stalled reader");
  char *err = h_read(&h, "cli.err", NULL);
  cr_assert_eq(status, 124, "exit %d; stderr: %s", status, err);
  free(err);
  close(rd);
  h_fini(&h);
}

/* Counts whole lines of text, and in *noted the lines {"dropped":N} lines
 * stand for. */
static unsigned long count_lines(const char *text, size_t len, unsigned long *noted) {
  unsigned long n = 0;
  *noted = 0;
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(text + i, '\n', len - i);
    if (nl == NULL)
      break; /* a cut last line is not a line */
    if (strncmp(text + i, "{\"dropped\":", 11) == 0)
      *noted += strtoul(text + i + 11, NULL, 10);
    else
      n++;
    i = (size_t)(nl - text) + 1;
  }
  return n;
}

/* A reader that stalls, then reads: every event arrives, or is counted in
 * a {"dropped":N} line, or on stderr ("N lines were not written"): none is
 * lost silently. */
ParameterizedTestParameters(outputs,
                            a_reader_that_falls_behind_gets_every_event_or_its_count) {
  return cr_make_param_array(transport, transports, 2);
}

ParameterizedTest(transport *tr, outputs,
                  a_reader_that_falls_behind_gets_every_event_or_its_count) {
  harness h;
  h_init(&h, NULL);
  fifo(&h, "ev.fifo");
  int rd = open(h_path(&h, "ev.fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert(rd >= 0);
  pid_t pid = RUN(&h, "cli", "--transport", tr->name, "--events", "ev.fifo", "--", "sh",
                  "-c", BIG_CALLS_SCRIPT);
  wait_file(&h, "done", pid);
  /* Now read it all, until socketbridge closes its end. */
  size_t cap = 16 << 20, len = 0;
  char *buf = malloc(cap);
  double end = h_now() + H_DEADLINE * h_scale();
  for (;;) {
    struct pollfd p = {.fd = rd, .events = POLLIN};
    cr_assert(h_now() < end, "the events never ended");
    poll(&p, 1, 100);
    ssize_t n = read(rd, buf + len, cap - len);
    if (n == 0)
      break;
    if (n > 0)
      len += (size_t)n;
    cr_assert(len < cap);
  }
  int status = finish(pid, "a reader that falls behind");
  char *err = h_read(&h, "cli.err", NULL);
  unsigned long noted, lines = count_lines(buf, len, &noted), unwritten = 0;
  const char *u = strstr(err, "lines were not written");
  if (u != NULL) {
    while (u > err && u[-1] == ' ')
      u--;
    while (u > err && u[-1] >= '0' && u[-1] <= '9')
      u--;
    unwritten = strtoul(u, NULL, 10);
  }
  cr_log_info("events %s: %lu lines read, %lu counted as dropped, %lu not written at the "
              "end, of %d",
              tr->name, lines, noted, unwritten, 2 * CALLS + 2);
  cr_assert_eq(status, 0, "exit %d; stderr: %s", status, err);
  cr_assert_gt(noted, 0, "the bound was never reached: the test proves nothing");
  cr_assert_eq(lines + noted + unwritten, 2 * CALLS + 2,
               "%lu read + %lu dropped + %lu not written; stderr: %s", lines, noted,
               unwritten, err);
  free(buf);
  free(err);
  close(rd);
  h_fini(&h);
}

/* `--events >(jq -c .)`: a pipe from the shell, read as it goes. */
ParameterizedTestParameters(outputs, events_into_a_process_substitution_keep_working) {
  return cr_make_param_array(transport, transports, 2);
}

ParameterizedTest(transport *tr, outputs,
                  events_into_a_process_substitution_keep_working) {
  harness h;
  h_init(&h, NULL);
  char script[1024];
  snprintf(script, sizeof script,
           "'%s' run --transport %s --events >(jq -c .event > ev.txt) -- "
           "sh -c '\"$SOCKETBRIDGE_STUB\"'; s=$?; wait $!; exit $s",
           SB_TEST_CLI, tr->name);
  pid_t pid = start(&h, "bash", NULL, (const char *[]){"bash", "-c", script, NULL});
  cr_assert_eq(finish(pid, "--events >(jq)"), 0);
  char *ev = h_read(&h, "ev.txt", NULL);
  /* The stub's end and the child's race: their order is not fixed. */
  cr_assert(strncmp(ev, "\"spawn\"\n\"stub_connect\"\n", 23) == 0, "events: %s", ev);
  cr_assert(strcmp(ev + 23, "\"stub_exit\"\n\"exit\"\n") == 0 ||
                strcmp(ev + 23, "\"exit\"\n\"stub_exit\"\n") == 0,
            "events: %s", ev);
  free(ev);
  h_fini(&h);
}

/* A rules file replaced by a FIFO (renamed over it): the reload refuses
 * it, says so, and the rules loaded before answer on. */
ParameterizedTestParameters(outputs, a_fifo_renamed_over_the_rules_file_is_refused) {
  return cr_make_param_array(transport, transports, 2);
}

ParameterizedTest(transport *tr, outputs, a_fifo_renamed_over_the_rules_file_is_refused) {
  harness h;
  h_init(&h, NULL);
  put(&h, "rules.json", "{\"default\": {\"respond\": {\"stdout\": \"one\\n\"}}}");
  pid_t pid =
      RUN(&h, "cli", "--transport", tr->name, "--rules", "rules.json", "--", "sh", "-c",
          "\"$SOCKETBRIDGE_STUB\"; mkfifo r.fifo; mv r.fifo rules.json; "
          "\"$SOCKETBRIDGE_STUB\"; echo \"rc=$?\"");
  int status = finish(pid, "a FIFO as the rules file");
  char *out = h_read(&h, "cli.out", NULL), *err = h_read(&h, "cli.err", NULL);
  cr_assert_eq(status, 0, "exit %d; stderr: %s", status, err);
  cr_assert_str_eq(out, "one\none\nrc=0\n");
  cr_assert_not_null(strstr(err,
                            "rules.json: not a regular file (the rules loaded before "
                            "stay in force)"),
                     "stderr: %s", err);
  free(out);
  free(err);
  h_fini(&h);
}

/* ---- 15.3: FIFOs and directories at startup --------------------------------- */

typedef struct odd_case {
  char what[32];
  char option[16], path[16]; /* path in the temp dir */
  int status;                /* 125, or 0: it runs */
  char message[64];          /* on the one line of stderr ("": it runs) */
} odd_case;

ParameterizedTestParameters(outputs, fifos_and_directories_at_startup_never_hang) {
  static odd_case cases[] = {
      {"rules FIFO", "--rules", "a.fifo", 125, "--rules: a.fifo: not a regular file"},
      {"stdout_file FIFO", "--rules", "rules.json", 125, "a.fifo: not a regular file"},
      {"stdout FIFO", "--stdout", "a.fifo", 125, "--stdout: a.fifo: a FIFO nobody reads"},
      {"events FIFO", "--events", "a.fifo", 125, "--events: a.fifo: a FIFO nobody reads"},
      {"record FIFO", "--record", "a.fifo", 125, "--record: a.fifo: a FIFO nobody reads"},
      {"stdin FIFO", "--stdin", "a.fifo", 0, ""},
      {"stdin dir", "--stdin", "d", 125, "--stdin: d: Is a directory"},
      {"stdout dir", "--stdout", "d", 125, "--stdout: d: Is a directory"},
      {"events dir", "--events", "d", 125, "--events: d: Is a directory"},
  };
  return cr_make_param_array(odd_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(odd_case *c, outputs, fifos_and_directories_at_startup_never_hang) {
  harness h;
  h_init(&h, NULL);
  fifo(&h, "a.fifo");
  cr_assert_eq(mkdir(h_path(&h, "d"), 0700), 0);
  put(&h, "rules.json", "{\"default\": {\"respond\": {\"stdout_file\": \"a.fifo\"}}}");
  pid_t pid = RUN(&h, "cli", c->option, c->path, "--", "cat");
  int status = finish(pid, c->what);
  char *err = h_read(&h, "cli.err", NULL);
  cr_assert_eq(status, c->status, "%s: exit %d; stderr: %s", c->what, status, err);
  if (c->message[0] != '\0') {
    cr_assert_not_null(strstr(err, c->message), "%s: stderr: %s", c->what, err);
    cr_assert_eq(strchr(err, '\n'), err + strlen(err) - 1, "%s: not one line: %s",
                 c->what, err);
  }
  free(err);
  h_fini(&h);
}

/* ---- 15.10: a run that fails its checks touches no output -------------------- */

Test(outputs, a_run_that_fails_its_checks_leaves_every_output_as_it_was) {
  static const char *const outs[] = {"o.txt", "e.txt", "ev.txt", "rec.txt"};
  harness h;
  h_init(&h, NULL);
  for (size_t i = 0; i < 4; i++)
    put(&h, outs[i], "old\n");
  put(&h, "bad.json", "{\"rules\": [");
  /* Bad rules, then an output nobody can open after three that exist. */
  pid_t pid = RUN(&h, "a", "--stdout", "o.txt", "--stderr", "e.txt", "--events", "ev.txt",
                  "--record", "rec.txt", "--rules", "bad.json", "--", "true");
  cr_assert_eq(finish(pid, "bad rules"), 125);
  pid = RUN(&h, "b", "--stdout", "o.txt", "--stderr", "e.txt", "--events", "ev.txt",
            "--record", "no/such/dir/rec.txt", "--", "true");
  cr_assert_eq(finish(pid, "a bad --record"), 125);
  for (size_t i = 0; i < 4; i++) {
    char *t = h_read(&h, outs[i], NULL);
    cr_assert_str_eq(t, "old\n", "%s was touched", outs[i]);
    free(t);
  }
  /* Outputs that did not exist are not left behind either. */
  pid = RUN(&h, "c", "--stdout", "new.out", "--events", "new.ev", "--rules", "bad.json",
            "--", "true");
  cr_assert_eq(finish(pid, "bad rules, new outputs"), 125);
  pid = RUN(&h, "d", "--stdout", "new.out", "--events", "new.ev", "--record",
            "no/such/dir/rec.txt", "--", "true");
  cr_assert_eq(finish(pid, "a bad --record, new outputs"), 125);
  cr_assert(!exists(&h, "new.out") && !exists(&h, "new.ev"), "a failed run left files");
  h_fini(&h);
}

/* ---- 16.7: "-" and inherited descriptors ------------------------------------ */

Test(outputs, a_dash_is_the_commands_own_stdout) {
  harness h;
  h_init(&h, NULL);
  pid_t pid = RUN(&h, "ev", "--events", "-", "--", "true");
  cr_assert_eq(finish(pid, "--events -"), 0);
  pid =
      RUN(&h, "rec", "--record", "-", "--", "sh", "-c", "\"$SOCKETBRIDGE_STUB\" marker");
  cr_assert_eq(finish(pid, "--record -"), 0);
  pid = RUN(&h, "out", "--stdout", "-", "--", "echo", "hello");
  cr_assert_eq(finish(pid, "--stdout -"), 0);
  char *ev = h_read(&h, "ev.out", NULL), *rec = h_read(&h, "rec.out", NULL),
       *out = h_read(&h, "out.out", NULL);
  cr_assert_not_null(strstr(ev, "{\"event\":\"spawn\""), "stdout: %s", ev);
  cr_assert_not_null(strstr(ev, "{\"event\":\"exit\""), "stdout: %s", ev);
  cr_assert_not_null(strstr(rec, "\"marker\"]"), "stdout: %s", rec);
  cr_assert_str_eq(out, "hello\n");
  cr_assert(!exists(&h, "-"), "a file named - was made");
  free(ev);
  free(rec);
  free(out);
  h_fini(&h);
}

/* `--events /dev/stderr 2>>log` appends to the log, as the caller meant:
 * what it held stays (before, the events file was opened O_TRUNC). The
 * same for /dev/stdout, /dev/fd/N and a path that is our stdout's file. */
Test(outputs, inherited_descriptors_are_appended_to_never_truncated) {
  harness h;
  h_init(&h, NULL);
  put(&h, "a.err", "kept\n");
  pid_t pid = RUN(&h, "a", "--events", "/dev/stderr", "--", "true");
  cr_assert_eq(finish(pid, "--events /dev/stderr"), 0);
  put(&h, "b.out", "kept\n");
  pid = RUN(&h, "b", "--stdout", "/dev/fd/1", "--record", "/dev/stdout", "--", "sh", "-c",
            "echo child; \"$SOCKETBRIDGE_STUB\"");
  cr_assert_eq(finish(pid, "--stdout /dev/fd/1 --record /dev/stdout"), 0);
  put(&h, "c.out", "kept\n");
  pid = RUN(&h, "c", "--events", h_path(&h, "c.out"), "--", "true");
  cr_assert_eq(finish(pid, "--events naming our stdout's file"), 0);
  char *a = h_read(&h, "a.err", NULL), *b = h_read(&h, "b.out", NULL),
       *c = h_read(&h, "c.out", NULL);
  cr_assert(strncmp(a, "kept\n{\"event\":\"spawn\"", 21) == 0, "a.err: %s", a);
  cr_assert(strncmp(b, "kept\nchild\n{\"ts\":", 17) == 0, "b.out: %s", b);
  cr_assert(strncmp(c, "kept\n{\"event\":\"spawn\"", 21) == 0, "c.out: %s", c);
  free(a);
  free(b);
  free(c);
  h_fini(&h);
}

/* An inherited socket cannot be written without waiting unless it is made
 * non-blocking, which would change it for the caller and the child too: a
 * clear error instead. */
Test(outputs, events_to_an_inherited_socket_are_refused_with_one_line) {
  harness h;
  h_init(&h, NULL);
  int sv[2];
  cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  posix_spawn_file_actions_t fa;
  char err[600];
  pid_t pid;
  snprintf(err, sizeof err, "%s/sock.err", h.dir);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, sv[0], 1);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  char *args[] = {SB_TEST_CLI, "run", "--events", "-", "--", "true", NULL};
  cr_assert_eq(posix_spawn(&pid, SB_TEST_CLI, &fa, NULL, args, environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  close(sv[0]);
  cr_assert_eq(finish(pid, "--events - to a socket"), 125);
  char *e = h_read(&h, "sock.err", NULL);
  cr_assert_str_eq(e, "socketbridge: --events: -: a socket (give a file, a pipe or a "
                      "terminal)\n");
  free(e);
  close(sv[1]);
  h_fini(&h);
}

/* ---- 15.7: answers streamed from their file ---------------------------------- */

/* A sparse file of size bytes and then "tail". */
static void sparse(harness *h, const char *name, off_t size) {
  int fd = open(h_path(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert(fd >= 0);
  cr_assert_eq(ftruncate(fd, size), 0);
  cr_assert_eq(pwrite(fd, "tail", 4, size), 4);
  close(fd);
}

ParameterizedTestParameters(outputs, a_4_gib_stdout_file_is_streamed_in_bounded_memory) {
  return cr_make_param_array(transport, transports, 2);
}

ParameterizedTest(transport *tr, outputs,
                  a_4_gib_stdout_file_is_streamed_in_bounded_memory) {
  harness h;
  h_init(&h, NULL);
  sparse(&h, "big.bin", (off_t)4 << 30);
  put(&h, "rules.json", "{\"default\": {\"respond\": {\"stdout_file\": \"big.bin\"}}}");
  double t0 = h_now();
  pid_t pid = RUN(&h, "cli", "--transport", tr->name, "--rules", "rules.json", "--", "sh",
                  "-c", "\"$SOCKETBRIDGE_STUB\" | wc -c");
  /* 4 GiB through the bridge: more than the usual deadline on a slow host. */
  bool ended = h_wait_reapable(pid, 10 * H_DEADLINE * h_scale());
  int status = finish(pid, "a 4 GiB answer");
  long rss = peak_rss_kib();
  char *out = h_read(&h, "cli.out", NULL), *err = h_read(&h, "cli.err", NULL);
  cr_log_info("4 GiB stdout_file over %s: streamed in %.1f s; peak RSS %ld KiB", tr->name,
              h_now() - t0, rss);
  cr_assert(ended);
  cr_assert_eq(status, 0, "exit %d; stderr: %s", status, err);
  cr_assert_str_eq(out, "4294967300\n");
  cr_assert_lt(rss, 32 * 1024 * RSS_SLACK, "peak RSS %ld KiB streaming 4 GiB", rss);
  free(out);
  free(err);
  h_fini(&h);
}

ParameterizedTestParameters(outputs, forty_unread_calls_of_a_32_mib_answer_cost_little) {
  return cr_make_param_array(transport, transports, 2);
}

/* 40 calls whose stdout nobody reads yet (each reader waits on go.fifo):
 * each holds a few chunks, not its own copy of the answer (before: 1.3 GiB). */
ParameterizedTest(transport *tr, outputs,
                  forty_unread_calls_of_a_32_mib_answer_cost_little) {
  harness h;
  h_init(&h, NULL);
  sparse(&h, "a.bin", (off_t)32 << 20);
  fifo(&h, "go.fifo");
  put(&h, "rules.json", "{\"default\": {\"respond\": {\"stdout_file\": \"a.bin\"}}}");
  pid_t pid = RUN(&h, "cli", "--transport", tr->name, "--rules", "rules.json", "--events",
                  "ev.txt", "--", "sh", "-c",
                  "i=0; while [ $i -lt 40 ]; do "
                  "(\"$SOCKETBRIDGE_STUB\" | { read go < go.fifo; wc -c >> counts; }) & "
                  "i=$((i+1)); done; wait");
  /* All 40 connected: their answers are on their way, unread. */
  double end = h_now() + H_DEADLINE * h_scale();
  for (;;) {
    size_t len;
    char *ev = exists(&h, "ev.txt") ? h_read(&h, "ev.txt", &len) : strdup("");
    unsigned n = 0;
    for (const char *p = ev; (p = strstr(p, "stub_connect")) != NULL; p++)
      n++;
    free(ev);
    if (n == 40)
      break;
    cr_assert(h_now() < end, "%u of 40 stubs connected", n);
    poll(NULL, 0, 20);
  }
  /* Let them read: one line each, the write end held until the run ends. */
  int go = -1;
  while ((go = open(h_path(&h, "go.fifo"), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0) {
    cr_assert(errno == ENXIO && h_now() < end, "go.fifo: %s", strerror(errno));
    poll(NULL, 0, 10);
  }
  char lines[40];
  memset(lines, '\n', sizeof lines);
  cr_assert_eq(write(go, lines, sizeof lines), (ssize_t)sizeof lines);
  int status = finish(pid, "40 unread calls");
  close(go);
  long rss = peak_rss_kib();
  char *counts = h_read(&h, "counts", NULL);
  cr_log_info("40 calls of a 32 MiB answer over %s: peak RSS %ld KiB", tr->name, rss);
  cr_assert_eq(status, 0);
  unsigned n = 0;
  for (char *p = counts, *e; *p != '\0'; p = e + 1, n++) {
    cr_assert_eq(strtoull(p, &e, 10), (32ull << 20) + 4, "a call got \"%.20s\"", p);
    cr_assert_eq(*e, '\n');
  }
  cr_assert_eq(n, 40);
  cr_assert_lt(rss, 64 * 1024 * RSS_SLACK, "peak RSS %ld KiB for 40 calls", rss);
  free(counts);
  h_fini(&h);
}

/* ---- 15.11: the stub repeats no token ---------------------------------------- */

Test(outputs, the_stubs_messages_hide_a_token_pasted_in_any_variable) {
  static const char token[] = "0123456789abcdef0123456789abcdef"
                              "0123456789abcdef0123456789abcdef";
  char fallback[128], sock[512], tok[128];
  harness h;
  h_init(&h, NULL);
  snprintf(fallback, sizeof fallback, "SOCKETBRIDGE_FALLBACK=%s", token);
  snprintf(sock, sizeof sock, "SOCKETBRIDGE_SOCKET=%s/%s", h.dir, token);
  snprintf(tok, sizeof tok, "SOCKETBRIDGE_TOKEN=%s", token);
  pid_t pid = start(&h, "fb", (char *[]){fallback, NULL}, (const char *[]){H_STUB, NULL});
  cr_assert_eq(finish(pid, "a token as the fallback"), 125);
  pid = start(&h, "sock", (char *[]){tok, sock, NULL}, (const char *[]){H_STUB, NULL});
  cr_assert_eq(finish(pid, "a token in the socket path"), 125);
  char *fb = h_read(&h, "fb.err", NULL), *so = h_read(&h, "sock.err", NULL);
  cr_assert_null(strstr(fb, "0123456789abcdef"), "the fallback line shows it: %s", fb);
  cr_assert_null(strstr(so, "0123456789abcdef"), "the socket line shows it: %s", so);
  cr_assert_not_null(strstr(fb, "<hex digits>"), "%s", fb);
  cr_assert_not_null(strstr(so, "<hex digits>"), "%s", so);
  free(fb);
  free(so);
  h_fini(&h);
}
