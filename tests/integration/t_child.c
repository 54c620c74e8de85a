/* SPDX-License-Identifier: MIT */
/* Child supervision: exact exit status, spawn errors, every stdio mode, the
 * stop sequence, deadlines, restarts with backoff, the server's close, and
 * events as JSON. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

#include "../helpers/stream.h"

TestSuite(child, .timeout = 60);

/* ---- recording what happens -------------------------------------------- */

#define MAX_EVENTS 256
#define MAX_CHUNKS 256

typedef struct seen_event {
  sb_event_type type;
  int64_t pid, status;
  int signal;
  unsigned restarts;
  uint64_t delay_ms, ts_ns;
  pid_t child_pid; /* sb_child_pid() at the time */
  sb_reason reason;
  sb_close_reason close_reason;
  char *json;
} seen_event;

typedef struct chunk {
  int stream;
  char text[64];
  uint64_t ts_ns;
} chunk;

typedef struct rec rec;
typedef void (*event_hook)(rec *r, sb_server *s, const sb_event *ev);

struct rec {
  seen_event ev[MAX_EVENTS];
  unsigned nev;
  event_hook hook;
  /* on_exit */
  bool done;
  unsigned exits;
  int64_t status;
  int signal;
  unsigned restarts_at_exit;
  /* on_output */
  chunk chunks[MAX_CHUNKS];
  unsigned nchunks;
  size_t out_bytes, err_bytes;
  tsum out_sum;
  int pong_fd; /* written a line for each chunk, or -1 */
  void *user;
};

static void rec_init(rec *r) {
  memset(r, 0, sizeof *r);
  r->pong_fd = -1;
  tsum_init(&r->out_sum);
}

static void rec_free(rec *r) {
  for (unsigned i = 0; i < r->nev; i++)
    free(r->ev[i].json);
}

static void on_event(sb_server *s, const sb_event *ev) {
  harness *h = sb_server_data(s);
  rec *r = h->user;
  cr_assert_lt(r->nev, MAX_EVENTS);
  seen_event *e = &r->ev[r->nev++];
  e->type = ev->type;
  e->pid = ev->pid;
  e->status = ev->status;
  e->signal = ev->signal;
  e->restarts = ev->restarts;
  e->delay_ms = ev->delay_ms;
  e->ts_ns = ev->ts_ns;
  e->reason = ev->reason;
  e->close_reason = ev->close_reason;
  e->child_pid = ev->child != NULL ? sb_child_pid(ev->child) : -1;
  cr_assert(ev->ts_ns > 0);
  int rc = sb_event_to_json(ev, &e->json);
  cr_assert_eq(rc, 0, "sb_event_to_json: %s", sb_strerror(rc));
  if (r->hook != NULL)
    r->hook(r, s, ev);
}

static void on_exit_rec(sb_child *c, int64_t status, int sig) {
  rec *r = sb_child_data(c);
  r->exits++;
  r->done = true;
  r->status = status;
  r->signal = sig;
  r->restarts_at_exit = sb_child_restarts(c);
}

static void on_output_rec(sb_child *c, int stream, const char *buf, size_t len,
                          uint64_t ts) {
  rec *r = sb_child_data(c);
  cr_assert(stream == 1 || stream == 2, "stream %d", stream);
  cr_assert(len > 0);
  if (stream == 1) {
    r->out_bytes += len;
    tsum_add(&r->out_sum, buf, len);
  } else {
    r->err_bytes += len;
  }
  if (r->nchunks < MAX_CHUNKS) {
    chunk *k = &r->chunks[r->nchunks++];
    k->stream = stream;
    k->ts_ns = ts;
    snprintf(k->text, sizeof k->text, "%.*s", (int)(len < 63 ? len : 63), buf);
  }
  if (r->pong_fd >= 0)
    cr_assert_eq(write(r->pong_fd, "\n", 1), 1);
}

static void start(harness *h, rec *r) {
  sb_server_options o = {.on_event = on_event};
  rec_init(r);
  h_init(h, &o);
  h->user = r;
}

/* Options for `sh -c script`: stdin /dev/null, the rest inherited, unless
 * the test changes them. */
static sb_spawn_options sh_opts(harness *h, rec *r, char **args) {
  return (sb_spawn_options){
      .file = args[0],
      .args = args,
      .stdio = {{.mode = SB_STDIO_FD, .fd = h->devnull}},
      .on_exit = on_exit_rec,
      .on_output = on_output_rec,
      .data = r,
  };
}

static sb_child *spawn_ok(harness *h, const sb_spawn_options *o) {
  sb_child *c = NULL;
  int rc = sb_spawn(h->server, o, &c);
  cr_assert_eq(rc, 0, "sb_spawn: %s", sb_strerror(rc));
  cr_assert_not_null(c);
  return c;
}

static unsigned count_type(const rec *r, sb_event_type t) {
  unsigned n = 0;
  for (unsigned i = 0; i < r->nev; i++)
    n += r->ev[i].type == t;
  return n;
}

static const seen_event *nth_of(const rec *r, sb_event_type t, unsigned nth) {
  for (unsigned i = 0; i < r->nev; i++)
    if (r->ev[i].type == t && nth-- == 0)
      return &r->ev[i];
  return NULL;
}

/* ---- exit status --------------------------------------------------------- */

Test(child, reports_the_exit_code_and_the_killing_signal_exactly) {
  harness h;
  rec a, b;
  start(&h, &a);
  rec_init(&b);
  char *code[] = {"/bin/sh", "-c", "exit 42", NULL};
  char *sig[] = {"/bin/sh", "-c", "kill -USR1 $$; sleep 5", NULL};
  sb_spawn_options oa = sh_opts(&h, &a, code), ob = sh_opts(&h, &b, sig);
  spawn_ok(&h, &oa);
  spawn_ok(&h, &ob);
  h_wait(&h, &a.done, "exit 42");
  h_wait(&h, &b.done, "a child killed by USR1");
  cr_assert_eq(a.status, 42, "status %lld", (long long)a.status);
  cr_assert_eq(a.signal, 0, "signal %d", a.signal);
  cr_assert_eq(b.signal, SIGUSR1, "signal %d", b.signal);
  cr_assert_eq(b.status, 0);
  cr_assert_eq(a.exits + b.exits, 2);
  h_fini(&h);
  rec_free(&a);
}

