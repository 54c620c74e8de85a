/* Calls lost under load, and what unauthenticated peers may cost (issue 15,
 * items 4, 5, 6 and 8): a stall of the loop rejects no hello that had
 * arrived; more calls than any old bound are served late, not refused; an
 * argv and environment as large as execve(2) takes go through a shim; peers
 * without a token hold a bounded amount of memory, whatever they send. Every
 * test runs on both transports. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"

#include <criterion/logging.h>
#include <criterion/parameterized.h>

TestSuite(load, .timeout = 240);

static const char *tr_name(sb_transport tr) {
  return tr == SB_TRANSPORT_TCP ? "tcp" : "unix";
}

static double scale(void) {
  const char *s = getenv("SB_TEST_TIMEOUT_SCALE");
  return s != NULL && atof(s) > 1 ? atof(s) : 1.0;
}

/* Reads one line from fd (blocking, but never past the test's deadline). */
static void read_line(int fd, char *buf, size_t cap, const char *what) {
  size_t n = 0;
  int limit_ms = (int)(H_DEADLINE * 1000 * scale());
  while (n + 1 < cap) {
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_gt(poll(&p, 1, limit_ms), 0, "timed out waiting for %s", what);
    ssize_t k = read(fd, buf + n, 1);
    cr_assert_gt(k, 0, "%s: the peer ended first", what);
    if (buf[n++] == '\n')
      break;
  }
  buf[n] = '\0';
}

