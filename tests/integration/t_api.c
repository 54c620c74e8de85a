/* SPDX-License-Identifier: MIT */
/* The API a newcomer writes: sb_run, a server without a bridge, the
 * default stub path, deadline_ms, the *_set fields where 0 is a value,
 * stub_vars, and shims made by the library. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(api, .timeout = 60);

#define MAX_EV 64

/* What a child did, for the tests here. */
typedef struct seen {
  bool done;
  int64_t status;
  int signal;
  unsigned restarts;
  sb_event_type ev[MAX_EV];
  int64_t ev_pid[MAX_EV];
  int ev_signal[MAX_EV];
  uint64_t ev_ts[MAX_EV];
  unsigned nev;
  char out[4096];
  size_t out_len;
  sb_child *conn_child; /* sb_conn_child of the last call */
  char argv1[256];      /* argv[1] of the last call */
} seen;

static seen *the_seen(harness *h) {
  return h->user;
}

static void on_event(sb_server *s, const sb_event *ev) {
  seen *w = the_seen(sb_server_data(s));
  if (w == NULL || ev->child == NULL || w->nev >= MAX_EV)
    return;
  w->ev[w->nev] = ev->type;
  w->ev_pid[w->nev] = ev->pid;
  w->ev_signal[w->nev] = ev->signal;
  w->ev_ts[w->nev++] = ev->ts_ns;
}

static unsigned count(const seen *w, sb_event_type t) {
  unsigned n = 0;
  for (unsigned i = 0; i < w->nev; i++)
    n += w->ev[i] == t;
  return n;
}

static int nth(const seen *w, sb_event_type t, unsigned k) {
  for (unsigned i = 0; i < w->nev; i++)
    if (w->ev[i] == t && k-- == 0)
      return (int)i;
  return -1;
}

static void on_exit_seen(sb_child *c, int64_t status, int sig) {
  seen *w = sb_child_data(c);
  w->done = true;
  w->status = status;
  w->signal = sig;
  w->restarts = sb_child_restarts(c);
}

static void on_output_seen(sb_child *c, int stream, const char *buf, size_t len,
                           uint64_t ts) {
  seen *w = sb_child_data(c);
  (void)stream, (void)ts;
  cr_assert_lt(w->out_len + len, sizeof w->out, "more output than the test expects");
  memcpy(w->out + w->out_len, buf, len);
  w->out_len += len;
  w->out[w->out_len] = '\0';
  if (memmem(buf, len, "ready", 5) != NULL)
    cr_assert_eq(sb_child_stop(c), 0);
}

static void start(harness *h, seen *w, sb_transport t) {
  memset(w, 0, sizeof *w);
  h_init(h, &(sb_server_options){.transport = t, .on_event = on_event});
  h->user = w;
}

/* sh -c script, stdout captured into w->out (a line "ready" stops it). */
static sb_spawn_options sh(harness *h, seen *w, char **args, const char *script) {
  args[0] = "/bin/sh";
  args[1] = "-c";
  args[2] = (char *)script;
  args[3] = NULL;
  return (sb_spawn_options){
      .file = args[0],
      .args = args,
      .stdio = {{.mode = SB_STDIO_FD, .fd = h->devnull}, {.mode = SB_STDIO_CAPTURE}},
      .on_output = on_output_seen,
      .on_exit = on_exit_seen,
      .data = w};
}

static void spawn_ok(harness *h, const sb_spawn_options *o) {
  sb_child *c;
  int r = sb_spawn(h->server, o, &c);
  cr_assert_eq(r, 0, "sb_spawn: %s", sb_strerror(r));
}

/* Answers every call with "fake <argv[1]>\n", exit 0, and notes it. */
static void answer_fake(harness *h, sb_conn *conn) {
  const sb_call *call = sb_conn_call(conn);
  seen *w = the_seen(h);
  char line[300];
  int n;
  w->conn_child = sb_conn_child(conn);
  snprintf(w->argv1, sizeof w->argv1, "%s", call->argc > 1 ? call->argv[1] : "");
  n = snprintf(line, sizeof line, "fake %s\n", w->argv1);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.out = line, .out_len = (size_t)n}),
               0);
}