/* ---- spawn errors -------------------------------------------------------- */

static void spawn_fails(harness *h, rec *r, char **args, const char *cwd, int want,
                        const char *errfile) {
  sb_spawn_options o = sh_opts(h, r, args);
  o.cwd = cwd;
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(h, errfile)};
  static int sentinel;
  sb_child *c = (sb_child *)&sentinel; /* must be reset to NULL */
  int rc = sb_spawn(h->server, &o, &c);
  cr_assert_eq(rc, want, "%s: got %s, want %s", args[0], sb_err_name(rc),
               sb_err_name(want));
  cr_assert_null(c);
  size_t len;
  char *got = h_read(h, errfile, &len);
  cr_assert_eq(len, 0, "the child's stderr got: %s", got);
  free(got);
}

Test(child, spawn_errors_are_returned_and_never_written_to_the_child_stderr) {
  harness h;
  rec r;
  start(&h, &r);
  char *missing[] = {"/nonexistent/socketbridge-no-such-tool", NULL};
  char *unfound[] = {"socketbridge-no-such-tool-in-path", NULL};
  spawn_fails(&h, &r, missing, NULL, -ENOENT, "e1");
  spawn_fails(&h, &r, unfound, NULL, -ENOENT, "e2");

  int fd = h_create(&h, "not-executable");
  cr_assert_eq(write(fd, "#!/bin/sh\nexit 0\n", 17), 17);
  close(fd);
  cr_assert_eq(chmod(h_path(&h, "not-executable"), 0644), 0);
  char path[512];
  snprintf(path, sizeof path, "%s", h_path(&h, "not-executable"));
  char *noexec[] = {path, NULL};
  spawn_fails(&h, &r, noexec, NULL, -EACCES, "e3");

  char *sh[] = {"/bin/sh", "-c", "echo ran >&2", NULL};
  spawn_fails(&h, &r, sh, "/nonexistent/socketbridge-dir", -ENOENT, "e4");

  /* Nothing ran, so nothing is reported. */
  for (int i = 0; i < 3; i++)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(r.exits, 0, "on_exit ran for a spawn that failed");
  cr_assert_eq(r.nev, 0, "%u events for spawns that failed", r.nev);
  h_fini(&h);
}

Test(child, rejects_stdio_modes_that_make_no_sense) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/true", NULL};
  sb_child *c;
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "CAPTURE of stdin");
  o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_BUFFER, .data = "x", .len = 1};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "BUFFER of stdout");
  o = sh_opts(&h, &r, args);
  o.on_output = NULL;
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "CAPTURE without on_output");
  o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "no-such-dir/out")};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -ENOENT, "FILE in a missing directory");
  o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "missing-input")};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -ENOENT, "FILE stdin that does not exist");
  o = sh_opts(&h, &r, args);
  o.stdio[2] = (sb_stdio){.mode = (sb_stdio_mode)99};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "an unknown mode");
  cr_assert_eq(r.nev, 0);
  h_fini(&h);
}

/* ---- stdio modes ------------------------------------------------------------ */

Test(child, file_mode_reads_stdin_and_truncates_stdout_and_stderr) {
  harness h;
  rec r;
  umask(022);
  start(&h, &r);
  int fd = h_create(&h, "in");
  cr_assert_eq(write(fd, "line one\nline two\n", 18), 18);
  close(fd);
  fd = h_create(&h, "out");
  cr_assert_eq(write(fd, "old content that must go away\n", 30), 30);
  close(fd);
  char *args[] = {"/bin/sh", "-c", "cat; echo to-stderr >&2", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "in")};
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "out")};
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "err")};
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.status, 0);
  char *out = h_read(&h, "out", NULL), *err = h_read(&h, "err", NULL);
  cr_assert_str_eq(out, "line one\nline two\n");
  cr_assert_str_eq(err, "to-stderr\n");
  struct stat st;
  cr_assert_eq(stat(h_path(&h, "err"), &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0644, "mode %o", st.st_mode & 0777);
  free(out);
  free(err);
  h_fini(&h);
  rec_free(&r);
}

Test(child, null_mode_gives_dev_null) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/sh", "-c",
                  "a=$(readlink /proc/$$/fd/0); b=$(readlink /proc/$$/fd/1); "
                  "echo \"$a $b\" >&2; wc -c >&2",
                  NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_NULL};
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_NULL};
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "err")};
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  char *err = h_read(&h, "err", NULL);
  cr_assert_str_eq(err, "/dev/null /dev/null\n0\n");
  free(err);
  h_fini(&h);
  rec_free(&r);
}

/* The child's environment: ours, then opts.env, then stub_vars, then the
 * ticket's; a name given twice keeps its last value, once; bridge
 * variables from anywhere but the ticket are dropped. */
