/* SPDX-License-Identifier: MIT */
/* Faults (issue 7): a stub killed with SIGKILL in the middle of a stream, no
 * output lost over 1,000 runs in a row, and EMFILE in the supervisor. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"

#include "../helpers/stream.h"

TestSuite(faults, .timeout = 60);

/* ---- 1. kill -9 of a stub mid-stream ------------------------------------- */

#define K_CHUNK (256 * 1024)
#define K_SLOTS 4

typedef struct killed {
  sb_conn *conn;
  int64_t stub_pid;
  unsigned in_flight, next;
  uint64_t ok_writes, failed_writes, writes_after_kill;
  int first_error;
  bool stop, killed;
  bool pause_reads; /* the connection is paused before the kill */
  unsigned closes;
  sb_close_reason reason;
  int close_err;
  unsigned in_flight_at_close;
  unsigned stub_exit_events;
  sb_close_reason event_reason;
  uint8_t buf[K_SLOTS][K_CHUNK];
} killed;

static killed *K;

static void k_pump(killed *k);

static void k_written(sb_conn *c, int status, void *data) {
  killed *k = data;
  k->in_flight--;
  if (status < 0) {
    k->failed_writes++;
    if (k->first_error == 0)
      k->first_error = status;
    k->stop = true;
    return;
  }
  k->ok_writes++;
  /* Streaming for real (a few MiB through): kill the stub now, once. */
  if (!k->killed && k->ok_writes >= 8) {
    k->killed = true;
    /* Nothing reads the connection from now on, so only a failed write can
     * find the stub gone (writes go on: k_pump below). */
    if (k->pause_reads)
      cr_assert_eq(sb_conn_pause(c), 0);
    cr_assert_eq(kill((pid_t)k->stub_pid, SIGKILL), 0, "kill %lld: %s",
                 (long long)k->stub_pid, strerror(errno));
  }
  k_pump(k);
}

static void k_pump(killed *k) {
  while (!k->stop && k->in_flight < K_SLOTS) {
    uint8_t *b = k->buf[k->next++ % K_SLOTS];
    memset(b, 'k', K_CHUNK);
    int r = sb_conn_write(k->conn, 1, b, K_CHUNK, k_written, k);
    if (r < 0) { /* the connection is closing: its end is on_close's */
      cr_assert(k->killed, "sb_conn_write before the kill: %s", sb_strerror(r));
      k->stop = true;
      return;
    }
    k->in_flight++;
  }
}

static void k_close(sb_conn *c, sb_close_reason reason, int err) {
  (void)c;
  K->closes++;
  K->reason = reason;
  K->close_err = err;
  K->in_flight_at_close = K->in_flight;
  K->stop = true;
}

static void k_connect(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_null(K->conn, "a second stub connected");
  K->conn = c;
  K->stub_pid = sb_conn_call(c)->pid;
  cr_assert_gt(K->stub_pid, 0);
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_close = k_close}, K);
  k_pump(K);
}

static void k_event(sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_STUB_EXIT) {
    K->stub_exit_events++;
    K->event_reason = ev->close_reason;
  }
}

/* as_child: the stub is the spawned child itself (its end is SIGKILL);
 * otherwise a shell runs it and exits 9 after it. pause_reads: the
 * connection is paused before the kill, so the loss is found by a failed
 * write, not by the read side (which, left alone, usually notices first). */
