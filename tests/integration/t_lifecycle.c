/* SPDX-License-Identifier: MIT */
/* Connections and the supervisor coming and going: many stubs at once, the
 * Unix transport, a supervisor that disappears, and no fd leaking. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(lifecycle, .timeout = 90);

/* ---- many at once ------------------------------------------------------- */

#define MANY 200

typedef struct crowd {
  sb_conn *conns[MANY];
  unsigned n;
} crowd;

static void hold_until_all_came(harness *h, sb_conn *c) {
  crowd *cr = h->user;
  cr_assert_lt(cr->n, MANY);
  cr->conns[cr->n++] = c;
  if (cr->n < MANY)
    return;
  /* Every stub is connected at this moment: answer them all. */
  for (unsigned i = 0; i < MANY; i++) {
    const sb_call *call = sb_conn_call(cr->conns[i]);
    char line[64];
    int len = snprintf(line, sizeof line, "stub %s\n", call->argv[1]);
    cr_assert_eq(sb_conn_write_copy(cr->conns[i], 1, line, (size_t)len), 0);
    cr_assert_eq(sb_conn_exit(cr->conns[i], 0), 0);
  }
}

Test(lifecycle, serves_200_stubs_connected_at_once) {
  harness h;
  static crowd cr;
  static h_exit ex[MANY];
  h_init(&h, NULL);
  h.on_connect = hold_until_all_came;
  h.user = &cr;
  for (int i = 0; i < MANY; i++) {
    char num[8], name[16];
    snprintf(num, sizeof num, "%d", i);
    snprintf(name, sizeof name, "out%d", i);
    int out = h_create(&h, name);
    char *args[] = {H_STUB, num, NULL};
    h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &ex[i]);
    close(out);
  }
  for (int i = 0; i < MANY; i++) {
    char name[16], want[32];
    snprintf(name, sizeof name, "out%d", i);
    snprintf(want, sizeof want, "stub %d\n", i);
    h_wait_exit(&h, &ex[i]);
    cr_assert_eq(ex[i].status, 0, "stub %d: status %lld", i, (long long)ex[i].status);
    char *got = h_read(&h, name, NULL);
    cr_assert_str_eq(got, want);
    free(got);
  }
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.welcomed, MANY);
  h_fini(&h);
}

/* ---- the Unix transport ------------------------------------------------- */

static void echo_argv1(harness *h, sb_conn *c) {
  (void)h;
  const sb_call *call = sb_conn_call(c);
  cr_assert_eq(sb_conn_write_copy(c, 1, call->argv[1], strlen(call->argv[1])), 0);
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

Test(lifecycle, the_unix_transport_lives_in_a_private_directory) {
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX});
  h.on_connect = echo_argv1;
  const char *path = sb_server_address(h.server);
  cr_assert_eq(sb_server_port(h.server), 0);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0, "stat %s: %s", path, strerror(errno));
  cr_assert(S_ISSOCK(st.st_mode));
  cr_assert_eq(st.st_mode & 0777, 0600, "socket mode %o", st.st_mode & 0777);
  char dir[512];
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  cr_assert_eq(stat(dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700, "directory mode %o", st.st_mode & 0777);

  int out = h_create(&h, "out");
  char *args[] = {H_STUB, "over unix", NULL};
  h_exit ex;
  sb_child *child = h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &ex);
  bool has_socket = false;
  for (char *const *e = sb_ticket_env(sb_child_ticket(child)); *e; e++)
    has_socket |= strncmp(*e, SB_ENV_SOCKET "=", sizeof SB_ENV_SOCKET) == 0;
  cr_assert(has_socket, "the child was not given SOCKETBRIDGE_SOCKET");
  close(out);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 0);
  char *got = h_read(&h, "out", NULL);
  cr_assert_str_eq(got, "over unix");
  free(got);
  h_fini(&h);
  cr_assert_neq(stat(dir, &st), 0, "the socket directory outlived the server");
}

/* ---- the supervisor goes away ------------------------------------------ */

static void drop_at_once(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_write_copy(c, 1, "partial", 7), 0);
  sb_conn_close(c);
}

Test(lifecycle, a_stub_whose_bridge_closes_before_exit_fails_with_125) {
  harness h;
  h_init(&h, NULL);
  h.on_connect = drop_at_once;
  char *args[] = {H_STUB, NULL};
  h_exit ex;
  h_spawn_to(&h, args, "out", "err", &ex);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 125, "status %lld", (long long)ex.status);
  size_t len;
  char *e = h_read(&h, "err", &len);
  cr_assert(strncmp(e, "socketbridge-stub: ", 19) == 0, "stderr: %s", e);
  cr_assert(len > 0 && strchr(e, '\n') == e + len - 1, "not one line: %s", e);
  free(e);
  h_fini(&h);
}

/* A supervisor in a process of its own, so the test can kill -9 it. It
 * spawns `sh -c 'stub 2>ERR; echo $? >&2'` with the shell's stderr on
 * `status` and its stdout on `out`, streams to the stub without end, and
 * writes one byte to `ready` once the stub is connected. */
typedef struct doomed {
  int ready;
  h_source *src;
} doomed;

static void doomed_connect(harness *h, sb_conn *c) {
  doomed *d = h->user;
  h_source_start(d->src, c);
  cr_assert_eq(write(d->ready, "r", 1), 1);
}