Test(child, a_name_given_twice_keeps_its_last_value_and_only_the_ticket_bridges) {
  harness h;
  rec r;
  start(&h, &r);
  cr_assert_eq(setenv("SB_T_OURS", "ours", 1), 0);
  cr_assert_eq(setenv("SB_T_BOTH", "ours", 1), 0);
  char *args[] = {"/usr/bin/env", NULL}; /* environ as given: no shell to merge names */
  char *env[] = {"SB_T_BOTH=given",
                 "SB_T_TWICE=1",
                 "SB_T_TWICE=2",
                 "SOCKETBRIDGE_TOKEN=not-the-ticket",
                 "SOCKETBRIDGE_PORT=1",
                 "SB_T_STUB=x",
                 NULL};
  char *stub_vars[] = {"SB_T_STUB", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.env = env;
  o.stub_vars = stub_vars;
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_FILE, .path = h_path(&h, "out")};
  sb_child *c = spawn_ok(&h, &o);
  char want_token[32 + SB_TOKEN_HEX] = "";
  for (char *const *e = sb_ticket_env(sb_child_ticket(c)); *e != NULL; e++)
    if (strncmp(*e, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) == 0)
      snprintf(want_token, sizeof want_token, "\n%s\n", *e);
  cr_assert_neq(want_token[0], '\0', "the ticket has no token");
  h_wait(&h, &r.done, "the child");
  unsetenv("SB_T_OURS");
  unsetenv("SB_T_BOTH");
  char *out = h_read(&h, "out", NULL), *all = NULL;
  cr_assert(asprintf(&all, "\n%s", out) > 0);
  cr_assert_not_null(strstr(all, "\nSB_T_OURS=ours\n"), "%s", out);
  cr_assert_not_null(strstr(all, "\nSB_T_BOTH=given\n"), "%s", out);
  cr_assert_null(strstr(all, "\nSB_T_BOTH=ours\n"), "%s", out);
  cr_assert_not_null(strstr(all, "\nSB_T_TWICE=2\n"), "%s", out);
  cr_assert_null(strstr(all, "\nSB_T_TWICE=1\n"), "%s", out);
  char stub_line[PATH_MAX + 16];
  snprintf(stub_line, sizeof stub_line, "\nSB_T_STUB=%s\n",
           sb_server_stub_path(h.server));
  cr_assert_not_null(strstr(all, stub_line), "%s", out);
  cr_assert_null(strstr(all, "\nSB_T_STUB=x\n"), "%s", out);
  cr_assert_not_null(strstr(all, want_token), "the ticket's token is not the child's");
  cr_assert_null(strstr(all, "not-the-ticket"), "%s", out);
  cr_assert_null(strstr(all, "\nSOCKETBRIDGE_PORT=1\n"), "%s", out);
  /* Each name once. */
  const char *names[] = {
      "\nSB_T_BOTH=", "\nSB_T_TWICE=", "\nSB_T_STUB=", "\nSOCKETBRIDGE_TOKEN="};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *first = strstr(all, names[i]);
    cr_assert_not_null(first, "%s", names[i] + 1);
    cr_assert_null(strstr(first + 1, names[i]), "%s twice", names[i] + 1);
  }
  free(all);
  free(out);
  h_fini(&h);
  rec_free(&r);
}

Test(child, buffer_mode_feeds_1_mib_to_stdin_then_eof) {
  harness h;
  rec r;
  start(&h, &r);
  const size_t n = 1024 * 1024;
  uint8_t *data = malloc(n);
  tstream g;
  tstream_init(&g, 77);
  tstream_fill(&g, data, n);
  char *args[] = {HELPER_SUM, NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_BUFFER, .data = data, .len = n};
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  spawn_ok(&h, &o);
  /* sb_spawn copied the buffer. */
  memset(data, 0, n);
  free(data);
  h_wait(&h, &r.done, "helper_sum");
  cr_assert_eq(r.status, 0);
  char want[64], got[64] = "";
  h_source_expect(n, 77, want);
  for (unsigned i = 0; i < r.nchunks; i++)
    strncat(got, r.chunks[i].text, sizeof got - strlen(got) - 1);
  cr_assert_str_eq(got, want, "helper_sum saw %s", got);
  h_fini(&h);
  rec_free(&r);
}

Test(child, a_child_that_does_not_read_its_buffered_stdin_is_fine) {
  harness h;
  rec r;
  start(&h, &r);
  static char big[1024 * 1024];
  char *args[] = {"/bin/sh", "-c", "exit 3", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_BUFFER, .data = big, .len = sizeof big};
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.status, 3);
  cr_assert_eq(r.signal, 0);
  h_fini(&h);
  rec_free(&r);
}

Test(child, capture_keeps_the_order_of_stdout_and_stderr_with_timestamps) {
  harness h;
  rec r;
  start(&h, &r);
  /* The child waits for a line on stdin after each write: the test sends
   * one per chunk it receives, so each line is read before the next is
   * written, and their order is the order of their stamps. */
  int ping[2];
  cr_assert_eq(pipe2(ping, O_CLOEXEC), 0);
  r.pong_fd = ping[1];
  char *args[] = {"/bin/sh", "-c",
                  "for i in 1 2 3; do echo out$i; read x; echo err$i >&2; read x; done",
                  NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_FD, .fd = ping[0]};
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  spawn_ok(&h, &o);
  close(ping[0]);
  h_wait(&h, &r.done, "the child");
  close(ping[1]);
  cr_assert_eq(r.status, 0);
  static const struct {
    int stream;
    const char *text;
  } want[] = {{1, "out1\n"}, {2, "err1\n"}, {1, "out2\n"},
              {2, "err2\n"}, {1, "out3\n"}, {2, "err3\n"}};
  cr_assert_eq(r.nchunks, 6, "%u chunks", r.nchunks);
  for (unsigned i = 0; i < 6; i++) {
    cr_assert_eq(r.chunks[i].stream, want[i].stream, "chunk %u: stream %d", i,
                 r.chunks[i].stream);
    cr_assert_str_eq(r.chunks[i].text, want[i].text, "chunk %u", i);
    if (i > 0)
      cr_assert_geq(r.chunks[i].ts_ns, r.chunks[i - 1].ts_ns, "chunk %u went back", i);
  }
  h_fini(&h);
  rec_free(&r);
}

Test(child, every_captured_byte_comes_before_on_exit) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/sh", "-c", "head -c 300000 /dev/zero; head -c 1000 /dev/zero >&2",
                  NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  o.stdio[2] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.out_bytes, 300000, "stdout: %zu bytes", r.out_bytes);
  cr_assert_eq(r.err_bytes, 1000, "stderr: %zu bytes", r.err_bytes);
  h_fini(&h);
  rec_free(&r);
}

