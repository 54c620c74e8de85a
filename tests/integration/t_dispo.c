/* SPDX-License-Identifier: MIT */
/* Dispositions: one call answers a stub whole (respond, delegate, exec,
 * run), through the library, with the real stub. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(dispo, .timeout = 90);

/* What a test tells its on_connect to do, and what the callbacks saw. */
typedef struct plan {
  int (*act)(struct plan *p, sb_conn *conn);
  sb_response resp;
  char *const *argv;
  char *const *set;
  const char *cwd;
  bool tee;
  int r; /* what the disposition call returned */
  /* Seen by the callbacks. */
  char out[2][4096];
  size_t out_len[2];
  bool out_end[2];
  bool prog_exited;
  int64_t prog_code;
  int prog_signal;
  int override; /* >= 0: on_program_exit answers this code instead */
  char stdin_seen[256];
  size_t stdin_len;
  bool stdin_eof;
  bool closed;
  sb_close_reason why;
  int told_code, told_signal;
  bool told;
} plan;

static void on_output(sb_conn *conn, int stream, const char *buf, size_t len) {
  plan *p = sb_conn_data(conn);
  size_t room = sizeof p->out[0] - p->out_len[stream - 1];
  cr_assert(stream == 1 || stream == 2);
  if (len == 0)
    p->out_end[stream - 1] = true;
  if (len > room)
    len = room;
  memcpy(p->out[stream - 1] + p->out_len[stream - 1], buf, len);
  p->out_len[stream - 1] += len;
}

static void on_exit_prog(sb_conn *conn, int64_t code, int signum) {
  plan *p = sb_conn_data(conn);
  p->prog_exited = true;
  p->prog_code = code;
  p->prog_signal = signum;
  if (p->override >= 0)
    cr_assert_eq(sb_conn_exit(conn, p->override), 0);
}

static void on_stdin(sb_conn *conn, const char *buf, size_t len) {
  plan *p = sb_conn_data(conn);
  size_t room = sizeof p->stdin_seen - p->stdin_len;
  if (len == 0) {
    p->stdin_eof = true;
    return;
  }
  memcpy(p->stdin_seen + p->stdin_len, buf, len < room ? len : room);
  p->stdin_len += len < room ? len : room;
}

static void on_close(sb_conn *conn, sb_close_reason why, int err) {
  plan *p = sb_conn_data(conn);
  (void)err;
  p->told = sb_conn_told(conn, &p->told_code, &p->told_signal);
  p->why = why;
  p->closed = true;
}

static void connect_with_plan(harness *h, sb_conn *conn) {
  plan *p = h->user;
  sb_conn_set_callbacks(conn,
                        &(sb_conn_callbacks){.on_stdin = on_stdin,
                                             .on_close = on_close,
                                             .on_program_output = on_output,
                                             .on_program_exit = on_exit_prog},
                        p);
  p->r = p->act(p, conn);
}

static sb_program program_of(const plan *p) {
  return (sb_program){.argv = p->argv, .set = p->set, .cwd = p->cwd, .tee = p->tee};
}

static int act_respond(plan *p, sb_conn *conn) {
  return sb_conn_respond(conn, &p->resp);
}

static int act_delegate(plan *p, sb_conn *conn) {
  sb_program prog = program_of(p);
  return sb_conn_delegate(conn, &prog);
}

static int act_exec(plan *p, sb_conn *conn) {
  sb_program prog = program_of(p);
  return sb_conn_exec(conn, &prog);
}

static int act_run(plan *p, sb_conn *conn) {
  sb_program prog = program_of(p);
  return sb_conn_run(conn, &prog);
}

/* Asserts a file of the temp dir holds exactly want. */
static void assert_file(harness *h, const char *name, const char *want) {
  char *got = h_read(h, name, NULL);
  cr_assert_str_eq(got, want, "%s", name);
  free(got);
}

/* sh -c script in the test's temp dir, where h_read looks. */
static void sh_here(harness *h, const char *script, h_exit *ex) {
  char *args[] = {"/bin/sh", "-c", (char *)script, NULL};
  h_spawn(h, &(h_spawn_opts){.args = args, .cwd = h->dir}, ex);
}

/* Runs script under sh with a fresh harness whose stubs get plan p; waits
 * for the child and for the connection's close. */
static void run_script(harness *h, plan *p, const char *script, h_exit *ex) {
  h->on_connect = connect_with_plan;
  h->user = p;
  sh_here(h, script, ex);
  h_wait_exit(h, ex);
  h_wait(h, &p->closed, "the stub's connection to close");
}