static void run_doomed_supervisor(const char *errfile, int out, int status, int ready) {
  harness h;
  doomed d = {ready, h_source_new(UINT64_MAX / 2, 1)};
  h_init(&h, NULL);
  h.on_connect = doomed_connect;
  h.user = &d;
  char script[512];
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" 2>'%s'; echo $? >&2", errfile);
  h_exit ex;
  h_sh(&h, script, out, status, &ex);
  for (;;)
    uv_run(&h.loop, UV_RUN_DEFAULT); /* until killed */
}

/* Reads the stub's exit code from the status pipe, within the deadline. */
static int read_status(int fd) {
  char buf[16] = {0};
  size_t n = 0;
  while (n < sizeof buf - 1) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, (int)(H_DEADLINE * 1000));
    cr_assert_eq(r, 1, "no exit status from the stub in time");
    ssize_t k = read(fd, buf + n, sizeof buf - 1 - n);
    if (k <= 0)
      break;
    n += (size_t)k;
    if (memchr(buf, '\n', n))
      break;
  }
  return atoi(buf);
}

ParameterizedTestParameters(lifecycle, kill9) {
  static int blocked[] = {0, 1};
  return cr_make_param_array(int, blocked, 2);
}

/* blocked: the stub's stdout is a full pipe nobody reads, so the stub is
 * stuck waiting to write when its supervisor dies. */
ParameterizedTest(int *blocked, lifecycle, kill9) {
  char dir[] = "/tmp/sbkill.XXXXXX";
  cr_assert_not_null(mkdtemp(dir));
  char errfile[64];
  snprintf(errfile, sizeof errfile, "%s/err", dir);
  int status[2], ready[2], full[2];
  cr_assert_eq(pipe2(status, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(full, O_CLOEXEC), 0);
  int out = *blocked ? full[1] : open("/dev/null", O_WRONLY | O_CLOEXEC);

  pid_t sup = fork();
  cr_assert(sup >= 0);
  if (sup == 0) {
    setenv("TMPDIR", dir, 1); /* its temp dir goes where we clean up */
    close(status[0]);
    close(ready[0]);
    run_doomed_supervisor(errfile, out, status[1], ready[1]);
    _exit(1);
  }
  close(status[1]);
  close(ready[1]);
  close(full[1]);
  char r;
  struct pollfd p = {ready[0], POLLIN, 0};
  cr_assert_eq(poll(&p, 1, (int)(H_DEADLINE * 1000)), 1, "the stub never connected");
  cr_assert_eq(read(ready[0], &r, 1), 1);
  if (*blocked) {
    /* Wait until the pipe is full: the stub is then stuck on its stdout. A
     * full pipe holds a little under 64 KiB when writes are not whole pages. */
    int avail = 0, full_enough = 65536 - 4096;
    for (int i = 0; i < 2000 && avail < full_enough; i++) {
      ioctl(full[0], FIONREAD, &avail);
      if (avail < full_enough)
        poll(NULL, 0, 5);
    }
    if (avail < full_enough)
      kill(sup, SIGKILL); /* do not leave it behind */
    cr_assert_geq(avail, full_enough, "the stub's stdout never filled (%d bytes)", avail);
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  cr_assert_eq(kill(sup, SIGKILL), 0);
  cr_assert_eq(waitpid(sup, NULL, 0), sup);

  cr_assert_eq(read_status(status[0]), 125, "the stub did not fail with 125");
  clock_gettime(CLOCK_MONOTONIC, &t1);
  /* Issue 7 asks for 500 ms: reported, not asserted (timings never decide
   * a test here); the stub acts on the socket's EOF, not on a timer. */
  cr_log_info("kill -9 (%s): the stub exited 125 %.1f ms after the kill",
              *blocked ? "stdout blocked" : "streaming",
              (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
  FILE *f = fopen(errfile, "r");
  cr_assert_not_null(f);
  char line[512] = {0}, extra[8];
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert(strncmp(line, "socketbridge-stub: ", 19) == 0, "stderr: %s", line);
  cr_assert_null(fgets(extra, sizeof extra, f), "more than one line on stderr");
  fclose(f);
  close(status[0]);
  close(ready[0]);
  close(full[0]);
  if (!*blocked)
    close(out);
  char rm[128];
  snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
  cr_assert_eq(system(rm), 0);
}

/* ---- no fd of the supervisor leaks into a child ------------------------ */

static void fds_hold(harness *h, sb_conn *c) {
  sb_conn **held = h->user;
  if (!*held) {
    *held = c; /* keep one connection open while the next child starts */
    return;
  }
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

Test(lifecycle, a_child_inherits_only_its_stdio) {
  harness h;
  sb_conn *held = NULL;
  h_init(&h, NULL);
  h.on_connect = fds_hold;
  h.user = &held;
  h_exit first, second;
  char *args1[] = {H_STUB, NULL};
  h_spawn(&h, &(h_spawn_opts){.args = args1}, &first);
  h_wait_count(&h, &h.connects, 1, "the first stub");

  /* The child lists its fds, then runs the stub, which lists nothing. */
  int out = h_create(&h, "fds");
  char *args2[] = {HELPER_FDS, H_STUB, NULL};
  h_spawn(&h, &(h_spawn_opts){.args = args2, .out = out}, &second);
  close(out);
  h_wait_exit(&h, &second);
  char *fds = h_read(&h, "fds", NULL);
  cr_assert_str_eq(fds, "0 1 2 \n", "the child had these fds open: %s", fds);
  free(fds);
  cr_assert_eq(sb_conn_exit(held, 0), 0);
  h_wait_exit(&h, &first);
  h_fini(&h);
}