/* ---- bytes still in a paused capture at the reap ------------------------------
 *
 * "Everything the run wrote before it exited reaches on_output before its
 * EXIT event and on_exit": when the capture is being read, libuv reads the
 * pipe before it handles the SIGCHLD, so that holds by itself. It needs the
 * drain at the reap only when the capture is paused. No call of the API
 * pauses a capture; a delegated program's is paused by the splice's
 * backpressure (delegate.c: at 1 MiB queued for the stub, until it is back
 * under 256 KiB). So: a stub whose stdout nobody reads delegates to fill,
 * which writes the test stream until told (SIGUSR1) and then exits as soon
 * as its stdout pipe is full, leaving that pipe unread. */

#define DRAIN_HIGH (1024u * 1024u) /* the splice's high-water mark */
#define DRAIN_SEED 23

typedef struct drain_run {
  sb_conn *conn;
  bool spawning; /* inside sb_conn_delegate: its SPAWN is the program's */
  pid_t prog_pid;
  tstream want;             /* what on_program_output should see next */
  uint64_t seen;            /* bytes it saw */
  uint64_t seen_after_told; /* of them, after the pause began */
  bool told;
  uint64_t seen_at_exit_event; /* at the program's EXIT event */
  unsigned exit_events;
  bool prog_exited;
  uint64_t seen_at_prog_exit; /* at on_program_exit */
  int64_t prog_status;
  int prog_signal;
  uint64_t written; /* what fill says it wrote */
  /* the stub's stdout, read once the program has ended */
  uv_pipe_t out;
  tstream out_want;
  uint64_t out_bytes;
  bool out_eof;
} drain_run;

static drain_run *DR;

static void check_stream(tstream *g, const char *buf, size_t len, const char *what,
                         uint64_t at) {
  static uint8_t want[64 * 1024];
  while (len > 0) {
    size_t n = len < sizeof want ? len : sizeof want;
    tstream_fill(g, want, n);
    cr_assert(memcmp(buf, want, n) == 0, "%s: the bytes differ after byte %llu", what,
              (unsigned long long)at);
    buf += n, len -= n, at += n;
  }
}

static void dr_event(sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_SPAWN && DR->spawning)
    DR->prog_pid = (pid_t)ev->pid;
  if (ev->type == SB_EVENT_EXIT && DR->prog_pid > 0 && ev->pid == DR->prog_pid) {
    DR->exit_events++;
    DR->seen_at_exit_event = DR->seen;
  }
}

static void dr_output(sb_conn *c, int stream, const char *buf, size_t len) {
  cr_assert_eq(stream, 1, "the program wrote %zu bytes to stderr", len);
  check_stream(&DR->want, buf, len, "on_program_output", DR->seen);
  DR->seen += len;
  if (DR->told) {
    DR->seen_after_told += len;
    return;
  }
  /* The splice queues this chunk next, and reaching the mark pauses the
   * capture. It stays paused: to resume, 768 KiB of the queue would have to
   * reach the stub, and a stub whose stdout is never read takes far less
   * (its stdout pipe, its 128 KiB read buffer, and the Unix socket's
   * buffer), so from now on only the drain at the reap reads the pipe. */
  if (sb_conn_queued(c) + len >= DRAIN_HIGH) {
    DR->told = true;
    cr_assert_eq(kill(DR->prog_pid, SIGUSR1), 0, "kill: %s", strerror(errno));
  }
}

static void dr_prog_exit(sb_conn *c, int64_t code, int signum) {
  (void)c;
  DR->prog_exited = true;
  DR->seen_at_prog_exit = DR->seen;
  DR->prog_status = code;
  DR->prog_signal = signum;
}

static void dr_connect(harness *h, sb_conn *c) {
  char seed[16];
  snprintf(seed, sizeof seed, "%d", DRAIN_SEED);
  char count[512];
  snprintf(count, sizeof count, "%s", h_path(h, "fill.count"));
  char *argv[] = {HELPER_FILL, seed, count, NULL};
  cr_assert_null(DR->conn, "a second stub connected");
  DR->conn = c;
  sb_conn_set_callbacks(c,
                        &(sb_conn_callbacks){.on_program_output = dr_output,
                                             .on_program_exit = dr_prog_exit},
                        DR);
  DR->spawning = true;
  int r = sb_conn_delegate(c, &(sb_program){.argv = argv, .path = HELPER_FILL});
  DR->spawning = false;
  cr_assert_eq(r, 0, "sb_conn_delegate: %s", sb_strerror(r));
  cr_assert_gt(DR->prog_pid, 0, "no SPAWN event for the program");
}

static void dr_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char scratch[64 * 1024];
  (void)handle, (void)suggested;
  *buf = uv_buf_init(scratch, sizeof scratch);
}

static void dr_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  if (nread == UV_EOF) {
    DR->out_eof = true;
    uv_close((uv_handle_t *)stream, NULL);
    return;
  }
  cr_assert_geq(nread, 0, "reading the stub's stdout: %s", uv_strerror((int)nread));
  check_stream(&DR->out_want, buf->base, (size_t)nread, "the stub's stdout",
               DR->out_bytes);
  DR->out_bytes += (uint64_t)nread;
}