static void kill9_mid_stream(bool as_child, bool pause_reads) {
  harness h;
  K = calloc(1, sizeof *K);
  cr_assert_not_null(K);
  K->pause_reads = pause_reads;
  h_init(&h, &(sb_server_options){.on_event = k_event});
  h.on_connect = k_connect;
  int out = open("/dev/null", O_WRONLY | O_CLOEXEC);
  cr_assert(out >= 0);
  h_exit ex;
  if (as_child) {
    char *args[] = {H_STUB, "victim", NULL};
    h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &ex);
  } else {
    /* stderr to /dev/null: the shell reports the kill there. */
    h_sh(&h, "\"$SOCKETBRIDGE_STUB\" victim; exit 9", out, out, &ex);
  }
  close(out);
  h_wait(&h, &K->killed, "the stub to be streaming");
  h_wait_count(&h, &K->closes, 1, "on_close after the kill");
  h_wait_exit(&h, &ex);
  h_wait_open(&h, 0);

  cr_assert_eq(K->closes, 1, "on_close ran %u times", K->closes);
  cr_assert_eq(K->reason, SB_CLOSE_PEER_LOST, "close reason %s",
               sb_close_reason_name(K->reason));
  cr_assert_eq(K->in_flight_at_close, 0, "%u write callbacks had not run at on_close",
               K->in_flight_at_close);
  cr_assert_eq(K->in_flight, 0);
  cr_assert_geq(K->failed_writes, 1, "no pending write got an error");
  cr_assert_lt(K->first_error, 0);
  if (pause_reads) {
    /* The premise: a write failed on its own (not cancelled by a close the
     * read side began), and that failure is what closed the connection. */
    cr_assert_neq(K->first_error, UV_ECANCELED,
                  "the loss was not found by a write: the first failed write was "
                  "cancelled");
    cr_assert_eq(K->close_err, K->first_error, "on_close said %s, the write %s",
                 sb_strerror(K->close_err), sb_strerror(K->first_error));
  }
  cr_assert_eq(K->stub_exit_events, 1, "%u STUB_EXIT events", K->stub_exit_events);
  cr_assert_eq(K->event_reason, SB_CLOSE_PEER_LOST);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.lost, 1, "lost %llu", (unsigned long long)st.lost);
  cr_assert_eq(st.welcomed, 1);
  if (as_child) {
    cr_assert_eq(ex.signal, SIGKILL, "the child ended with status %lld signal %d",
                 (long long)ex.status, ex.signal);
  } else {
    cr_assert_eq(ex.signal, 0, "the shell died by signal %d", ex.signal);
    cr_assert_eq(ex.status, 9, "the shell's status %lld", (long long)ex.status);
  }
  h_fini(&h);
  cr_assert_eq(K->closes, 1, "on_close ran again after the end (%u)", K->closes);
  free(K);
}

Test(faults, kill9_of_a_stub_mid_stream_its_shell_exits_9) {
  kill9_mid_stream(false, false);
}

Test(faults, kill9_of_a_stub_mid_stream_as_the_child) {
  kill9_mid_stream(true, false);
}

/* The same kill, found by the write path: a failed write closes the
 * connection, and the loss must still be reported exactly once. */
Test(faults, kill9_of_a_stub_mid_stream_found_by_a_failed_write_its_shell_exits_9) {
  kill9_mid_stream(false, true);
}

Test(faults, kill9_of_a_stub_mid_stream_found_by_a_failed_write_as_the_child) {
  kill9_mid_stream(true, true);
}

/* ---- 2. no output lost, 1,000 runs in a row ------------------------------ */

/* Each run is the stub as a child, told to write its payload and exit 0.
 * Half of them write into a file, half into a small pipe the loop reads, so
 * that the stub's short writes (and EAGAIN) are part of the 1,000. */

#define RUNS 1000
#define AT_ONCE 24

static size_t payload_len(unsigned i) {
  return (i % 100 == 99 ? 1024 * 1024 : 1024) + i;
}

static uint8_t *payload(unsigned i, size_t *len) {
  *len = payload_len(i);
  uint8_t *b = malloc(*len);
  cr_assert_not_null(b);
  tstream g;
  tstream_init(&g, 7000 + i);
  tstream_fill(&g, b, *len);
  return b;
}

/* A run whose stdout is a pipe the loop reads (see r_start). */
typedef struct reader {
  uv_pipe_t pipe;
  unsigned i;
  char *buf;
  size_t len, cap;
} reader;

typedef struct runs {
  harness *h;
  unsigned started, finished;
  h_exit ex[RUNS];
  sb_child *child[RUNS];
  reader *rd[RUNS];   /* pipe runs only */
  bool exited[RUNS];  /* a pipe run ends at its exit and its pipe's EOF, */
  bool drained[RUNS]; /* in either order */
  unsigned piped_big; /* 1 MiB runs that went through a pipe */
} runs;

static runs *R;

static void r_start(void);

/* Half of the runs, and half of the 1 MiB ones (i % 100 == 99, all odd). */
static bool r_piped(unsigned i) {
  return (i + i / 100) % 2 == 1;
}

static void r_check(unsigned i, const char *got, size_t len) {
  size_t want_len;
  uint8_t *want = payload(i, &want_len);
  cr_assert_eq(len, want_len, "run %u (%s): %zu bytes arrived of %zu", i,
               r_piped(i) ? "pipe" : "file", len, want_len);
  cr_assert(memcmp(got, want, len) == 0, "run %u (%s): the bytes differ", i,
            r_piped(i) ? "pipe" : "file");
  free(want);
}

static void r_done(void) {
  R->finished++;
  r_start();
}

