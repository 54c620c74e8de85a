/* SPDX-License-Identifier: MIT */
/* figures.c - the figures: the real stub through the real library, on a
 * libuv loop of this process (the supervisor's place). */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "socketbridge.h"
#include "stream.h"

extern char **environ;

/* A loop with a server on it. Every figure's state begins with one, so the
 * server's data pointer is both. */
typedef struct bl {
  uv_loop_t loop;
  sb_server *server;
  bool closed;
  bool exited, conn_closed; /* the one child of most figures */
  int64_t status;
  int signal;
} bl;

static void bl_init(bl *b, int transport, sb_connect_cb on_connect) {
  memset(b, 0, sizeof *b);
  if (uv_loop_init(&b->loop) != 0)
    b_die("uv_loop_init");
  sb_server_options o = {
      .transport = transport == BT_UNIX ? SB_TRANSPORT_UNIX : SB_TRANSPORT_TCP,
      .stub_path = BENCH_STUB,
      .on_connect = on_connect,
      .data = b,
  };
  int r = sb_server_new(&b->loop, &o, &b->server);
  if (r < 0)
    b_die("sb_server_new: %s", sb_strerror(r));
}

static void bl_on_closed(sb_server *s) {
  bl *b = sb_server_data(s);
  b->closed = true;
}

static void bl_fini(bl *b) {
  sb_server_close(b->server, bl_on_closed);
  while (!b->closed)
    uv_run(&b->loop, UV_RUN_ONCE);
  uv_run(&b->loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&b->loop) != 0)
    b_die("uv_loop_close: a handle was left open");
}

static void bl_on_exit(sb_child *child, int64_t status, int sig) {
  bl *b = sb_child_data(child);
  b->exited = true;
  b->status = status;
  b->signal = sig;
}

static void bl_on_conn_close(sb_conn *conn, sb_close_reason reason, int err) {
  bl *b = sb_server_data(sb_conn_server(conn));
  if (reason != SB_CLOSE_EXITED)
    b_die("connection closed: %s (%s)", sb_close_reason_name(reason), sb_strerror(err));
  b->conn_closed = true;
}

/* Spawns the stub through the library with stdin and stdout on in and out. */
static void bl_spawn_stub(bl *b, int in, int out) {
  char *args[] = {BENCH_STUB, NULL};
  sb_spawn_options o = {
      .file = BENCH_STUB,
      .args = args,
      .stdio = {{SB_STDIO_FD, .fd = in},
                {SB_STDIO_FD, .fd = out},
                {.mode = SB_STDIO_INHERIT}},
      .on_exit = bl_on_exit,
      .data = b,
  };
  sb_child *child;
  b->exited = b->conn_closed = false;
  int r = sb_spawn(b->server, &o, &child);
  if (r < 0)
    b_die("sb_spawn: %s", sb_strerror(r));
}

/* Runs the loop until the child is reaped and its connection closed; checks
 * it exited 0. */
static void bl_wait_child(bl *b) {
  while (!(b->exited && b->conn_closed))
    uv_run(&b->loop, UV_RUN_ONCE);
  if (b->status != 0 || b->signal != 0)
    b_die("stub ended with status %lld signal %d", (long long)b->status, b->signal);
}

static int open_null(int flags) {
  int fd = open("/dev/null", flags | O_CLOEXEC);
  if (fd < 0)
    b_die("/dev/null: %s", strerror(errno));
  return fd;
}

/* ---- stub cycle ---------------------------------------------------------------- */

static void cycle_connect(sb_server *s, sb_conn *conn) {
  (void)s;
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = bl_on_conn_close}, NULL);
  int r = sb_conn_exit(conn, 0);
  if (r < 0)
    b_die("sb_conn_exit: %s", sb_strerror(r));
}

double fig_cycle_us(int transport, int n) {
  bl b;
  int in = open_null(O_RDONLY), out = open_null(O_WRONLY);
  int warm = n / 10 + 2;
  uint64_t *ns = calloc((size_t)n, sizeof *ns);
  if (ns == NULL)
    b_die("out of memory");
  bl_init(&b, transport, cycle_connect);
  for (int i = 0; i < warm + n; i++) {
    uint64_t t0 = b_now_ns();
    bl_spawn_stub(&b, in, out);
    bl_wait_child(&b);
    if (i >= warm)
      ns[i - warm] = b_now_ns() - t0;
  }
  bl_fini(&b);
  close(in);
  close(out);
  double us = b_median_us(ns, n);
  free(ns);
  return us;
}