Test(child, bytes_left_in_a_paused_capture_reach_on_output_before_the_exit) {
  harness h;
  DR = calloc(1, sizeof *DR);
  cr_assert_not_null(DR);
  tstream_init(&DR->want, DRAIN_SEED);
  tstream_init(&DR->out_want, DRAIN_SEED);
  /* Unix: its socket buffer is fixed (TCP's grows), which the bound on what
   * the stub can take relies on (see dr_output). */
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX, .on_event = dr_event});
  h.on_connect = dr_connect;
  int out[2];
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  h_exit ex = {0};
  char *args[] = {H_STUB, "drain", NULL};
  h_spawn(&h, &(h_spawn_opts){.args = args, .out = out[1]}, &ex);
  close(out[1]);

  /* The stub's stdout is not read until the program has ended. */
  h_wait(&h, &DR->prog_exited, "the delegated program's end");
  cr_assert(DR->told, "the capture was never paused");
  cr_assert_eq(DR->prog_signal, 0, "fill died by signal %d", DR->prog_signal);
  cr_assert_eq(DR->prog_status, 0, "fill exited %lld", (long long)DR->prog_status);
  /* fill wrote its count before it exited. */
  char *count = h_read(&h, "fill.count", NULL);
  DR->written = strtoull(count, NULL, 10);
  free(count);
  cr_assert_eq(DR->exit_events, 1, "%u EXIT events for the program", DR->exit_events);
  cr_assert_eq(DR->seen_at_exit_event, DR->written,
               "fill wrote %llu bytes; on_program_output saw %llu before its EXIT event",
               (unsigned long long)DR->written,
               (unsigned long long)DR->seen_at_exit_event);
  cr_assert_eq(DR->seen_at_prog_exit, DR->written,
               "fill wrote %llu bytes; on_program_output saw %llu before on_exit",
               (unsigned long long)DR->written,
               (unsigned long long)DR->seen_at_prog_exit);
  /* The premise: fill exited with its stdout pipe full (not empty) while
   * the capture was paused, so those bytes came from the drain. */
  cr_assert_gt(DR->seen_after_told, 0, "nothing was left in the pipe at the reap");

  /* Now the stub gets everything, then ends as the program did. */
  cr_assert_eq(uv_pipe_init(&h.loop, &DR->out, 0), 0);
  cr_assert_eq(uv_pipe_open(&DR->out, out[0]), 0);
  cr_assert_eq(uv_read_start((uv_stream_t *)&DR->out, dr_alloc, dr_read), 0);
  h_wait(&h, &DR->out_eof, "the stub's stdout to end");
  h_wait_exit(&h, &ex);
  cr_assert_eq(DR->out_bytes, DR->written, "the stub wrote %llu bytes of %llu",
               (unsigned long long)DR->out_bytes, (unsigned long long)DR->written);
  cr_assert_eq(ex.signal, 0, "the stub died by signal %d", ex.signal);
  cr_assert_eq(ex.status, 0, "the stub exited %lld", (long long)ex.status);
  h_fini(&h);
  free(DR);
}

/* ---- the stop sequence and deadlines ---------------------------------------- */

static void stop_when_ready(sb_child *c, int stream, const char *buf, size_t len,
                            uint64_t ts) {
  on_output_rec(c, stream, buf, len, ts);
  if (memmem(buf, len, "ready", 5) != NULL) {
    cr_assert_eq(sb_child_stop(c), 0);
    cr_assert_eq(sb_child_stop(c), 0, "a second stop must do nothing");
  }
}

Test(child, a_child_that_ignores_the_stop_signal_is_killed_after_the_grace) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done",
                  NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  o.on_output = stop_when_ready;
  o.kill_after_ms = 200;
  o.restart = SB_RESTART_ALWAYS; /* a stop means no restart all the same */
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.signal, SIGKILL, "signal %d", r.signal);
  cr_assert_eq(count_type(&r, SB_EVENT_STOP), 2);
  cr_assert_eq(nth_of(&r, SB_EVENT_STOP, 0)->signal, SIGTERM);
  cr_assert_eq(nth_of(&r, SB_EVENT_STOP, 1)->signal, SIGKILL);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 0);
  cr_assert_eq(r.exits, 1);
  h_fini(&h);
  rec_free(&r);
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

/* Polls /proc until no process carries marker; a killed process takes a
 * moment to go, and has no event to wait on here. */
static void wait_unmarked(harness *h, const char *marker) {
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  uv_timer_start(&t, on_tick, 10, 10);
  uint64_t start_ms = uv_now(&h->loop);
  while (h_count_marked(marker) > 0 && uv_now(&h->loop) - start_ms < 10000)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  cr_assert_eq(h_count_marked(marker), 0, "a process marked %s survived", marker);
}

Test(child, a_timeout_stops_the_child_and_its_grandchildren) {
  harness h;
  rec r;
  start(&h, &r);
  char marker[64];
  snprintf(marker, sizeof marker, "sb-marker-%d-%ld", (int)getpid(), (long)time(NULL));
  /* The grandchild ignores TERM and keeps the captured stdout open: only
   * the SIGKILL to the group after the leader's exit ends it (the grace is
   * far longer than the test). */
  char script[512];
  snprintf(script, sizeof script,
           "sh -c 'trap \"\" TERM; echo ready; sleep 300' %s & sleep 300", marker);
  char *args[] = {"/bin/sh", "-c", script, marker, NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  o.timeout_ms = 1000;
  o.kill_after_ms = 60000;
  o.restart = SB_RESTART_ALWAYS;
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.signal, SIGTERM, "signal %d status %lld", r.signal, (long long)r.status);
  cr_assert_str_eq(r.chunks[0].text, "ready\n", "the grandchild did not start in time");
  const seen_event *to = nth_of(&r, SB_EVENT_TIMEOUT, 0);
  cr_assert_not_null(to, "no TIMEOUT event");
  cr_assert_geq(to->ts_ns, r.chunks[0].ts_ns);
  cr_assert_eq(count_type(&r, SB_EVENT_STOP), 1);
  cr_assert_eq(nth_of(&r, SB_EVENT_STOP, 0)->signal, SIGTERM);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 0, "restarted after a timeout");
  const seen_event *ex = nth_of(&r, SB_EVENT_EXIT, 0);
  cr_assert_not_null(strstr(ex->json, "\"signal\":\"TERM\""), "%s", ex->json);
  wait_unmarked(&h, marker);
  h_fini(&h);
  rec_free(&r);
}

/* ---- the stop signal reaches the whole process group ------------------------
 *
 * The stop signal goes to the run's process group, so a grandchild that
 * handles it ends gracefully too. The SIGKILL to the group after the
 * leader's exit would hide a stop signal sent to the leader alone, so here
 * the leader outlives its grandchild: it handles TERM and waits for the
 * grandchild to end. A grandchild that never got TERM is then ended by the
 * leader's WINCH (sent from the leader's TERM trap, so after the group's
 * TERM: were both pending, the shell runs the lower-numbered TERM first),
 * and says so: a wrong stop fails at once, and leaves nothing running. */

static char group_marker[64];
static pid_t group_leader; /* set while its group may still have members */
static char group_text[4096];
static size_t group_text_len;