static void rd_closed(uv_handle_t *handle) {
  reader *rd = handle->data;
  free(rd->buf);
  free(rd);
}

/* Checks a pipe run once both its exit and its EOF have been seen. */
static void rd_maybe_done(unsigned i) {
  if (!R->exited[i] || !R->drained[i])
    return;
  reader *rd = R->rd[i];
  r_check(i, rd->buf, rd->len);
  R->rd[i] = NULL;
  uv_close((uv_handle_t *)&rd->pipe, rd_closed);
  r_done();
}

static void rd_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  static char scratch[64 * 1024];
  (void)handle, (void)suggested;
  *buf = uv_buf_init(scratch, sizeof scratch);
}

static void rd_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  reader *rd = stream->data;
  if (nread == UV_EOF) {
    uv_read_stop(stream);
    R->drained[rd->i] = true;
    rd_maybe_done(rd->i);
    return;
  }
  cr_assert_geq(nread, 0, "run %u: reading its stdout: %s", rd->i,
                uv_strerror((int)nread));
  if (rd->len + (size_t)nread > rd->cap) {
    rd->cap = (rd->len + (size_t)nread) * 2;
    rd->buf = realloc(rd->buf, rd->cap);
    cr_assert_not_null(rd->buf);
  }
  memcpy(rd->buf + rd->len, buf->base, (size_t)nread);
  rd->len += (size_t)nread;
}

/* A pipe whose read end the loop reads into a reader; returns the write
 * end. Its capacity is cut to the minimum (one page): the stub writes its
 * stdout in pieces of up to a frame read from the bridge, and a piece
 * larger than the pipe can only go in several writes, the first of them
 * short. A regular file takes every write whole, so the file runs alone
 * would never see a short write. */
static int rd_open(unsigned i) {
  int fds[2];
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
  int cap = fcntl(fds[1], F_SETPIPE_SZ, 4096);
  cr_assert_geq(cap, 0, "F_SETPIPE_SZ: %s", strerror(errno));
  cr_assert_lt((size_t)cap, 64 * 1024, "the pipe holds %d bytes", cap);
  reader *rd = calloc(1, sizeof *rd);
  cr_assert_not_null(rd);
  rd->i = i;
  cr_assert_eq(uv_pipe_init(&R->h->loop, &rd->pipe, 0), 0);
  rd->pipe.data = rd;
  cr_assert_eq(uv_pipe_open(&rd->pipe, fds[0]), 0);
  cr_assert_eq(uv_read_start((uv_stream_t *)&rd->pipe, rd_alloc, rd_read), 0);
  R->rd[i] = rd;
  return fds[1];
}

static void r_connect(harness *h, sb_conn *c) {
  (void)h;
  const sb_call *call = sb_conn_call(c);
  cr_assert_eq(call->argc, 2);
  unsigned i = (unsigned)atoi(call->argv[1]);
  size_t len;
  uint8_t *b = payload(i, &len);
  cr_assert_eq(sb_conn_write_copy(c, 1, b, len), 0);
  free(b);
  cr_assert_eq(sb_conn_exit(c, 0), 0, "run %u", i);
}

static void r_exit(sb_child *c, int64_t status, int sig) {
  unsigned i = (unsigned)(uintptr_t)sb_child_data(c);
  cr_assert_eq(sig, 0, "run %u died by signal %d", i, sig);
  cr_assert_eq(status, 0, "run %u exited %lld", i, (long long)status);
  if (r_piped(i)) {
    R->exited[i] = true;
    rd_maybe_done(i);
    return;
  }
  char name[32];
  snprintf(name, sizeof name, "run%u", i);
  size_t len;
  char *got = h_read(R->h, name, &len);
  r_check(i, got, len);
  free(got);
  unlink(h_path(R->h, name));
  r_done();
}

static void r_start(void) {
  while (R->started < RUNS && R->started - R->finished < AT_ONCE) {
    unsigned i = R->started++;
    char name[32], num[16];
    snprintf(name, sizeof name, "run%u", i);
    snprintf(num, sizeof num, "%u", i);
    int out;
    if (r_piped(i)) {
      out = rd_open(i);
      R->piped_big += payload_len(i) > 1024 * 1024;
    } else {
      out = h_create(R->h, name);
    }
    char *args[] = {H_STUB, num, NULL};
    sb_spawn_options o = {
        .file = H_STUB,
        .args = args,
        .stdio = {{SB_STDIO_FD, .fd = R->h->devnull},
                  {SB_STDIO_FD, .fd = out},
                  {.mode = SB_STDIO_INHERIT}},
        .on_exit = r_exit,
        .data = (void *)(uintptr_t)i,
    };
    int r = sb_spawn(R->h->server, &o, &R->child[i]);
    cr_assert_eq(r, 0, "sb_spawn run %u: %s", i, sb_strerror(r));
    close(out);
  }
}