/* ---- stdout stream --------------------------------------------------------------- */

#define OUT_SLOTS 8 /* 64 KiB writes in flight: 512 KiB queued at most */

typedef struct sout {
  bl b;
  sb_conn *conn;
  pid_t stub;
  size_t left;
  unsigned in_flight, next;
  bool verify, exit_sent;
  tstream gen;
  uint8_t *bufs; /* OUT_SLOTS chunks */
  uint64_t t0;
  long hwm, anon, file;
} sout;

static void sout_pump(sout *s);

static void sout_written(sb_conn *conn, int status, void *data) {
  sout *s = data;
  (void)conn;
  if (status < 0)
    b_die("stdout write: %s", sb_strerror(status));
  s->in_flight--;
  sout_pump(s);
}

static void sout_pump(sout *s) {
  while (s->left > 0 && s->in_flight < OUT_SLOTS) {
    /* Writes end in order: the slot written OUT_SLOTS ago is free. */
    uint8_t *buf = s->bufs + (size_t)(s->next++ % OUT_SLOTS) * BENCH_CHUNK;
    size_t n = s->left < BENCH_CHUNK ? s->left : BENCH_CHUNK;
    if (s->verify)
      tstream_fill(&s->gen, buf, n);
    s->left -= n;
    s->in_flight++;
    int r = sb_conn_write(s->conn, 1, buf, n, sout_written, s);
    if (r < 0)
      b_die("sb_conn_write: %s", sb_strerror(r));
  }
  if (s->left == 0 && s->in_flight == 0 && !s->exit_sent) {
    s->hwm = b_status_kib(s->stub, "VmHWM");
    s->anon = b_status_kib(s->stub, "RssAnon");
    s->file = b_status_kib(s->stub, "RssFile");
    s->exit_sent = true;
    int r = sb_conn_exit(s->conn, 0);
    if (r < 0)
      b_die("sb_conn_exit: %s", sb_strerror(r));
  }
}

static void sout_connect(sb_server *server, sb_conn *conn) {
  sout *s = sb_server_data(server);
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = bl_on_conn_close}, s);
  s->conn = conn;
  s->stub = (pid_t)sb_conn_call(conn)->pid;
  s->t0 = b_now_ns();
  sout_pump(s);
}

typedef struct summer {
  int fd;
  tsum sum;
} summer;

static void *sum_pipe(void *arg) {
  summer *sm = arg;
  static uint8_t buf[BENCH_CHUNK];
  tsum_init(&sm->sum);
  for (;;) {
    ssize_t r = read(sm->fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    tsum_add(&sm->sum, buf, (size_t)r);
  }
  return NULL;
}

fig_stream_result fig_stdout(int transport, size_t total, bool verify) {
  fig_stream_result res = {0};
  sout *s = calloc(1, sizeof *s);
  if (s == NULL)
    b_die("out of memory");
  s->bufs = malloc((size_t)OUT_SLOTS * BENCH_CHUNK);
  if (s->bufs == NULL)
    b_die("out of memory");
  s->left = total;
  s->verify = verify;
  tstream_init(&s->gen, 6);
  if (!verify) /* fixed chunks, each different */
    tstream_fill(&s->gen, s->bufs, (size_t)OUT_SLOTS * BENCH_CHUNK);
  tstream_init(&s->gen, 6);
  bl_init(&s->b, transport, sout_connect);

  int in = open_null(O_RDONLY), out;
  summer sm = {.fd = -1};
  pthread_t th;
  if (verify) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
      b_die("pipe: %s", strerror(errno));
    sm.fd = p[0];
    out = p[1];
    if (pthread_create(&th, NULL, sum_pipe, &sm) != 0)
      b_die("pthread_create");
  } else {
    out = open_null(O_WRONLY);
  }
  bl_spawn_stub(&s->b, in, out);
  close(in);
  close(out); /* the stub holds the only writer now: its end is our EOF */
  bl_wait_child(&s->b);
  uint64_t t1 = b_now_ns();
  res.gbs = (double)total / (double)(t1 - s->t0);
  res.stub_hwm_kib = s->hwm;
  res.stub_anon_kib = s->anon;
  res.stub_file_kib = s->file;
  if (verify) {
    pthread_join(th, NULL);
    close(sm.fd);
    tsum want = tstream_expected(6, total);
    res.verified = sm.sum.bytes == want.bytes && sm.sum.hash == want.hash;
  }
  bl_fini(&s->b);
  free(s->bufs);
  free(s);
  return res;
}