/* ---- respond ------------------------------------------------------------- */

Test(dispo, respond_writes_stdout_stderr_and_exits) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_respond, .override = -1};
  p.resp = (sb_response){
      .out = "out\n", .out_len = 4, .err = "err\n", .err_len = 4, .code = 3};
  h_init(&h, NULL);
  run_script(&h, &p, "\"$SOCKETBRIDGE_STUB\" >o 2>e; echo $? >code", &ex);
  cr_assert_eq(p.r, 0);
  assert_file(&h, "o", "out\n");
  assert_file(&h, "e", "err\n");
  assert_file(&h, "code", "3\n");
  cr_assert_eq(p.why, SB_CLOSE_EXITED);
  cr_assert(p.told && p.told_code == 3 && p.told_signal == 0);
  h_fini(&h);
}

/* Runs CMD and writes its status to "code". A shell reports a command that
 * a signal killed ("Terminated") on its own stderr: inside the braces that
 * report goes to a file, not to the suite's log. */
#define SIGNALLED(cmd) "{ " cmd "; echo $? >code; } 2>sh.err"

Test(dispo, respond_by_signal_kills_the_stub) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_respond, .override = -1};
  p.resp = (sb_response){.signum = SIGUSR1};
  h_init(&h, NULL);
  run_script(&h, &p, SIGNALLED("\"$SOCKETBRIDGE_STUB\""), &ex);
  cr_assert_eq(p.r, 0);
  assert_file(&h, "code", "138\n"); /* 128 + SIGUSR1 (10) */
  cr_assert(p.told && p.told_signal == SIGUSR1);
  h_fini(&h);
}

/* A delayed answer: stdin keeps flowing meanwhile, and the caller may still
 * end the call otherwise (here, at the end of stdin: no timing involved). */
static void exit_at_stdin_end(sb_conn *conn, const char *buf, size_t len) {
  plan *p = sb_conn_data(conn);
  on_stdin(conn, buf, len);
  if (len == 0)
    cr_assert_eq(sb_conn_exit(conn, 5), 0);
  (void)p;
}

static void connect_delay(harness *h, sb_conn *conn) {
  plan *p = h->user;
  sb_conn_set_callbacks(
      conn, &(sb_conn_callbacks){.on_stdin = exit_at_stdin_end, .on_close = on_close}, p);
  p->r = sb_conn_respond(conn, &p->resp);
}

Test(dispo, respond_delay_lets_stdin_flow_and_can_be_overridden) {
  harness h;
  h_exit ex = {0};
  plan p = {.override = -1};
  p.resp = (sb_response){.out = "late", .out_len = 4, .delay_ms = 600000};
  h_init(&h, NULL);
  h.on_connect = connect_delay;
  h.user = &p;
  sh_here(&h, "printf hello | \"$SOCKETBRIDGE_STUB\" >o; echo $? >code", &ex);
  h_wait_exit(&h, &ex);
  h_wait(&h, &p.closed, "close");
  cr_assert_eq(p.r, 0);
  cr_assert_eq(p.stdin_len, 5);
  cr_assert_eq(memcmp(p.stdin_seen, "hello", 5), 0);
  assert_file(&h, "code", "5\n");
  assert_file(&h, "o", "");
  h_fini(&h);
}

static void connect_check_args(harness *h, sb_conn *conn) {
  plan *p = h->user;
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = on_close}, p);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.code = 256}), -EINVAL);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.signum = 999}), -EINVAL);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.out_len = 3}), -EINVAL);
  cr_assert_eq(sb_conn_respond(NULL, &(sb_response){0}), -EINVAL);
  cr_assert_eq(sb_conn_exec(conn, &(sb_program){0}), -EINVAL);
  cr_assert_eq(sb_conn_run(conn, &(sb_program){.argv = (char *[]){"", NULL}}), -EINVAL);
  cr_assert_eq(sb_conn_delegate(conn, &(sb_program){.argv = (char *[]){"sh", NULL},
                                                    .set = (char *[]){"NOEQUALS", NULL}}),
               -EINVAL);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.code = 4}), 0);
  cr_assert_eq(sb_conn_respond(conn, &(sb_response){.code = 5}), -EALREADY);
  cr_assert_eq(sb_conn_exec(conn, &(sb_program){.argv = (char *[]){"sh", NULL}}),
               -EALREADY);
  p->r = 0;
}