ParameterizedTestParameters(api, shims_in_the_spawn_options_make_a_tool_a_stub_call) {
  static sb_transport t[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  return cr_make_param_array(sb_transport, t, 2);
}

/* ---- the default stub path ------------------------------------------------ */

Test(api, the_default_stub_path_is_the_one_a_server_hands_its_children) {
  char buf[PATH_MAX];
  harness h;

  cr_assert_eq(setenv(SB_ENV_STUB, H_STUB, 1), 0);
  cr_assert_eq(sb_default_stub_path(buf, sizeof buf), 0);
  cr_assert_str_eq(buf, H_STUB);
  /* Without the variable: the library's own lookup, the same as a server's. */
  unsetenv(SB_ENV_STUB);
  cr_assert_eq(sb_default_stub_path(buf, sizeof buf), 0);
  cr_assert_eq(buf[0], '/', "not absolute: %s", buf);
  cr_assert_eq(uv_loop_init(&h.loop), 0);
  sb_server *s;
  cr_assert_eq(
      sb_server_new(&h.loop, &(sb_server_options){.transport = SB_TRANSPORT_NONE}, &s),
      0);
  cr_assert_str_eq(buf, sb_server_stub_path(s));
  sb_server_close(s, NULL);
  uv_run(&h.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&h.loop), 0);

  cr_assert_eq(sb_default_stub_path(buf, strlen(buf)), -ENAMETOOLONG,
               "no room for the NUL");
  cr_assert_eq(sb_default_stub_path(NULL, 10), -EINVAL);
}

/* ---- a server without a bridge ------------------------------------------- */

Test(api,
     a_server_without_a_bridge_supervises_with_no_on_connect_and_no_bridge_variable) {
  uv_loop_t loop;
  sb_server *s;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(sb_server_new(&loop, &(sb_server_options){0}, &s), -EINVAL,
               "a bridge still needs on_connect");
  cr_assert_eq(uv_loop_close(&loop), 0);

  harness h;
  seen w;
  char *args[4];
  sb_ticket *t;
  start(&h, &w, SB_TRANSPORT_NONE);
  cr_assert_eq(sb_server_port(h.server), 0);
  cr_assert_null(sb_server_address(h.server));
  cr_assert_eq(sb_ticket_new(h.server, &t), -ENOTSUP);
  /* An inherited bridge is dropped as always: the child learns of none. */
  sb_spawn_options o = sh(&h, &w, args, "env | grep ^SOCKETBRIDGE_ || echo none");
  o.env = (char *[]){SB_ENV_TOKEN "=0123", SB_ENV_PORT "=1", NULL};
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_str_eq(w.out, "none\n");
  cr_assert_eq(w.status, 0);
  cr_assert_eq(count(&w, SB_EVENT_SPAWN), 1);
  cr_assert_eq(count(&w, SB_EVENT_EXIT), 1);
  h_fini(&h);
}

/* ---- where 0 is a value: *_set ------------------------------------------- */

Test(api, kill_after_set_to_0_kills_right_after_the_stop_signal) {
  harness h;
  seen w;
  char *args[4];
  start(&h, &w, SB_TRANSPORT_TCP);
  sb_spawn_options o =
      sh(&h, &w, args, "trap '' TERM; echo ready; while :; do sleep 1; done");
  o.kill_after_set = true; /* kill_after_ms 0: without _set, 5000 */
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_eq(w.signal, SIGKILL, "signal %d status %lld", w.signal, (long long)w.status);
  int term = nth(&w, SB_EVENT_STOP, 0), kill = nth(&w, SB_EVENT_STOP, 1);
  cr_assert(term >= 0 && kill >= 0, "two STOP events");
  cr_assert_eq(w.ev_signal[term], SIGTERM);
  cr_assert_eq(w.ev_signal[kill], SIGKILL);
  /* The default grace is 5 s; this one is a loop iteration. A generous
   * bound, not a measurement. */
  uint64_t gap_ms = (w.ev_ts[kill] - w.ev_ts[term]) / 1000000u;
  cr_assert_lt(gap_ms, 4000, "SIGKILL came %llu ms after SIGTERM",
               (unsigned long long)gap_ms);
  h_fini(&h);
}

Test(api, max_restarts_set_to_0_never_restarts) {
  harness h;
  seen w;
  char *args[4];
  start(&h, &w, SB_TRANSPORT_TCP);
  sb_spawn_options o = sh(&h, &w, args, "exit 3");
  o.restart = SB_RESTART_ALWAYS;
  o.backoff_min_ms = 1;
  o.max_restarts_set = true; /* max_restarts 0: without _set, 5 */
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_eq(w.status, 3);
  cr_assert_eq(w.restarts, 0);
  cr_assert_eq(count(&w, SB_EVENT_RESTART), 0);
  cr_assert_eq(count(&w, SB_EVENT_GIVE_UP), 1);
  h_fini(&h);
}

/* ---- deadline_ms: the whole life ------------------------------------------ */