static void exit_zero(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

static bool accepted_at_least(harness *h, const void *arg) {
  sb_server_stats st;
  sb_server_stats_get(h->server, &st);
  return st.accepted >= *(const unsigned *)arg;
}

/* ---- 4. a stall of the loop ----------------------------------------------- */

static sb_transport transports[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};

ParameterizedTestParameters(load, hellos_that_arrived_during_a_stall_are_welcomed) {
  return cr_make_param_array(sb_transport, transports, 2);
}

/* The loop is stalled (as by SIGSTOP: this process simply does not run it)
 * from after the connections were accepted, their handshake timers armed,
 * until well past the handshake timeout; the hellos arrive meanwhile. On
 * resuming, libuv runs the expired timers before the reads that waited:
 * every hello must still be welcomed. */
ParameterizedTest(sb_transport *tr, load, hellos_that_arrived_during_a_stall_are_welcomed) {
  enum { N = 50, HANDSHAKE_MS = 200 };
  harness h;
  h_init(&h, &(sb_server_options){.transport = *tr, .handshake_timeout_ms = HANDSHAKE_MS});
  h.on_connect = exit_zero;
  int in[2], out[2];
  cr_assert_eq(pipe(in), 0);
  cr_assert_eq(pipe(out), 0);
  char *args[] = {HELPER_RAWPEER, "stalled", NULL};
  char count[32];
  snprintf(count, sizeof count, "RAWPEER_COUNT=%d", N);
  char *env[] = {count, NULL};
  h_exit peer;
  h_spawn(&h, &(h_spawn_opts){.args = args, .env = env, .in = in[0], .out = out[1]},
          &peer);
  close(in[0]);
  close(out[1]);
  unsigned want = N;
  h_poll_until(&h, accepted_at_least, &want, "the connections to be accepted");

  /* The stall: the loop does not run from here on. */
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char line[64];
  read_line(out[0], line, sizeof line, "\"connected\"");
  cr_assert_str_eq(line, "connected\n");
  cr_assert_eq(write(in[1], "go\n", 3), 3);
  read_line(out[0], line, sizeof line, "\"sent\"");
  cr_assert_str_eq(line, "sent\n");
  /* Every hello is in the kernel; the stall goes on past the deadline of
   * every timer (armed before t0). */
  struct timespec stall = {.tv_sec = 0, .tv_nsec = 3 * HANDSHAKE_MS * 1000000L};
  while (nanosleep(&stall, &stall) != 0 && errno == EINTR)
    ;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double stalled_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                      (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;

  h_wait_exit(&h, &peer);
  cr_assert_eq(peer.status, 0, "rawpeer stalled failed (%lld)", (long long)peer.status);
  unsigned welcomed = 0, other = 0;
  char first_other[64] = "";
  for (int i = 0; i < N; i++) {
    read_line(out[0], line, sizeof line, "an answer");
    if (strcmp(line, "welcome\n") == 0)
      welcomed++;
    else if (other++ == 0)
      snprintf(first_other, sizeof first_other, "%s", line);
  }
  close(out[0]);
  close(in[1]);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_log_info("%s stall of %.0f ms (handshake timeout %d ms): %u of %d welcomed, "
              "%llu rejected timeout",
              tr_name(*tr), stalled_ms, HANDSHAKE_MS, welcomed, N,
              (unsigned long long)st.rejected[SB_REASON_TIMEOUT]);
  cr_assert_eq(st.rejected[SB_REASON_TIMEOUT], 0,
               "%llu hellos that had arrived were rejected timeout",
               (unsigned long long)st.rejected[SB_REASON_TIMEOUT]);
  cr_assert_eq(welcomed, N, "%u of %d welcomed (%u other answers, the first: %s)", welcomed,
               N, other, first_other);
  h_fini(&h);
}

/* ---- 5. more calls at once than any fixed bound ---------------------------- */

#define MAX_HELD 2048

typedef struct held {
  sb_conn *conn[MAX_HELD];
  unsigned n, want;
} held;

static held H;

/* Holds every call until `want` are open at once, then ends them all: the
 * server had that many welcomed connections at the same time. */
static void hold_until_all(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_lt(H.n, MAX_HELD);
  H.conn[H.n++] = c;
  if (H.n < H.want)
    return;
  for (unsigned i = 0; i < H.n; i++)
    cr_assert_eq(sb_conn_exit(H.conn[i], 0), 0);
}

/* Enough fds for n connections and the test's own: the soft limit raised to
 * the hard one. False when even that is too few. */
static bool fds_for(unsigned n) {
  struct rlimit rl;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < n + 256)
    return false;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

ParameterizedTestParameters(load, more_than_1024_calls_at_once_are_all_served) {
  return cr_make_param_array(sb_transport, transports, 2);
}

/* Issue 15: `xargs -P 1200` of stubs lost 176 calls to `busy` (the old
 * default bound, 1024). The default has no bound but fds: all are served. */
ParameterizedTest(sb_transport *tr, load, more_than_1024_calls_at_once_are_all_served) {
  enum { N = 1200 };
  if (!fds_for(N))
    cr_skip_test("the hard RLIMIT_NOFILE is under %d", N + 256);
  harness h;
  h_init(&h, &(sb_server_options){.transport = *tr});
  H.want = N;
  h.on_connect = hold_until_all;
  char script[256];
  snprintf(script, sizeof script,
           "seq %d | xargs -P %d -n 1 \"$SOCKETBRIDGE_STUB\" 2>&1 | sort | uniq -c | "
           "head -3; exit \"${PIPESTATUS[0]}\"",
           N, N);
  char *args[] = {"/bin/bash", "-c", script, NULL};
  int out = h_create(&h, "out");
  h_exit ex;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  h_spawn(&h, &(h_spawn_opts){.args = args, .out = out, .err = out}, &ex);
  close(out);
  h_wait_count(&h, &H.n, N, "every call to be open at once");
  h_wait_exit(&h, &ex);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  char *said = h_read(&h, "out", NULL);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_log_info("%s: %u of %d calls open at once and served in %.1f s; busy %llu, "
              "accept errors %llu",
              tr_name(*tr), H.n, N,
              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
              (unsigned long long)st.rejected[SB_REASON_BUSY],
              (unsigned long long)st.accept_errors);
  cr_assert_eq(ex.status, 0, "xargs ended %lld; the stubs said: %s", (long long)ex.status,
               said);
  cr_assert_eq(st.rejected[SB_REASON_BUSY], 0);
  cr_assert_eq(st.welcomed, N);
  free(said);
  h_fini(&h);
}