Test(faults, no_output_lost_1000_runs_in_a_row) {
  harness h;
  R = calloc(1, sizeof *R);
  cr_assert_not_null(R);
  R->h = &h;
  h_init(&h, NULL);
  h.on_connect = r_connect;
  r_start();
  h_wait_count(&h, &R->finished, RUNS, "1,000 runs");
  cr_assert_eq(R->piped_big, RUNS / 200, "%u runs of 1 MiB went through a pipe",
               R->piped_big);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.welcomed, RUNS);
  cr_assert_eq(st.lost, 0);
  h_fini(&h);
  free(R);
}

/* ---- 3. EMFILE in the supervisor ---------------------------------------- */

#define GATED 6 /* stubs that connect while fds run out */
#define SPARE 2 /* fds left free for them */
#define AFTER 3 /* stubs after the limit is raised again */

typedef struct emfile {
  sb_conn *held[GATED];
  unsigned nheld;
  bool hold;
  unsigned served;
  unsigned bad_exits;
  unsigned paused, resumed; /* ACCEPT_PAUSED / ACCEPT_RESUMED events */
  int pause_error;
  char *pause_json;
} emfile;

static emfile *E;

static void e_serve(sb_conn *c) {
  const sb_call *call = sb_conn_call(c);
  char line[64];
  int len =
      snprintf(line, sizeof line, "served %s\n", call->argc > 1 ? call->argv[1] : "?");
  cr_assert_eq(sb_conn_write_copy(c, 1, line, (size_t)len), 0);
  cr_assert_eq(sb_conn_exit(c, 0), 0);
  E->served++;
}

static void e_connect(harness *h, sb_conn *c) {
  (void)h;
  if (E->hold) {
    cr_assert_lt(E->nheld, GATED);
    E->held[E->nheld++] = c; /* keeps its fd: the next accept hits EMFILE */
    return;
  }
  e_serve(c);
}

static void e_event(sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_ACCEPT_PAUSED) {
    if (E->paused++ == 0) {
      E->pause_error = ev->error;
      cr_assert_eq(sb_event_to_json(ev, &E->pause_json), 0);
    }
  } else if (ev->type == SB_EVENT_ACCEPT_RESUMED) {
    E->resumed++;
  }
}

static void e_bad_exit(sb_child *c, int64_t status, int sig) {
  (void)c, (void)status, (void)sig;
  E->bad_exits++;
}

static void e_output(sb_child *c, int stream, const char *buf, size_t len, uint64_t ts) {
  (void)c, (void)stream, (void)buf, (void)len, (void)ts;
  E->bad_exits++;
}

/* The lowest limit that leaves exactly `spare` fd numbers free. */
static rlim_t limit_leaving(unsigned spare) {
  bool used[4096] = {false};
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd != self && fd < 4096)
      used[fd] = true;
  }
  closedir(d);
  rlim_t lim = 0;
  for (unsigned free_below = 0; lim < 4096; lim++) {
    if (free_below == spare)
      break;
    if (!used[lim])
      free_below++;
  }
  return lim;
}

/* libuv's own accept would drop the stubs that find no fd (they would exit
 * 125, unseen by the caller); the server must report the error, keep them
 * waiting, serve everything else, and take them once fds are free. */