Test(api, deadline_ms_ends_a_child_waiting_to_restart) {
  harness h;
  seen w;
  char *args[4];
  start(&h, &w, SB_TRANSPORT_TCP);
  sb_spawn_options o = sh(&h, &w, args, "exit 1");
  o.restart = SB_RESTART_ALWAYS;
  o.backoff_min_ms = 600000; /* the deadline passes in the first backoff */
  o.deadline_ms = 300;
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_eq(w.status, 1, "the last run's end");
  cr_assert_eq(count(&w, SB_EVENT_BACKOFF), 1);
  int to = nth(&w, SB_EVENT_TIMEOUT, 0);
  cr_assert(to > nth(&w, SB_EVENT_BACKOFF, 0), "TIMEOUT after BACKOFF");
  cr_assert_eq(w.ev_pid[to], 0, "no run was alive");
  cr_assert_eq(count(&w, SB_EVENT_RESTART), 0);
  cr_assert_eq(count(&w, SB_EVENT_STOP), 0);
  h_fini(&h);
}

Test(api, deadline_ms_counts_from_the_spawn_and_stops_a_restarted_run) {
  harness h;
  seen w;
  char *args[4], script[1024];
  start(&h, &w, SB_TRANSPORT_TCP);
  /* The first run fails at once; the second runs until stopped. A
   * per-run timeout_ms would restart it; deadline_ms does not. */
  snprintf(script, sizeof script,
           "if [ -e '%s/ran' ]; then exec sleep 300; fi; : > '%s/ran'; exit 1", h.dir,
           h.dir);
  sb_spawn_options o = sh(&h, &w, args, script);
  o.restart = SB_RESTART_ALWAYS;
  o.backoff_min_ms = 1;
  o.deadline_ms = 1000;
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_eq(w.signal, SIGTERM, "signal %d status %lld", w.signal, (long long)w.status);
  cr_assert_eq(w.restarts, 1);
  cr_assert_eq(count(&w, SB_EVENT_TIMEOUT), 1);
  int to = nth(&w, SB_EVENT_TIMEOUT, 0);
  cr_assert_eq(w.ev_pid[to], w.ev_pid[nth(&w, SB_EVENT_SPAWN, 1)], "the second run's");
  cr_assert_eq(count(&w, SB_EVENT_SPAWN), 2, "no restart after the deadline");
  h_fini(&h);
}

/* ---- stub_vars and shims ------------------------------------------------ */

ParameterizedTestParameters(api, stub_vars_point_a_tool_at_the_stub) {
  static sb_transport t[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  return cr_make_param_array(sb_transport, t, 2);
}

ParameterizedTest(sb_transport *t, api, stub_vars_point_a_tool_at_the_stub) {
  harness h;
  seen w;
  char *args[4];
  start(&h, &w, *t);
  h.on_connect = answer_fake;
  sb_spawn_options o = sh(&h, &w, args, "\"$GIT_EDITOR\" msg && \"$SSH_ASKPASS\" pw");
  o.stub_vars = (char *[]){"GIT_EDITOR", "SSH_ASKPASS", NULL};
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_str_eq(w.out, "fake msg\nfake pw\n");
  cr_assert_eq(w.status, 0);
  h_fini(&h);
}

ParameterizedTest(sb_transport *t, api,
                  shims_in_the_spawn_options_make_a_tool_a_stub_call) {
  harness h;
  seen w;
  char *args[4];
  start(&h, &w, *t);
  h.on_connect = answer_fake;
  /* The shim directory is first on PATH, holds the bridge file (0600),
   * and is listed in SOCKETBRIDGE_SHIMS. */
  sb_spawn_options o =
      sh(&h, &w, args,
         "git --version && d=${PATH%%:*} && stat -c %a \"$d/.socketbridge-bridge\" && "
         "test \"${SOCKETBRIDGE_SHIMS%%:*}\" = \"$d\" && echo \"$d\"");
  o.shims = (char *[]){"git", NULL};
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_eq(w.status, 0, "out: %s", w.out);
  cr_assert_str_eq(w.argv1, "--version");
  cr_assert_not_null(w.conn_child, "the call came from the child's tree, by its ticket");
  char dir[PATH_MAX];
  cr_assert_eq(sscanf(w.out, "fake --version\n600\n%4095s", dir), 1, "out: %s", w.out);
  h_fini(&h);
  struct stat st;
  cr_assert_neq(lstat(dir, &st), 0, "%s is left after the child", dir);
}

Test(api, shims_are_refused_where_they_cannot_work) {
  harness h;
  seen w;
  char *args[4];
  sb_child *c;
  start(&h, &w, SB_TRANSPORT_TCP);
  sb_spawn_options o = sh(&h, &w, args, "true");
  o.shims = (char *[]){"a/b", NULL};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "a name with a slash");
  o.shims = (char *[]){"git", NULL};
  o.shim_dir = h.dir;
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "shims and shim_dir");
  o.shims = NULL;
  o.shim_dir = "relative";
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "a relative shim_dir");
  o.shim_dir = NULL;
  o.stub_vars = (char *[]){"A=B", NULL};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "a stub_vars name with '='");
  h_fini(&h);

  start(&h, &w, SB_TRANSPORT_NONE);
  o = sh(&h, &w, args, "true");
  o.shims = (char *[]){"git", NULL};
  cr_assert_eq(sb_spawn(h.server, &o, &c), -EINVAL, "shims need a bridge");
  h_fini(&h);
}