/* Runs after the test, passed or failed (a failed assertion ends the test
 * body, not the fini): whatever of the child's tree is left is killed. */
static void group_leftovers(void) {
  if (group_leader > 0)
    kill(-group_leader, SIGKILL);
  if (group_marker[0] != '\0')
    h_kill_marked(group_marker);
}

static void group_output(sb_child *c, int stream, const char *buf, size_t len,
                         uint64_t ts) {
  on_output_rec(c, stream, buf, len, ts);
  bool was_ready = memmem(group_text, group_text_len, "ready\n", 6) != NULL;
  size_t n = len < sizeof group_text - 1 - group_text_len
                 ? len
                 : sizeof group_text - 1 - group_text_len;
  memcpy(group_text + group_text_len, buf, n);
  group_text_len += n;
  group_text[group_text_len] = '\0';
  /* The grandchild's trap is set: stop the child now. */
  if (!was_ready && strstr(group_text, "ready\n") != NULL)
    cr_assert_eq(sb_child_stop(c), 0);
}

Test(child, the_stop_signal_reaches_a_grandchild_before_anything_is_killed,
     .fini = group_leftovers) {
  harness h;
  rec r;
  start(&h, &r);
  snprintf(group_marker, sizeof group_marker, "sb-marker-%d-%ld", (int)getpid(),
           (long)time(NULL));
  char script[1024];
  snprintf(script, sizeof script,
           "trap 'echo leader got TERM; kill -WINCH $! 2>/dev/null' TERM\n"
           "sh -c 'trap \"echo grandchild got TERM; exit 0\" TERM\n"
           "       trap \"echo grandchild got only WINCH; exit 0\" WINCH\n"
           "       echo ready; sleep 300 & wait' %s &\n"
           "while kill -0 $! 2>/dev/null; do wait $!; done\n"
           "exit 0",
           group_marker);
  char *args[] = {"/bin/sh", "-c", script, NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.stdio[1] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  o.on_output = group_output;
  /* The grace outlasts the test: nothing may be killed by it. */
  o.kill_after_ms = 600000;
  sb_child *c = spawn_ok(&h, &o);
  group_leader = sb_child_pid(c);
  cr_assert_gt(group_leader, 0);
  h_wait(&h, &r.done, "the child to end after its stop");
  /* Reaped after a stop: the library killed what was left of the group. */
  group_leader = 0;
  cr_assert_not_null(strstr(group_text, "grandchild got TERM\n"),
                     "the grandchild never got the stop signal; the output: %s",
                     group_text);
  cr_assert_not_null(strstr(group_text, "leader got TERM\n"), "the output: %s",
                     group_text);
  cr_assert_eq(r.signal, 0, "the leader was killed by signal %d", r.signal);
  cr_assert_eq(r.status, 0, "the leader exited %lld", (long long)r.status);
  cr_assert_eq(count_type(&r, SB_EVENT_STOP), 1, "%u STOP events",
               count_type(&r, SB_EVENT_STOP));
  cr_assert_eq(nth_of(&r, SB_EVENT_STOP, 0)->signal, SIGTERM);
  wait_unmarked(&h, group_marker);
  h_fini(&h);
  rec_free(&r);
}

/* ---- restarts ---------------------------------------------------------------- */

static void check_pid_in_backoff(rec *r, sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_BACKOFF)
    cr_assert_eq(sb_child_pid(ev->child), 0, "a pid while waiting to restart");
  if (ev->type == SB_EVENT_SPAWN) {
    /* One ticket, one token, for every run. */
    sb_ticket **t = r->user;
    if (*t == NULL)
      *t = sb_child_ticket(ev->child);
    cr_assert_eq(sb_child_ticket(ev->child), *t, "the ticket changed across restarts");
    cr_assert_gt(sb_child_pid(ev->child), 0);
  }
}

Test(child, on_failure_restarts_exactly_max_restarts_times_then_gives_up) {
  harness h;
  rec r;
  sb_ticket *ticket = NULL;
  start(&h, &r);
  r.hook = check_pid_in_backoff;
  r.user = &ticket;
  char *args[] = {"/bin/sh", "-c", "exit 3", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ON_FAILURE;
  o.max_restarts = 3;
  o.backoff_min_ms = 1;
  o.backoff_max_ms = 4;
  sb_child *c = spawn_ok(&h, &o);
  cr_assert_eq(sb_child_ticket(c), ticket);
  h_wait(&h, &r.done, "the child to give up");
  /* Let anything that would wrongly follow happen. */
  for (int i = 0; i < 5; i++)
    uv_run(&h.loop, UV_RUN_NOWAIT);
  cr_assert_eq(r.exits, 1, "on_exit ran %u times", r.exits);
  cr_assert_eq(r.status, 3);
  cr_assert_eq(r.restarts_at_exit, 3);
  cr_assert_eq(count_type(&r, SB_EVENT_SPAWN), 4);
  cr_assert_eq(count_type(&r, SB_EVENT_EXIT), 4);
  cr_assert_eq(count_type(&r, SB_EVENT_BACKOFF), 3);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 3);
  cr_assert_eq(count_type(&r, SB_EVENT_GIVE_UP), 1);
  cr_assert_eq(r.ev[r.nev - 1].type, SB_EVENT_GIVE_UP, "GIVE_UP is not the last event");
  for (unsigned k = 0; k < 3; k++)
    cr_assert_eq(nth_of(&r, SB_EVENT_RESTART, k)->restarts, k + 1);
  h_fini(&h);
  rec_free(&r);
}

Test(child, on_failure_does_not_restart_a_success) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/sh", "-c", "exit 0", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ON_FAILURE;
  o.backoff_min_ms = 1;
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.status, 0);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 0);
  cr_assert_eq(count_type(&r, SB_EVENT_BACKOFF), 0);
  h_fini(&h);
  rec_free(&r);
}

static void stop_on_third_run(rec *r, sb_server *s, const sb_event *ev) {
  (void)r, (void)s;
  if (ev->type == SB_EVENT_SPAWN && ev->restarts == 2)
    cr_assert_eq(sb_child_stop(ev->child), 0);
}

