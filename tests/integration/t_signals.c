/* SPDX-License-Identifier: MIT */
/* Signals and broken pipes: the stub reports, the supervisor decides. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

TestSuite(signals, .timeout = 60);

typedef struct report {
  int stream, err, errors;
  int signum, signals;
} report;

static void on_stream_error(sb_conn *c, int stream, int err) {
  report *r = sb_conn_data(c);
  r->stream = stream;
  r->err = err;
  if (r->errors++ == 0) {
    /* Still alive and still served: a second write is dropped quietly. */
    cr_assert_eq(sb_conn_write_copy(c, 1, "again", 5), 0);
    cr_assert_eq(sb_conn_exit(c, 7), 0);
  }
}

static void write_into_a_closed_pipe(harness *h, sb_conn *c) {
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_stream_error = on_stream_error},
                        h->user);
  cr_assert_eq(sb_conn_write_copy(c, 1, "nobody reads this\n", 18), 0);
}

Test(signals, a_closed_stdout_is_reported_as_epipe_and_does_not_kill_the_stub) {
  harness h;
  report r = {0};
  h_init(&h, NULL);
  h.on_connect = write_into_a_closed_pipe;
  h.user = &r;
  char *args[] = {HELPER_CLOSED_STDOUT, H_STUB, NULL};
  h_exit ex;
  h_spawn(&h, &(h_spawn_opts){.args = args}, &ex);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.signal, 0, "the stub died by signal %d", ex.signal);
  cr_assert_eq(ex.status, 7, "status %lld", (long long)ex.status);
  cr_assert_eq(r.errors, 1, "%d stream errors reported", r.errors);
  cr_assert_eq(r.stream, 1);
  cr_assert_eq(r.err, -EPIPE, "err %s", sb_err_name(r.err));
  h_fini(&h);
}

/* The stub's start finds fds 0-2 with one ioctl each (a terminal, or EBADF
 * for a closed fd): a closed stdout gets a placeholder, so no fd of the
 * stub's lands on 1, and its writes are reported as EBADF, as the parent
 * set them up; an O_PATH stdin is open, though it refuses every ioctl with
 * EBADF too, and must not be taken for a closed one (the placeholder's
 * open would land elsewhere: exit 125). Both run to the exit told. */
static void exit_9(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_exit(c, 9), 0);
}

Test(signals, closed_and_o_path_std_fds_are_told_apart_on_both_transports) {
  static const char o_path_stdin[] = "import os, sys\n"
                                     "os.dup2(os.open('/', os.O_PATH), 0)\n"
                                     "os.execv(sys.argv[1], sys.argv[1:])\n";
  sb_transport transports[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  for (size_t t = 0; t < 2; t++) {
    harness h;
    report r = {0};
    h_init(&h, &(sb_server_options){.transport = transports[t]});
    h.on_connect = write_into_a_closed_pipe;
    h.user = &r;
    char *closed[] = {"/bin/sh", "-c", "exec \"$0\" >&-", H_STUB, NULL};
    h_exit ex;
    h_spawn(&h, &(h_spawn_opts){.args = closed}, &ex);
    h_wait_exit(&h, &ex);
    cr_assert_eq(ex.signal, 0, "the stub died by signal %d", ex.signal);
    cr_assert_eq(ex.status, 7, "stdout closed: status %lld", (long long)ex.status);
    cr_assert_eq(r.stream, 1);
    cr_assert_eq(r.err, -EBADF, "err %s", sb_err_name(r.err));

    h.on_connect = exit_9;
    char *o_path[] = {"/usr/bin/python3", "-c", (char *)o_path_stdin, H_STUB, NULL};
    h_spawn(&h, &(h_spawn_opts){.args = o_path}, &ex);
    h_wait_exit(&h, &ex);
    cr_assert_eq(ex.status, 9, "O_PATH stdin: status %lld", (long long)ex.status);
    h_fini(&h);
  }
}

static void on_signal(sb_conn *c, int signum) {
  report *r = sb_conn_data(c);
  r->signum = signum;
  r->signals++;
  cr_assert_eq(sb_conn_exit(c, 42), 0);
}

static void signal_the_stub(harness *h, sb_conn *c) {
  report *r = h->user;
  if (r)
    sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_signal = on_signal}, r);
  const sb_call *call = sb_conn_call(c);
  int sig = atoi(call->argv[1]);
  cr_assert_eq(kill((pid_t)call->pid, sig), 0, "kill: %s", strerror(errno));
}

Test(signals, a_signal_to_the_stub_is_forwarded_and_the_supervisor_decides) {
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    harness h;
    report r = {0};
    h_init(&h, NULL);
    h.on_connect = signal_the_stub;
    h.user = &r;
    h_exit ex;
    h_stub_n(&h, sigs[i], &ex);
    h_wait_exit(&h, &ex);
    cr_assert_eq(r.signals, 1, "signal %d: forwarded %d times", sigs[i], r.signals);
    cr_assert_eq(r.signum, sigs[i], "forwarded %d", r.signum);
    cr_assert_eq(ex.signal, 0);
    cr_assert_eq(ex.status, 42, "status %lld", (long long)ex.status);
    h_fini(&h);
  }
}

Test(signals, by_default_the_stub_dies_by_the_signal_it_received) {
  harness h;
  h_init(&h, NULL);
  h.on_connect = signal_the_stub; /* h.user NULL: no on_signal callback */
  int sigs[] = {SIGTERM, SIGINT, SIGHUP};
  enum { N = sizeof sigs / sizeof sigs[0] };
  h_exit ex[N];
  for (int i = 0; i < N; i++)
    h_stub_n(&h, sigs[i], &ex[i]);
  for (int i = 0; i < N; i++) {
    h_wait_exit(&h, &ex[i]);
    cr_assert_eq(ex[i].signal, sigs[i], "want death by %d, got signal %d status %lld",
                 sigs[i], ex[i].signal, (long long)ex[i].status);
  }
  h_fini(&h);
}