Test(api, a_shim_dir_the_caller_keeps_names_its_ticket_and_is_put_on_path) {
  harness h;
  seen w;
  char *args[4], *path, line[600];
  sb_ticket *t;
  sb_diag d;
  start(&h, &w, SB_TRANSPORT_UNIX);
  h.on_connect = answer_fake;
  cr_assert_eq(sb_ticket_new(h.server, &t), 0);
  char *names[] = {"cc", "ld", NULL};
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", h_path(&h, "shims"));
  int r = sb_shim_dir_make(dir, names, H_STUB, t, &path, &d);
  cr_assert_eq(r, 0, "%s", d.msg);
  cr_assert_eq(path[0], '/');
  /* Again: the links are kept, the bridge file replaced. */
  cr_assert_eq(sb_shim_dir_make(dir, names, H_STUB, t, NULL, &d), 0, "%s", d.msg);
  snprintf(line, sizeof line, "shims/%s", SB_SHIM_BRIDGE_FILE);
  char *bridge = h_read(&h, line, NULL);
  char want[1024] = "";
  for (char *const *e = sb_ticket_env(t); *e != NULL; e++) {
    strcat(want, *e);
    strcat(want, "\n");
  }
  cr_assert_str_eq(bridge, want);
  free(bridge);

  sb_spawn_options o = sh(&h, &w, args, "cc -c a.c");
  o.shim_dir = path;
  spawn_ok(&h, &o);
  h_wait(&h, &w.done, "the child");
  cr_assert_str_eq(w.out, "fake -c\n");
  cr_assert_null(w.conn_child, "the call came by the directory's own ticket");

  /* Something else where a shim goes. */
  int fd = h_create(&h, "shims/as");
  close(fd);
  r = sb_shim_dir_make(dir, (char *[]){"as", NULL}, H_STUB, NULL, NULL, &d);
  cr_assert_eq(r, -EEXIST, "%s: %s", sb_strerror(r), d.msg);
  cr_assert_not_null(strstr(d.msg, "is not a link to"), "%s", d.msg);
  unlink(h_path(&h, "shims/as"));

  sb_shim_dir_remove(path, NULL); /* the bridge file only */
  struct stat st;
  cr_assert_eq(lstat(h_path(&h, "shims/cc"), &st), 0);
  cr_assert_neq(lstat(h_path(&h, line), &st), 0, "the bridge file is left");
  sb_shim_dir_remove(path, names);
  cr_assert_neq(lstat(path, &st), 0, "the directory is left");
  free(path);
  h_fini(&h);
}

/* ---- sb_run ---------------------------------------------------------------- */

Test(api, sb_run_captures_both_streams_and_the_exit_status) {
  sb_run_result res;
  char *argv[] = {"sh", "-c", "echo out; echo err >&2; exit 7", NULL};
  int r = sb_run(argv, &(sb_run_options){.capture = true}, &res);
  cr_assert_eq(r, 0, "sb_run: %s", sb_strerror(r));
  cr_assert_eq(res.status, 7);
  cr_assert_eq(res.signal, 0);
  cr_assert_not(res.timed_out);
  cr_assert_str_eq(res.out, "out\n");
  cr_assert_str_eq(res.err, "err\n");
  cr_assert_eq(res.out_len, 4);
  sb_run_result_free(&res);
  cr_assert_null(res.out);

  char *killed[] = {"sh", "-c", "kill -TERM $$", NULL};
  cr_assert_eq(sb_run(killed, NULL, &res), 0);
  cr_assert_eq(res.signal, SIGTERM);
  cr_assert_null(res.out, "nothing captured without capture");
  sb_run_result_free(&res);
}