Test(child, always_restarts_a_success_until_stopped) {
  harness h;
  rec r;
  start(&h, &r);
  r.hook = stop_on_third_run;
  char script[600];
  snprintf(script, sizeof script,
           "n=$(cat '%s' 2>/dev/null || echo 0); n=$((n+1)); echo $n >'%s'; "
           "[ $n -ge 3 ] && exec sleep 300; exit 0",
           h_path(&h, "count"), h_path(&h, "count"));
  char *args[] = {"/bin/sh", "-c", script, NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ALWAYS;
  o.max_restarts = 100;
  o.backoff_min_ms = 1;
  o.backoff_max_ms = 2;
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.signal, SIGTERM, "signal %d status %lld", r.signal, (long long)r.status);
  cr_assert_eq(r.restarts_at_exit, 2);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 2);
  cr_assert_eq(r.exits, 1);
  h_fini(&h);
  rec_free(&r);
}

static void stop_in_backoff(rec *r, sb_server *s, const sb_event *ev) {
  (void)r, (void)s;
  if (ev->type == SB_EVENT_BACKOFF) {
    cr_assert_eq(sb_child_stop(ev->child), 0);
    cr_assert_eq(sb_child_stop(ev->child), 0, "a second stop must do nothing");
  }
}

Test(child, a_stop_while_waiting_to_restart_ends_the_child_at_once) {
  harness h;
  rec r;
  start(&h, &r);
  r.hook = stop_in_backoff;
  char *args[] = {"/bin/sh", "-c", "exit 0", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ALWAYS;
  o.backoff_min_ms = 600000; /* the test would time out if this were waited */
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child");
  cr_assert_eq(r.status, 0);
  cr_assert_eq(r.exits, 1);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 0);
  h_fini(&h);
  rec_free(&r);
}

Test(child, backoff_delays_double_within_the_documented_bounds) {
  harness h;
  rec r;
  start(&h, &r);
  char *args[] = {"/bin/sh", "-c", "exit 1", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ON_FAILURE;
  o.max_restarts = 6;
  o.backoff_min_ms = 8;
  o.backoff_max_ms = 100;
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child to give up");
  cr_assert_eq(count_type(&r, SB_EVENT_BACKOFF), 6);
  uint64_t prev = 0;
  for (unsigned k = 0; k < 6; k++) {
    uint64_t d = 8u << k, got = nth_of(&r, SB_EVENT_BACKOFF, k)->delay_ms;
    d = d > 100 ? 100 : d;
    uint64_t lo = d / 2 < 8 ? 8 : d / 2;
    cr_assert(got >= lo && got <= d, "delay %u: %llu not in [%llu, %llu]", k,
              (unsigned long long)got, (unsigned long long)lo, (unsigned long long)d);
    if (d < 100)
      cr_assert_geq(got, prev, "delay %u shrank", k);
    prev = got;
    cr_assert_not_null(strstr(nth_of(&r, SB_EVENT_BACKOFF, k)->json, "\"delay_ms\":"));
  }
  h_fini(&h);
  rec_free(&r);
}

Test(child, a_run_that_stayed_up_long_enough_resets_the_backoff) {
  harness h;
  rec r;
  start(&h, &r);
  /* Runs 1-3 fail at once, run 4 stays up longer than backoff_reset_ms,
   * the rest fail at once. */
  char script[600];
  snprintf(script, sizeof script,
           "n=$(cat '%s' 2>/dev/null || echo 0); n=$((n+1)); echo $n >'%s'; "
           "[ $n -eq 4 ] && sleep 1; exit 1",
           h_path(&h, "count"), h_path(&h, "count"));
  char *args[] = {"/bin/sh", "-c", script, NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  o.restart = SB_RESTART_ON_FAILURE;
  o.max_restarts = 4;
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 10000;
  o.backoff_reset_ms = 500;
  spawn_ok(&h, &o);
  h_wait(&h, &r.done, "the child to give up");
  uint64_t d[4];
  for (unsigned k = 0; k < 4; k++)
    d[k] = nth_of(&r, SB_EVENT_BACKOFF, k)->delay_ms;
  cr_assert(d[0] == 10 && d[1] >= 10 && d[1] <= 20 && d[2] >= 20 && d[2] <= 40,
            "delays before the long run: %llu %llu %llu", (unsigned long long)d[0],
            (unsigned long long)d[1], (unsigned long long)d[2]);
  cr_assert_eq(d[3], 10, "the delay after the long run is %llu, not reset",
               (unsigned long long)d[3]);
  /* max_restarts counts restarts in a row: the long run began a new count. */
  cr_assert_eq(r.restarts_at_exit, 3 + 4, "restarts %u", r.restarts_at_exit);
  cr_assert_eq(count_type(&r, SB_EVENT_GIVE_UP), 1);
  h_fini(&h);
  rec_free(&r);
}

/* ---- the server closes -------------------------------------------------------- */

static void count_backoff(rec *r, sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_BACKOFF)
    (*(unsigned *)r->user)++;
}

Test(child, closing_the_server_kills_every_child_and_leaves_no_zombie) {
  harness h;
  rec r, rs[3], waiting;
  unsigned backoffs = 0;
  pid_t pids[4];
  start(&h, &r);
  r.hook = count_backoff;
  r.user = &backoffs;
  char *args[] = {"/bin/sh", "-c", "trap '' TERM; sleep 300", NULL};
  for (int i = 0; i < 3; i++) {
    rec_init(&rs[i]);
    sb_spawn_options o = sh_opts(&h, &rs[i], args);
    pids[i] = sb_child_pid(spawn_ok(&h, &o));
    cr_assert_gt(pids[i], 0);
  }
  /* And one waiting to restart. */
  rec_init(&waiting);
  char *fail[] = {"/bin/sh", "-c", "exit 5", NULL};
  sb_spawn_options o = sh_opts(&h, &waiting, fail);
  o.restart = SB_RESTART_ON_FAILURE;
  o.backoff_min_ms = 600000;
  pids[3] = sb_child_pid(spawn_ok(&h, &o));
  h_wait_count(&h, &backoffs, 1, "the failing child to wait for its restart");

  h_fini(&h);
  for (int i = 0; i < 3; i++) {
    cr_assert_eq(rs[i].exits, 1);
    cr_assert_eq(rs[i].signal, SIGKILL, "child %d: signal %d", i, rs[i].signal);
  }
  cr_assert_eq(waiting.exits, 1);
  cr_assert_eq(waiting.status, 5);
  cr_assert_eq(count_type(&r, SB_EVENT_RESTART), 0);
  for (int i = 0; i < 4; i++) {
    int st;
    errno = 0;
    cr_assert_eq(waitpid(pids[i], &st, WNOHANG), -1, "pid %d is still ours",
                 (int)pids[i]);
    cr_assert_eq(errno, ECHILD, "pid %d: %s", (int)pids[i], strerror(errno));
    cr_assert_eq(kill(pids[i], 0), -1, "pid %d still exists", (int)pids[i]);
  }
  rec_free(&r);
}

/* ---- events ---------------------------------------------------------------------- */

static void answer_exit_7(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_exit(c, 7), 0);
}

