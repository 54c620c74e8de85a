/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <inttypes.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <spawn.h>
#include <signal.h>
#include <poll.h>

#include "../helpers/stream.h"

double h_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double h_scale(void) {
  const char *s = getenv("SB_TEST_TIMEOUT_SCALE");
  double v = s ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

static void on_connect(sb_server *s, sb_conn *c) {
  harness *h = sb_server_data(s);
  h->connects++;
  cr_assert(h->on_connect != NULL, "a stub connected but the test expects none");
  h->on_connect(h, c);
}

static void on_reject(sb_server *s, const sb_reject_info *info) {
  harness *h = sb_server_data(s);
  cr_assert(info->reason >= 1 && info->reason <= SB_REASON_PROTOCOL, "reason %d",
            (int)info->reason);
  h->rejects[info->reason]++;
  h->reject_total++;
}

void h_init(harness *h, const sb_server_options *opts) {
  memset(h, 0, sizeof *h);
  cr_assert_eq(uv_loop_init(&h->loop), 0);
  snprintf(h->dir, sizeof h->dir, "%s/sbtest.XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  cr_assert_not_null(mkdtemp(h->dir), "mkdtemp: %s", strerror(errno));
  h->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  cr_assert(h->devnull >= 0);
  sb_server_options o = {0};
  if (opts)
    o = *opts;
  o.on_connect = on_connect;
  o.on_reject = on_reject;
  if (!o.stub_path)
    o.stub_path = H_STUB;
  o.data = h;
  int r = sb_server_new(&h->loop, &o, &h->server);
  cr_assert_eq(r, 0, "sb_server_new: %s", sb_strerror(r));
}

static void on_closed(sb_server *s) {
  harness *h = sb_server_data(s);
  h->closed = true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

void h_fini(harness *h) {
  sb_server_close(h->server, on_closed);
  h_wait(h, &h->closed, "the server to close");
  /* Let every close callback run, then the loop must be empty. */
  uv_run(&h->loop, UV_RUN_DEFAULT);
  int r = uv_loop_close(&h->loop);
  cr_assert_eq(r, 0, "uv_loop_close: %s (a handle was left open)", uv_strerror(r));
  nftw(h->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  close(h->devnull);
}

typedef struct waiter {
  bool fired;
} waiter;

static void on_deadline(uv_timer_t *t) {
  waiter *w = t->data;
  w->fired = true;
}

static void on_timer_closed(uv_handle_t *h) {
  (void)h;
}

/* Runs the loop until done(arg) or the deadline. */
static void wait_until(harness *h, bool (*done)(const void *, unsigned), const void *arg,
                       unsigned want, const char *what) {
  if (done(arg, want))
    return;
  uv_timer_t timer;
  waiter w = {false};
  uv_timer_init(&h->loop, &timer);
  timer.data = &w;
  uv_timer_start(&timer, on_deadline, (uint64_t)(H_DEADLINE * 1000 * h_scale()), 0);
  while (!done(arg, want) && !w.fired)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_timer_stop(&timer);
  uv_close((uv_handle_t *)&timer, on_timer_closed);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  cr_assert(done(arg, want), "timed out waiting for %s", what);
}

static bool flag_done(const void *p, unsigned want) {
  (void)want;
  return *(const bool *)p;
}

static bool count_done(const void *p, unsigned want) {
  return *(const unsigned *)p >= want;
}

void h_wait(harness *h, const bool *flag, const char *what) {
  wait_until(h, flag_done, flag, 0, what);
}

void h_wait_count(harness *h, const unsigned *count, unsigned want, const char *what) {
  wait_until(h, count_done, count, want, what);
}

static void on_exit_cb(sb_child *c, int64_t status, int sig) {
  h_exit *ex = sb_child_data(c);
  ex->done = true;
  ex->status = status;
  ex->signal = sig;
}

/* Notes the child's token in $SB_TEST_TOKEN_LOG, one per line, so that
 * scripts/test.sh can check that nothing the suite prints holds one. */
static void note_token(sb_child *c) {
  const char *path = getenv("SB_TEST_TOKEN_LOG");
  if (path == NULL || path[0] == '\0')
    return;
  for (char *const *e = sb_ticket_env(sb_child_ticket(c)); *e != NULL; e++) {
    if (strncmp(*e, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) != 0)
      continue;
    int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0, "%s: %s", path, strerror(errno));
    /* One short write with O_APPEND: whole lines from parallel tests. */
    cr_assert_gt(dprintf(fd, "%s\n", *e + sizeof SB_ENV_TOKEN), 0);
    close(fd);
  }
}

sb_child *h_spawn(harness *h, const h_spawn_opts *so, h_exit *ex) {
  memset(ex, 0, sizeof *ex);
  sb_spawn_options o = {
      .file = so->args[0],
      .args = so->args,
      .env = so->env,
      .cwd = so->cwd,
      .stdio = {{SB_STDIO_FD, .fd = so->in > 0 ? so->in : h->devnull},
                {so->out > 0 ? SB_STDIO_FD : SB_STDIO_INHERIT, .fd = so->out},
                {so->err > 0 ? SB_STDIO_FD : SB_STDIO_INHERIT, .fd = so->err}},
      .on_exit = on_exit_cb,
      .data = ex,
  };
  sb_child *c = NULL;
  int r = sb_spawn(h->server, &o, &c);
  cr_assert_eq(r, 0, "sb_spawn %s: %s", so->args[0], sb_strerror(r));
  note_token(c);
  return c;
}

sb_child *h_spawn_to(harness *h, char *const *args, const char *out, const char *err,
                     h_exit *ex) {
  int o = out ? h_create(h, out) : 0, e = err ? h_create(h, err) : 0;
  sb_child *c = h_spawn(h, &(h_spawn_opts){.args = args, .out = o, .err = e}, ex);
  if (o)
    close(o);
  if (e)
    close(e);
  return c;
}

sb_child *h_stub_n(harness *h, long n, h_exit *ex) {
  char num[24];
  snprintf(num, sizeof num, "%ld", n);
  char *args[] = {H_STUB, num, NULL};
  return h_spawn(h, &(h_spawn_opts){.args = args}, ex);
}

sb_child *h_sh(harness *h, const char *script, int out, int err, h_exit *ex) {
  char *args[] = {"/bin/sh", "-c", (char *)script, NULL};
  return h_spawn(h, &(h_spawn_opts){.args = args, .out = out, .err = err}, ex);
}

void h_wait_exit(harness *h, h_exit *ex) {
  h_wait(h, &ex->done, "the child to exit");
}

const char *h_path(harness *h, const char *name) {
  static char bufs[32][512];
  static unsigned slot;
  char *b = bufs[slot++ % 32];
  snprintf(b, sizeof bufs[0], "%s/%s", h->dir, name);
  return b;
}

int h_create(harness *h, const char *name) {
  int fd = open(h_path(h, name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  cr_assert(fd >= 0, "create %s: %s", name, strerror(errno));
  return fd;
}

char *h_read(harness *h, const char *name, size_t *len) {
  FILE *f = fopen(h_path(h, name), "rb");
  cr_assert_not_null(f, "open %s: %s", name, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap + 1);
  for (;;) {
    if (n == cap)
      buf = realloc(buf, (cap *= 2) + 1);
    size_t k = fread(buf + n, 1, cap - n, f);
    if (k == 0)
      break;
    n += k;
  }
  fclose(f);
  buf[n] = '\0';
  if (len)
    *len = n;
  return buf;
}

static void on_poll_timer(uv_timer_t *t) {
  (void)t; /* waking the loop is all it is for */
}

bool h_poll_for(harness *h, bool (*cond)(harness *, const void *), const void *arg) {
  uint64_t limit = (uint64_t)(H_DEADLINE * 1000 * h_scale());
  uv_timer_t t;
  uv_timer_init(&h->loop, &t);
  uv_timer_start(&t, on_poll_timer, 5, 5);
  uint64_t start = uv_now(&h->loop);
  while (!cond(h, arg) && uv_now(&h->loop) - start < limit)
    uv_run(&h->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, on_timer_closed);
  uv_run(&h->loop, UV_RUN_NOWAIT);
  return cond(h, arg);
}

void h_poll_until(harness *h, bool (*cond)(harness *, const void *), const void *arg,
                  const char *what) {
  cr_assert(h_poll_for(h, cond, arg), "timed out waiting for %s", what);
}

static bool file_filled(harness *h, const void *name) {
  struct stat st;
  return stat(h_path(h, name), &st) == 0 && st.st_size > 0;
}

void h_wait_file(harness *h, const char *name) {
  h_poll_until(h, file_filled, name, name);
}

unsigned h_open_conns(harness *h) {
  sb_server_stats st;
  sb_server_stats_get(h->server, &st);
  return st.open;
}

static bool open_is(harness *h, const void *want) {
  return h_open_conns(h) == *(const unsigned *)want;
}

void h_wait_open(harness *h, unsigned want) {
  char what[64];
  snprintf(what, sizeof what, "%u connections open (now %u)", want, h_open_conns(h));
  h_poll_until(h, open_is, &want, what);
}

h_source *h_source_new(uint64_t bytes, uint64_t seed) {
  h_source *s = calloc(1, sizeof *s);
  cr_assert_not_null(s);
  tstream g;
  tstream_init(&g, seed);
  s->gen_state = g.state;
  s->left = bytes;
  return s;
}

static void source_pump(h_source *s);

static void source_written(sb_conn *c, int status, void *data) {
  (void)c;
  h_source *s = data;
  cr_assert_eq(status, 0, "write failed: %s", sb_strerror(status));
  s->in_flight--;
  source_pump(s);
}

static void source_pump(h_source *s) {
  while (s->left > 0 && s->in_flight < H_SOURCE_SLOTS) {
    size_t n = s->left < H_SOURCE_CHUNK ? (size_t)s->left : H_SOURCE_CHUNK;
    uint8_t *b = s->buf[s->next++ % H_SOURCE_SLOTS];
    tstream g = {s->gen_state};
    tstream_fill(&g, b, n);
    s->gen_state = g.state;
    s->left -= n;
    s->in_flight++;
    int r = sb_conn_write(s->conn, 1, b, n, source_written, s);
    cr_assert_eq(r, 0, "sb_conn_write: %s", sb_strerror(r));
    size_t q = sb_conn_queued(s->conn);
    if (q > s->max_queued)
      s->max_queued = q;
  }
  if (s->left == 0 && s->in_flight == 0) {
    int r = sb_conn_exit(s->conn, 0);
    cr_assert_eq(r, 0, "sb_conn_exit: %s", sb_strerror(r));
  }
}

void h_source_start(h_source *s, sb_conn *conn) {
  s->conn = conn;
  source_pump(s);
}

void h_source_expect(uint64_t bytes, uint64_t seed, char out[64]) {
  tsum want = tstream_expected(seed, bytes);
  snprintf(out, 64, "%" PRIu64 " %016" PRIx64 "\n", want.bytes, want.hash);
}

/* The processes (ours excepted) with marker in their command line: counted,
 * and sent SIGKILL when kill_them. -1 when /proc cannot be read. */
static int scan_marked(const char *marker, bool kill_them) {
  int n = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[300], buf[4096];
    pid_t pid = (pid_t)atoi(e->d_name);
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || pid == getpid())
      continue;
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      continue;
    ssize_t len = read(fd, buf, sizeof buf);
    close(fd);
    if (len > 0 && memmem(buf, (size_t)len, marker, strlen(marker)) != NULL) {
      n++;
      if (kill_them)
        kill(pid, SIGKILL);
    }
  }
  closedir(d);
  return n;
}

unsigned h_count_marked(const char *marker) {
  int n = scan_marked(marker, false);
  cr_assert_geq(n, 0, "cannot read /proc");
  return (unsigned)n;
}

void h_kill_marked(const char *marker) {
  scan_marked(marker, true);
}

/* ---- processes outside the library ---------------------------------------- */

pid_t h_proc_start(harness *h, char *const *args, const char *in_path, const char *tag,
                   char *const *envp) {
  char out[600], err[600];
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t at;
  sigset_t all, none;
  pid_t pid;
  int r;

  snprintf(out, sizeof out, "%s/%s.out", h->dir, tag);
  snprintf(err, sizeof err, "%s/%s.err", h->dir, tag);
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in_path ? in_path : "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawnattr_init(&at);
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&at, &all);
  posix_spawnattr_setsigmask(&at, &none);
  posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  r = posix_spawnp(&pid, args[0], &fa, &at, args, envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&at);
  cr_assert_eq(r, 0, "posix_spawn %s: %s", args[0], strerror(r));
  return pid;
}

bool h_wait_reapable(pid_t pid, double seconds) {
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (pfd >= 0) {
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    int r;
    do
      r = poll(&p, 1, (int)(seconds * 1000));
    while (r < 0 && errno == EINTR);
    close(pfd);
    return r > 0;
  }
  cr_assert_eq(errno, ENOSYS, "pidfd_open: %s", strerror(errno));
  for (int ms = 0; ms < (int)(seconds * 1000); ms += 5, poll(NULL, 0, 5)) {
    siginfo_t si = {0};
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        si.si_pid == pid)
      return true;
  }
  return false;
}