/* ---- stdin stream ----------------------------------------------------------------- */

typedef struct sin {
  bl b;
  bool verify;
  tsum sum;
  uint64_t t0;
  long hwm, anon, file;
} sin_state;

static void sin_stdin(sb_conn *conn, const char *buf, size_t len) {
  sin_state *s = sb_conn_data(conn);
  if (len > 0) {
    if (s->verify)
      tsum_add(&s->sum, buf, len);
    else
      s->sum.bytes += len;
    return;
  }
  pid_t pid = (pid_t)sb_conn_call(conn)->pid;
  s->hwm = b_status_kib(pid, "VmHWM");
  s->anon = b_status_kib(pid, "RssAnon");
  s->file = b_status_kib(pid, "RssFile");
  int r = sb_conn_exit(conn, 0);
  if (r < 0)
    b_die("sb_conn_exit: %s", sb_strerror(r));
}

static void sin_connect(sb_server *server, sb_conn *conn) {
  sin_state *s = sb_server_data(server);
  sb_conn_set_callbacks(
      conn, &(sb_conn_callbacks){.on_stdin = sin_stdin, .on_close = bl_on_conn_close}, s);
  s->t0 = b_now_ns();
}

fig_stream_result fig_stdin(int transport, const char *path, uint64_t seed) {
  fig_stream_result res = {0};
  sin_state s;
  bl_init(&s.b, transport, sin_connect);
  s.verify = seed != 0;
  s.hwm = -1;
  tsum_init(&s.sum);
  int in = open(path, O_RDONLY | O_CLOEXEC), out = open_null(O_WRONLY);
  if (in < 0)
    b_die("%s: %s", path, strerror(errno));
  off_t size = lseek(in, 0, SEEK_END);
  lseek(in, 0, SEEK_SET);
  bl_spawn_stub(&s.b, in, out);
  close(in);
  close(out);
  bl_wait_child(&s.b);
  uint64_t t1 = b_now_ns();
  if (s.sum.bytes != (uint64_t)size)
    b_die("stdin: %llu bytes of %lld", (unsigned long long)s.sum.bytes, (long long)size);
  res.gbs = (double)size / (double)(t1 - s.t0);
  res.stub_hwm_kib = s.hwm;
  res.stub_anon_kib = s.anon;
  res.stub_file_kib = s.file;
  if (s.verify) {
    tsum want = tstream_expected(seed, (uint64_t)size);
    res.verified = s.sum.hash == want.hash;
  }
  bl_fini(&s.b);
  return res;
}

/* ---- delegate ---------------------------------------------------------------------- */

#define DELEGATE_SEED 9 /* the stream of the correctness run */

typedef struct dele {
  bl b;
  size_t total;
  bool verify, prog_exited;
  int64_t prog_code;
  int prog_signal;
  long hwm, anon, file;
} dele;

static void dele_program_exit(sb_conn *conn, int64_t code, int signum) {
  dele *d = sb_conn_data(conn);
  pid_t pid = (pid_t)sb_conn_call(conn)->pid;
  d->prog_exited = true;
  d->prog_code = code;
  d->prog_signal = signum;
  /* All the program wrote is queued for the stub; the library tells the stub
   * to exit on return. */
  d->hwm = b_status_kib(pid, "VmHWM");
  d->anon = b_status_kib(pid, "RssAnon");
  d->file = b_status_kib(pid, "RssFile");
}

static void dele_connect(sb_server *server, sb_conn *conn) {
  dele *d = sb_server_data(server);
  char bytes[32], seed[16];
  snprintf(bytes, sizeof bytes, "%zu", d->total);
  snprintf(seed, sizeof seed, "%d", d->verify ? DELEGATE_SEED : 0);
  char *argv[] = {BENCH_GEN, bytes, seed, NULL};
  sb_conn_set_callbacks(conn,
                        &(sb_conn_callbacks){.on_close = bl_on_conn_close,
                                             .on_program_exit = dele_program_exit},
                        d);
  int r = sb_conn_delegate(conn, &(sb_program){.argv = argv, .path = BENCH_GEN});
  if (r < 0)
    b_die("sb_conn_delegate: %s", sb_strerror(r));
}