Test(child, events_are_one_line_json_and_never_hold_the_token) {
  harness h;
  rec r, bad;
  start(&h, &r);
  h.on_connect = answer_exit_7;
  char *args[] = {H_STUB, "plain", "\xff\xfe not utf-8", NULL};
  sb_spawn_options o = sh_opts(&h, &r, args);
  sb_child *c = spawn_ok(&h, &o);
  char token[256] = "";
  for (char *const *e = sb_ticket_env(sb_child_ticket(c)); *e; e++)
    if (strncmp(*e, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) == 0)
      snprintf(token, sizeof token, "%s", *e + sizeof SB_ENV_TOKEN);
  cr_assert_geq(strlen(token), 32, "no token in the child's env");
  h_wait(&h, &r.done, "the stub");
  cr_assert_eq(r.status, 7);

  /* A stub with a token of its own making is rejected. */
  rec_init(&bad);
  char script[512];
  snprintf(script, sizeof script,
           "SOCKETBRIDGE_TOKEN=%064d exec \"$SOCKETBRIDGE_STUB\" forged", 0);
  char *sh[] = {"/bin/sh", "-c", script, NULL};
  o = sh_opts(&h, &bad, sh);
  o.stdio[2] =
      (sb_stdio){.mode = SB_STDIO_NULL}; /* the stub's one line about the reject */
  spawn_ok(&h, &o);
  h_wait(&h, &bad.done, "the forged stub");
  cr_assert_eq(bad.status, 125);

  cr_assert_eq(count_type(&r, SB_EVENT_STUB_CONNECT), 1);
  cr_assert_eq(count_type(&r, SB_EVENT_STUB_EXIT), 1);
  cr_assert_eq(count_type(&r, SB_EVENT_STUB_REJECT), 1);
  const seen_event *se = nth_of(&r, SB_EVENT_STUB_EXIT, 0);
  cr_assert_eq(se->status, 7);
  cr_assert_eq(se->close_reason, SB_CLOSE_EXITED);
  cr_assert_eq(nth_of(&r, SB_EVENT_STUB_REJECT, 0)->reason, SB_REASON_BAD_TOKEN);

  for (unsigned i = 0; i < r.nev; i++) {
    const char *json = r.ev[i].json;
    cr_assert_null(strchr(json, '\n'), "more than one line: %s", json);
    cr_assert_null(strstr(json, token), "the token is in %s", json);
    cJSON *root = cJSON_Parse(json);
    cr_assert_not_null(root, "not JSON: %s", json);
    cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "event");
    cr_assert(cJSON_IsString(name), "%s", json);
    cr_assert_str_eq(name->valuestring, sb_event_type_name(r.ev[i].type));
    cJSON *ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    cr_assert(cJSON_IsNumber(ts) && ts->valuedouble > 1.6e9, "ts in %s", json);
    cr_assert_null(cJSON_GetObjectItemCaseSensitive(root, "env"), "%s", json);
    if (r.ev[i].type == SB_EVENT_STUB_EXIT) {
      cJSON *argv = cJSON_GetObjectItemCaseSensitive(root, "argv");
      cr_assert(cJSON_IsArray(argv) && cJSON_GetArraySize(argv) == 3, "%s", json);
      cr_assert_str_eq(cJSON_GetArrayItem(argv, 1)->valuestring, "plain");
      cJSON *b64 =
          cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(argv, 2), "base64");
      cr_assert(cJSON_IsString(b64), "non-UTF-8 argv in %s", json);
      cJSON *status = cJSON_GetObjectItemCaseSensitive(root, "status");
      cr_assert(cJSON_IsNumber(status) && status->valueint == 7, "%s", json);
      cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "close_reason");
      cr_assert(cJSON_IsString(why) && strcmp(why->valuestring, "exited") == 0, "%s",
                json);
    }
    if (r.ev[i].type == SB_EVENT_STUB_REJECT) {
      cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "reason");
      cr_assert(cJSON_IsString(why) && strcmp(why->valuestring, "bad_token") == 0, "%s",
                json);
    }
    cJSON_Delete(root);
  }
  h_fini(&h);
  rec_free(&r);
}

Test(child, event_type_names) {
  static const char *const names[] = {"spawn",     "exit",          "stop",
                                      "timeout",   "backoff",       "restart",
                                      "give_up",   "stub_connect",  "stub_reject",
                                      "stub_exit", "accept_paused", "accept_resumed"};
  for (int t = SB_EVENT_SPAWN; t <= SB_EVENT_ACCEPT_RESUMED; t++)
    cr_assert_str_eq(sb_event_type_name((sb_event_type)t), names[t - 1]);
  cr_assert_str_eq(sb_event_type_name((sb_event_type)0), "unknown");
  char *out = (char *)1;
  cr_assert_eq(sb_event_to_json(NULL, &out), -EINVAL);
  cr_assert_null(out);
}