Test(dispo, bad_arguments_and_a_second_disposition_are_refused) {
  harness h;
  h_exit ex = {0};
  plan p = {.override = -1};
  h_init(&h, NULL);
  h.on_connect = connect_check_args;
  h.user = &p;
  sh_here(&h, "\"$SOCKETBRIDGE_STUB\"; echo $? >code", &ex);
  h_wait_exit(&h, &ex);
  h_wait(&h, &p.closed, "close");
  assert_file(&h, "code", "4\n");
  h_fini(&h);
}

/* ---- delegate ---------------------------------------------------------------- */

Test(dispo, delegate_splices_both_ways_and_exits_as_the_program) {
  harness h;
  h_exit ex = {0};
  char script[512], want[64];
  plan p = {.act = act_delegate, .override = -1};
  /* The program echoes its stdin through sum to stdout, says something on
   * stderr, and exits 9. */
  char *argv[] = {"sh", "-c",  "echo \"$1 $FOO\" >&2; " HELPER_SUM "; exit 9",
                  "sh", "arg", NULL};
  char *set[] = {"FOO=bar", NULL};
  p.argv = argv;
  p.set = set;
  h_init(&h, NULL);
  snprintf(script, sizeof script,
           HELPER_GEN " 8388608 17 | \"$SOCKETBRIDGE_STUB\" >o 2>e; echo $? >code");
  run_script(&h, &p, script, &ex);
  cr_assert_eq(p.r, 0);
  h_source_expect(8388608, 17, want);
  assert_file(&h, "o", want);
  assert_file(&h, "e", "arg bar\n");
  assert_file(&h, "code", "9\n");
  cr_assert(p.prog_exited && p.prog_code == 9);
  cr_assert_eq(p.out_len[1], 8, "stderr tapped: %zu bytes", p.out_len[1]);
  h_fini(&h);
}

Test(dispo, delegate_streams_a_large_output_with_backpressure) {
  harness h;
  h_exit ex = {0};
  char want[64];
  plan p = {.act = act_delegate, .override = -1};
  char *argv[] = {HELPER_GEN, "67108864", "5", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, "\"$SOCKETBRIDGE_STUB\" </dev/null | " HELPER_SUM " >o", &ex);
  h_source_expect(67108864, 5, want);
  assert_file(&h, "o", want);
  cr_assert_eq(ex.status, 0);
  h_fini(&h);
}

Test(dispo, delegate_death_by_signal_is_the_stubs) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_delegate, .override = -1};
  char *argv[] = {"sh", "-c", "kill -TERM $$", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, SIGNALLED("\"$SOCKETBRIDGE_STUB\" </dev/null"), &ex);
  assert_file(&h, "code", "143\n");
  cr_assert(p.prog_exited && p.prog_signal == SIGTERM);
  h_fini(&h);
}

static void connect_delegate_missing(harness *h, sb_conn *conn) {
  plan *p = h->user;
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = on_close}, p);
  p->r = sb_conn_delegate(conn,
                          &(sb_program){.argv = (char *[]){"no-such-program-xq", NULL}});
  /* Untouched: the caller answers otherwise. */
  cr_assert_eq(sb_conn_exit(conn, 42), 0);
}

Test(dispo, delegate_of_a_missing_program_leaves_the_call_to_the_caller) {
  harness h;
  h_exit ex = {0};
  plan p = {.override = -1};
  h_init(&h, NULL);
  h.on_connect = connect_delegate_missing;
  h.user = &p;
  sh_here(&h, "\"$SOCKETBRIDGE_STUB\"; echo $? >code", &ex);
  h_wait_exit(&h, &ex);
  h_wait(&h, &p.closed, "close");
  cr_assert_eq(p.r, -ENOENT);
  assert_file(&h, "code", "42\n");
  h_fini(&h);
}

static bool marked_gone(harness *h, const void *marker) {
  (void)h;
  return h_count_marked(marker) == 0;
}

Test(dispo, delegate_program_is_stopped_when_the_stub_dies) {
  harness h;
  h_exit ex = {0};
  char marker[64];
  plan p = {.act = act_delegate, .override = -1};
  snprintf(marker, sizeof marker, "dispo-marker-%d", getpid());
  /* The program says it is up, then waits for ever; its command line holds
   * the marker, so a survivor can be found. */
  char *argv[] = {"sh", "-c", "echo up >up; while :; do sleep 1; done", marker, NULL};
  p.argv = argv;
  h_init(&h, NULL);
  p.cwd = h.dir;
  h.on_connect = connect_with_plan;
  h.user = &p;
  sh_here(&h, "\"$SOCKETBRIDGE_STUB\" </dev/null & echo $! >pid; wait", &ex);
  h_wait_file(&h, "up");
  h_wait_file(&h, "pid");
  char *pid = h_read(&h, "pid", NULL);
  cr_assert_eq(kill((pid_t)atol(pid), SIGKILL), 0);
  free(pid);
  h_wait(&h, &p.closed, "the connection to close");
  cr_assert_eq(p.why, SB_CLOSE_PEER_LOST);
  h_poll_until(&h, marked_gone, marker, "the delegated program to be stopped");
  h_wait_exit(&h, &ex);
  h_fini(&h);
}