fig_stream_result fig_delegate(int transport, size_t total, bool verify) {
  fig_stream_result res = {0};
  dele *d = calloc(1, sizeof *d);
  if (d == NULL)
    b_die("out of memory");
  bl_init(&d->b, transport, dele_connect);
  d->total = total;
  d->verify = verify;
  d->hwm = d->anon = d->file = -1;

  int in = open_null(O_RDONLY), out;
  summer sm = {.fd = -1};
  pthread_t th;
  if (verify) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
      b_die("pipe: %s", strerror(errno));
    sm.fd = p[0];
    out = p[1];
    if (pthread_create(&th, NULL, sum_pipe, &sm) != 0)
      b_die("pthread_create");
  } else {
    out = open_null(O_WRONLY);
  }
  uint64_t t0 = b_now_ns();
  bl_spawn_stub(&d->b, in, out);
  close(in);
  close(out); /* the stub holds the only writer now: its end is our EOF */
  bl_wait_child(&d->b);
  uint64_t t1 = b_now_ns();
  if (!d->prog_exited || d->prog_code != 0 || d->prog_signal != 0)
    b_die("delegated program: exited %d, status %lld signal %d", d->prog_exited,
          (long long)d->prog_code, d->prog_signal);
  res.gbs = (double)total / (double)(t1 - t0);
  res.stub_hwm_kib = d->hwm;
  res.stub_anon_kib = d->anon;
  res.stub_file_kib = d->file;
  if (verify) {
    pthread_join(th, NULL);
    close(sm.fd);
    tsum want = tstream_expected(DELEGATE_SEED, total);
    res.verified = sm.sum.bytes == want.bytes && sm.sum.hash == want.hash;
  }
  bl_fini(&d->b);
  free(d);
  return res;
}

/* ---- round trip ------------------------------------------------------------------- */

static void echo_stdin(sb_conn *conn, const char *buf, size_t len) {
  int r = len > 0 ? sb_conn_write_copy(conn, 1, buf, len) : sb_conn_exit(conn, 0);
  if (r < 0)
    b_die("echo: %s", sb_strerror(r));
}

static void echo_connect(sb_server *server, sb_conn *conn) {
  (void)server;
  sb_conn_set_callbacks(
      conn, &(sb_conn_callbacks){.on_stdin = echo_stdin, .on_close = bl_on_conn_close},
      NULL);
}

double fig_rtt_us(int transport, int n) {
  bl b;
  int up[2], down[2];
  if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
    b_die("pipe: %s", strerror(errno));
  bl_init(&b, transport, echo_connect);
  bl_spawn_stub(&b, up[0], down[1]);
  close(up[0]);
  close(down[1]);
  b_pinger pg = {.wr = up[1], .rd = down[0], .n = n, .warm = n / 10 + 100};
  pthread_t th;
  if (pthread_create(&th, NULL, b_ping, &pg) != 0)
    b_die("pthread_create");
  bl_wait_child(&b);
  pthread_join(th, NULL);
  close(down[0]);
  bl_fini(&b);
  return (double)pg.ns / n / 1e3;
}

/* ---- many stubs at once ----------------------------------------------------------- */

typedef struct many {
  bl b;
  unsigned n, connected, closed_n;
  sb_conn **conns;
  uint64_t *t_spawn; /* written by the spawner before each posix_spawn */
  uint64_t *lat;
  uint64_t t_last;
  pid_t *pids;
  sb_ticket *ticket;
} many;

static void many_close(sb_conn *conn, sb_close_reason reason, int err) {
  many *m = sb_conn_data(conn);
  if (reason != SB_CLOSE_EXITED)
    b_die("connection closed: %s (%s)", sb_close_reason_name(reason), sb_strerror(err));
  m->closed_n++;
}