Test(faults, emfile_in_the_supervisor_keeps_serving_and_recovers) {
  harness h;
  E = calloc(1, sizeof *E);
  cr_assert_not_null(E);
  h_init(&h, &(sb_server_options){.on_event = e_event});
  h.on_connect = e_connect;
  E->hold = true;

  /* The stubs wait on a pipe, so they all connect once fds are short. */
  int gate[2];
  cr_assert_eq(pipe2(gate, O_CLOEXEC), 0);
  h_exit ex[GATED];
  for (unsigned i = 0; i < GATED; i++) {
    char out[16], err[16], script[128];
    snprintf(out, sizeof out, "out%u", i);
    snprintf(err, sizeof err, "err%u", i);
    snprintf(script, sizeof script, "read x; exec \"$SOCKETBRIDGE_STUB\" %u", i);
    int o = h_create(&h, out), e = h_create(&h, err);
    char *args[] = {"/bin/sh", "-c", script, NULL};
    h_spawn(&h, &(h_spawn_opts){.args = args, .in = gate[0], .out = o, .err = e}, &ex[i]);
    close(o);
    close(e);
  }
  close(gate[0]);

  struct rlimit old;
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
  rlim_t lim = limit_leaving(SPARE);
  struct rlimit low = {lim, old.rlim_max};
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0, "setrlimit: %s", strerror(errno));
  close(gate[1]); /* EOF: every stub connects now (this frees one more fd) */

  /* SPARE + 1 connections take the free fds; the next accept fails. */
  h_wait_count(&h, &E->paused, 1, "the ACCEPT_PAUSED event");
  cr_assert_eq(E->pause_error, -EMFILE, "accept paused on %d", E->pause_error);
  cr_assert_not_null(strstr(E->pause_json, "\"error\":\"EMFILE\""), "%s", E->pause_json);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_geq(st.accept_errors, 1);

  /* The loop keeps serving: sb_spawn while no fd is free, for a child whose
   * stdout is captured (a pipe; with inherited stdio posix_spawn needs no fd
   * of ours), is an error, not a crash, not an exit... */
  char *args[] = {H_STUB, "never", NULL};
  sb_child *bad = NULL;
  int spawn_r = sb_spawn(h.server,
                         &(sb_spawn_options){.file = H_STUB,
                                             .args = args,
                                             .stdio = {{.mode = SB_STDIO_NULL},
                                                       {.mode = SB_STDIO_CAPTURE},
                                                       {.mode = SB_STDIO_INHERIT}},
                                             .on_output = e_output,
                                             .on_exit = e_bad_exit},
                         &bad);
  cr_assert(spawn_r == -EMFILE || spawn_r == -ENFILE, "sb_spawn with no fd free: %s",
            sb_strerror(spawn_r));
  /* ...a stub accepted before is served and ends, and the fd its
   * connection frees lets a waiting stub in at once, limit still low. */
  h_wait_count(&h, &E->nheld, 1, "a held stub's hello");
  e_serve(E->held[0]);
  h_wait_count(&h, &E->resumed, 1, "the ACCEPT_RESUMED event after an fd was freed");
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);

  /* With fds back, every stub that waited is taken; serve them all. */
  h_wait_count(&h, &E->nheld, GATED, "every stub's hello");
  E->hold = false;
  for (unsigned i = 1; i < GATED; i++)
    e_serve(E->held[i]);
  for (unsigned i = 0; i < GATED; i++) {
    h_wait_exit(&h, &ex[i]);
    char out[16], err[16], want[32];
    snprintf(out, sizeof out, "out%u", i);
    snprintf(err, sizeof err, "err%u", i);
    snprintf(want, sizeof want, "served %u\n", i);
    size_t elen;
    char *o = h_read(&h, out, NULL), *e = h_read(&h, err, &elen);
    cr_assert_eq(ex[i].status, 0, "stub %u ended %lld signal %d: %s", i,
                 (long long)ex[i].status, ex[i].signal, e);
    cr_assert_str_eq(o, want);
    cr_assert_eq(elen, 0, "stub %u stderr: %s", i, e);
    free(o);
    free(e);
  }
  cr_assert_eq(E->served, GATED);
  cr_assert_eq(E->resumed, E->paused, "%u pauses, %u resumes", E->paused, E->resumed);

  /* And new stubs are served as usual. */
  h_exit after[AFTER];
  for (unsigned i = 0; i < AFTER; i++) {
    char out[16];
    snprintf(out, sizeof out, "after%u", i);
    char num[16];
    snprintf(num, sizeof num, "%u", 100 + i);
    char *a[] = {H_STUB, num, NULL};
    h_spawn_to(&h, a, out, NULL, &after[i]);
  }
  for (unsigned i = 0; i < AFTER; i++) {
    h_wait_exit(&h, &after[i]);
    cr_assert_eq(after[i].status, 0, "stub after recovery ended %lld",
                 (long long)after[i].status);
    char out[16], want[32];
    snprintf(out, sizeof out, "after%u", i);
    snprintf(want, sizeof want, "served %u\n", 100 + i);
    char *o = h_read(&h, out, NULL);
    cr_assert_str_eq(o, want);
    free(o);
  }
  cr_assert_eq(E->bad_exits, 0, "the failed spawn reported an exit or output");
  h_fini(&h);
  free(E->pause_json);
  free(E);
}