/* ---- exec ----------------------------------------------------------------------- */

Test(dispo, exec_replaces_the_stub_with_argv_env_cwd_and_whole_stdin) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_exec, .override = -1};
  char *argv[] = {"sh", "-c", "echo \"$0 $1 $FOO\"; pwd; cat", "zero", "one", NULL};
  char *set[] = {"FOO=bar", NULL};
  p.argv = argv;
  p.set = set;
  h_init(&h, NULL);
  p.cwd = h.dir;
  run_script(&h, &p,
             "cd / && printf 'all of stdin' | \"$SOCKETBRIDGE_STUB\" >\"$OLDPWD/o\"; "
             "echo $? >\"$OLDPWD/code\"",
             &ex);
  cr_assert_eq(p.r, 0);
  char want[512];
  snprintf(want, sizeof want, "zero one bar\n%s\nall of stdin", h.dir);
  assert_file(&h, "o", want);
  assert_file(&h, "code", "0\n");
  cr_assert_eq(p.why, SB_CLOSE_EXEC);
  cr_assert_eq(p.stdin_len, 0, "stdin must go to the program, not up");
  cr_assert(!p.told);
  h_fini(&h);
}

Test(dispo, exec_of_a_missing_program_exits_127_and_says_so) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_exec, .override = -1};
  char *argv[] = {"no-such-program-xq", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, "\"$SOCKETBRIDGE_STUB\" 2>e; echo $? >code", &ex);
  assert_file(&h, "code", "127\n");
  char *err = h_read(&h, "e", NULL);
  cr_assert(strstr(err, "no-such-program-xq") != NULL, "stderr: %s", err);
  free(err);
  cr_assert(p.prog_exited && p.prog_code == 127);
  cr_assert(p.told && p.told_code == 127);
  cr_assert_eq(p.why, SB_CLOSE_EXITED);
  h_fini(&h);
}

/* ---- run -------------------------------------------------------------------------- */

static void run_case(bool tee) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_run, .override = -1, .tee = tee};
  char *argv[] = {"sh", "-c", "printf out; printf err >&2; cat; exit 4", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, "printf IN | \"$SOCKETBRIDGE_STUB\" >o 2>e; echo $? >code", &ex);
  cr_assert_eq(p.r, 0);
  cr_assert_eq(p.out_len[0], 5);
  cr_assert_eq(memcmp(p.out[0], "outIN", 5), 0);
  cr_assert_eq(p.out_len[1], 3);
  cr_assert(p.out_end[0] && p.out_end[1]);
  cr_assert(p.prog_exited && p.prog_code == 4);
  assert_file(&h, "code", "4\n");
  assert_file(&h, "o", tee ? "outIN" : "");
  assert_file(&h, "e", tee ? "err" : "");
  cr_assert_eq(p.stdin_len, 0);
  h_fini(&h);
}

Test(dispo, run_relays_output_up_and_exits_as_the_program) {
  run_case(false);
}

Test(dispo, run_with_tee_also_writes_locally) {
  run_case(true);
}

Test(dispo, run_exit_can_be_overridden_by_the_caller) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_run, .override = 0};
  char *argv[] = {"sh", "-c", "exit 3", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, SIGNALLED("\"$SOCKETBRIDGE_STUB\""), &ex);
  cr_assert(p.prog_exited && p.prog_code == 3);
  assert_file(&h, "code", "0\n");
  h_fini(&h);
}

Test(dispo, run_death_by_signal_is_the_stubs) {
  harness h;
  h_exit ex = {0};
  plan p = {.act = act_run, .override = -1};
  char *argv[] = {"sh", "-c", "kill -USR2 $$", NULL};
  p.argv = argv;
  h_init(&h, NULL);
  run_script(&h, &p, SIGNALLED("\"$SOCKETBRIDGE_STUB\""), &ex);
  cr_assert(p.prog_exited && p.prog_signal == SIGUSR2);
  assert_file(&h, "code", "140\n"); /* 128 + SIGUSR2 (12) */
  h_fini(&h);
}