Test(api, sb_run_stops_a_command_at_its_timeout) {
  sb_run_result res;
  char *argv[] = {"sh", "-c", "echo started; exec sleep 300", NULL};
  int r = sb_run(argv, &(sb_run_options){.capture = true, .spawn.timeout_ms = 300}, &res);
  cr_assert_eq(r, 0, "sb_run: %s", sb_strerror(r));
  cr_assert(res.timed_out);
  cr_assert_eq(res.signal, SIGTERM);
  cr_assert_str_eq(res.out, "started\n");
  sb_run_result_free(&res);

  /* One that ignores TERM, with no grace: killed at once. */
  char *stubborn[] = {"sh", "-c", "trap '' TERM; echo started; while :; do sleep 1; done",
                      NULL};
  r = sb_run(stubborn,
             &(sb_run_options){.capture = true,
                               .spawn = {.deadline_ms = 300, .kill_after_set = true}},
             &res);
  cr_assert_eq(r, 0);
  cr_assert(res.timed_out);
  cr_assert_eq(res.signal, SIGKILL);
  sb_run_result_free(&res);
}

Test(api, sb_run_keeps_max_output_bytes_and_says_it_dropped_the_rest) {
  sb_run_result res;
  char *argv[] = {"sh", "-c", "head -c 300000 /dev/zero; echo e >&2", NULL};
  int r = sb_run(argv, &(sb_run_options){.capture = true, .max_output = 1000}, &res);
  cr_assert_eq(r, 0, "sb_run: %s", sb_strerror(r));
  cr_assert_eq(res.status, 0, "the child read to its end: no EPIPE");
  cr_assert_eq(res.out_len, 1000);
  cr_assert(res.out_truncated);
  cr_assert_str_eq(res.err, "e\n");
  cr_assert_not(res.err_truncated);
  sb_run_result_free(&res);
}

Test(api, sb_run_feeds_stdin_and_counts_restarts) {
  sb_run_result res;
  char *argv[] = {"sh", "-c", "cat; exit 1", NULL};
  int r =
      sb_run(argv,
             &(sb_run_options){
                 .capture = true,
                 .spawn = {.stdio = {{.mode = SB_STDIO_BUFFER, .data = "in\n", .len = 3}},
                           .restart = SB_RESTART_ON_FAILURE,
                           .max_restarts = 2,
                           .backoff_min_ms = 1}},
             &res);
  cr_assert_eq(r, 0, "sb_run: %s", sb_strerror(r));
  cr_assert_str_eq(res.out, "in\nin\nin\n", "each run reads the bytes again");
  cr_assert_eq(res.restarts, 2);
  cr_assert_eq(res.status, 1);
  sb_run_result_free(&res);
}

Test(api, sb_run_reports_a_command_that_cannot_run) {
  sb_run_result res;
  char *argv[] = {"no-such-command-sb-test", NULL};
  cr_assert_eq(sb_run(argv, &(sb_run_options){.capture = true}, &res), -ENOENT);
  cr_assert_null(res.out);
  cr_assert_null(res.err);
  sb_run_result_free(&res);
  cr_assert_eq(sb_run((char *[]){NULL}, NULL, &res), -EINVAL);
}

static unsigned run_calls;

static void run_answer(sb_server *s, sb_conn *conn) {
  const sb_call *call = sb_conn_call(conn);
  cr_assert_eq(sb_server_data(s), &run_calls, "server.data is the caller's");
  run_calls++;
  const char *a = call->argc > 1 ? call->argv[1] : "";
  sb_conn_write_copy(conn, 1, "answer to ", 10);
  sb_conn_write_copy(conn, 1, a, strlen(a));
  sb_conn_write_copy(conn, 1, "\n", 1);
  sb_conn_exit(conn, 0);
}

ParameterizedTestParameters(api, sb_run_with_on_connect_answers_the_stub_calls) {
  static sb_transport t[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  return cr_make_param_array(sb_transport, t, 2);
}

ParameterizedTest(sb_transport *t, api, sb_run_with_on_connect_answers_the_stub_calls) {
  sb_run_result res;
  char *argv[] = {"sh", "-c", "git push && \"$SSH_ASKPASS\" 'Password: '", NULL};
  int r =
      sb_run(argv,
             &(sb_run_options){.capture = true,
                               .server = {.transport = *t,
                                          .stub_path = H_STUB,
                                          .on_connect = run_answer,
                                          .data = &run_calls},
                               .spawn = {.shims = (char *[]){"git", NULL},
                                         .stub_vars = (char *[]){"SSH_ASKPASS", NULL}}},
             &res);
  cr_assert_eq(r, 0, "sb_run: %s", sb_strerror(r));
  cr_assert_str_eq(res.out, "answer to push\nanswer to Password: \n", "err: %s", res.err);
  cr_assert_eq(res.status, 0);
  cr_assert_eq(run_calls, 2);
  sb_run_result_free(&res);
}