static void many_connect(sb_server *server, sb_conn *conn) {
  many *m = sb_server_data(server);
  uint64_t now = b_now_ns();
  const char *slot = sb_conn_getenv(conn, "BENCH_SLOT");
  unsigned i = slot != NULL ? (unsigned)atoi(slot) : m->n;
  if (i >= m->n || m->conns[i] != NULL)
    b_die("a stub with a bad BENCH_SLOT");
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = many_close}, m);
  m->conns[i] = conn;
  m->lat[i] = now - __atomic_load_n(&m->t_spawn[i], __ATOMIC_ACQUIRE);
  m->connected++;
  m->t_last = now;
}

static void *many_spawner(void *arg) {
  many *m = arg;
  char *const *tenv = sb_ticket_env(m->ticket);
  size_t ne = 0, nt = 0;
  while (environ[ne] != NULL)
    ne++;
  while (tenv[nt] != NULL)
    nt++;
  char **env = calloc(ne + nt + 2, sizeof *env);
  char slot[32];
  if (env == NULL)
    b_die("out of memory");
  memcpy(env, environ, ne * sizeof *env);
  memcpy(env + ne, tenv, nt * sizeof *env);
  env[ne + nt] = slot;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  char *args[] = {BENCH_STUB, NULL};
  for (unsigned i = 0; i < m->n; i++) {
    snprintf(slot, sizeof slot, "BENCH_SLOT=%u", i);
    __atomic_store_n(&m->t_spawn[i], b_now_ns(), __ATOMIC_RELEASE);
    int e = posix_spawn(&m->pids[i], BENCH_STUB, &fa, NULL, args, env);
    if (e != 0)
      b_die("posix_spawn: %s", strerror(e));
  }
  posix_spawn_file_actions_destroy(&fa);
  free(env);
  return NULL;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static void many_deadline(uv_timer_t *t) {
  many *m = t->data;
  b_die("%u stubs: only %u connected within 60 s", m->n, m->connected);
}

fig_many_result fig_many(int transport, unsigned n) {
  fig_many_result res = {.stubs = n};
  many m;
  bl_init(&m.b, transport, many_connect);
  m.n = n;
  m.connected = m.closed_n = 0;
  m.conns = calloc(n, sizeof *m.conns);
  m.t_spawn = calloc(n, sizeof *m.t_spawn);
  m.lat = calloc(n, sizeof *m.lat);
  m.pids = calloc(n, sizeof *m.pids);
  if (m.conns == NULL || m.t_spawn == NULL || m.lat == NULL || m.pids == NULL)
    b_die("out of memory");
  int r = sb_ticket_new(m.b.server, &m.ticket);
  if (r < 0)
    b_die("sb_ticket_new: %s", sb_strerror(r));
  uv_timer_t deadline;
  uv_timer_init(&m.b.loop, &deadline);
  deadline.data = &m;
  uv_timer_start(&deadline, many_deadline, 60000, 0);

  pthread_t th;
  long rss0 = b_status_kib(0, "VmRSS");
  uint64_t t0 = b_now_ns();
  if (pthread_create(&th, NULL, many_spawner, &m) != 0)
    b_die("pthread_create");
  while (m.connected < n)
    uv_run(&m.b.loop, UV_RUN_ONCE);
  long rss1 = b_status_kib(0, "VmRSS");
  res.served = m.connected;
  res.all_ms = (double)(m.t_last - t0) / 1e6;
  res.rss_per_conn_kib = (double)(rss1 - rss0) / n;
  pthread_join(th, NULL);

  for (unsigned i = 0; i < n; i++) {
    r = sb_conn_exit(m.conns[i], 0);
    if (r < 0)
      b_die("sb_conn_exit: %s", sb_strerror(r));
  }
  while (m.closed_n < n)
    uv_run(&m.b.loop, UV_RUN_ONCE);
  for (unsigned i = 0; i < n; i++)
    b_wait_ok(m.pids[i], "stub");
  uv_timer_stop(&deadline);
  uv_close((uv_handle_t *)&deadline, NULL);

  qsort(m.lat, n, sizeof *m.lat, cmp_u64);
  res.p50_ms = (double)m.lat[n / 2] / 1e6;
  res.p99_ms = (double)m.lat[(n * 99) / 100] / 1e6;
  res.max_ms = (double)m.lat[n - 1] / 1e6;
  sb_ticket_free(m.ticket);
  bl_fini(&m.b);
  free(m.conns);
  free(m.t_spawn);
  free(m.lat);
  free(m.pids);
  return res;
}
