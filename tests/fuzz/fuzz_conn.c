/* SPDX-License-Identifier: MIT */
/* fuzz_conn.c - the supervisor's handshake and connection state machine on
 * any bytes a peer may send, cut anywhere, with no socket on the input side.
 *
 * Per input: a loop, a Unix transport server, one ticket, and one connection
 * made by sb__conn_adopt_fd on one end of a socketpair. The input is handed
 * to it by sb__conn_feed (what libuv's read callback does), with the loop
 * run between pieces; the other end of the socketpair only collects what the
 * supervisor writes (or, when the input says so, leaves it unread: a stub
 * that never reads). Nothing is ever written to it, so every byte the
 * connection sees is the fuzzer's.
 *
 * Input: a 5-byte header, then the peer's byte stream.
 *   [0] cfg: bits 0-1 handshake timeout (default, 1 ms, 3 ms, default);
 *       bit 2 max_bytes 4096; bit 3 end with the peer's EOF (bit 7: a
 *       reset instead); bit 4 never read what the supervisor writes;
 *       bit 5 allow waits (the loop runs a few ms: delays and timeouts
 *       fire); bit 6 one wait after the stream (before the EOF)
 *   [1] what on_connect does (low 4 bits) and a variant (high 4 bits)
 *   [2] what the connection's callbacks do (BH_* bits)
 *   [3..4] seed of the cut points and of what happens between pieces
 * Every run of 64 'T' in the stream becomes the ticket's token, so a seed
 * with "token":"TTTT...T" in its hello is welcomed.
 *
 * Checks (abort on violation), beyond ASan, UBSan and LSan:
 * - the token never appears in an event's message or its JSON (save in the
 *   stub's own argv, which a STUB_CONNECT lists), a reject message, the
 *   env of the call, or a control frame the supervisor sends;
 * - what the supervisor sends is well-formed and in order: welcome (only
 *   if on_connect ran) or reject (the reason and message on_reject got)
 *   first; nothing after reject, exit or exec; a welcome with "stdin":
 *   false is followed by exec or run; no stream data after its end;
 * - on_connect at most once; on_close exactly once if it ran, after every
 *   write callback, with nothing counted queued, and never a callback of
 *   the connection after it; at most one program exit; a close EXITED only
 *   when the stub was told how to end;
 * - the server's stats: welcomed + rejected <= accepted = 1, open back to 0;
 *   sb_server_close finishes, and uv_loop_close then returns 0;
 * - no fd leaks from one input to the next. */
#include "sb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"

#define HEADER 5
#define MAX_TOKENS 4  /* the ticket's, and those of delegated programs */
#define MAX_WAITS 3   /* waits are milliseconds each: keep inputs fast */
#define MAX_STUCK 8   /* feeds refused in a row before giving up the rest */
#define GUARD_MS 5000 /* sb_server_close must finish within this */

/* R.cfg */
enum {
  CFG_TIMEOUT = 3,
  CFG_SMALL_MAX = 1 << 2,
  CFG_EOF = 1 << 3,
  CFG_NO_DRAIN = 1 << 4,
  CFG_WAITS = 1 << 5,
  CFG_FINAL_WAIT = 1 << 6,
  CFG_RESET = 1 << 7,
};

/* R.behave: what the connection's callbacks do */
enum {
  BH_ON_SIGNAL = 1 << 0,   /* on_signal set (else the default: kill) */
  BH_ECHO = 1 << 1,        /* stdin back to the stub */
  BH_PAUSE = 1 << 2,       /* pause on some stdin pieces */
  BH_EXIT_AT_EOF = 1 << 3, /* exit 0 at the end of stdin */
  BH_OVERRIDE = 1 << 4,    /* on_program_exit says how the stub ends */
  BH_OUT_PAUSE = 1 << 5,   /* program output pauses the connection */
  BH_CLOSE_ERR = 1 << 6,   /* a stream error closes the connection */
  BH_SERVER_CLOSE = 1 << 7 /* the 2nd stdin piece closes the server */
};

/* One input's state: the callbacks find it here. */
static struct {
  uv_loop_t loop;
  uv_timer_t tick, guard;
  sb_server *server;
  sb_ticket *ticket;
  sb_conn *conn; /* the connection; freed once the stats say open == 0 */
  int peer;      /* our end of the socketpair */
  uint8_t cfg, dispo, behave;
  uint32_t rng;
  char tokens[MAX_TOKENS][SB_TOKEN_HEX + 1];
  int ntokens;

  bool close_called, server_done, conn_closed;
  bool paused_by_us, launched;
  bool prog_running; /* a delegated program has not ended yet */
  bool prog_ends;    /* and will without more from the stub (/bin/true) */
  int writes;        /* sb_conn_write calls whose callback has not run */
  int connects, closes, prog_exits, stub_exits, reject_cbs, reject_events;
  sb_reason reject_reason; /* what on_reject was told */
  char reject_msg[256];
  unsigned stdin_pieces;
  bool stdin_ended;
  sb_server_stats stats; /* at the server's close */

  uint8_t *out; /* what the supervisor wrote */
  size_t out_len, out_cap;
} R;

static uint32_t next_rand(void) {
  R.rng ^= R.rng << 13;
  R.rng ^= R.rng >> 17;
  R.rng ^= R.rng << 5;
  return R.rng;
}

/* ---- token scans ----------------------------------------------------------- */

static bool has_token(const void *p, size_t n) {
  for (int i = 0; i < R.ntokens; i++)
    if (memmem(p, n, R.tokens[i], SB_TOKEN_HEX) != NULL)
      return true;
  return false;
}

static bool str_has_token(const char *s) {
  return s != NULL && has_token(s, strlen(s));
}

static void add_token_of(const sb_ticket *t) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  for (char *const *e = sb_ticket_env(t); *e != NULL; e++)
    if (strncmp(*e, prefix, sizeof prefix - 1) == 0 && R.ntokens < MAX_TOKENS)
      memcpy(R.tokens[R.ntokens++], *e + sizeof prefix - 1, SB_TOKEN_HEX + 1);
}

/* The stub's own argv may hold anything, a token too: an event listing it
 * repeats the stub's words, not a secret of ours. */
static bool argv_has_token(const sb_conn *conn) {
  const sb_call *c = conn != NULL ? sb_conn_call(conn) : NULL;
  for (size_t i = 0; c != NULL && i < c->argc; i++)
    if (str_has_token(c->argv[i]))
      return true;
  return false;
}

/* ---- server callbacks ---------------------------------------------------------- */

static void on_event(sb_server *server, const sb_event *ev) {
  char *json = NULL;
  (void)server;
  CHECK(!str_has_token(ev->message));
  if (ev->type == SB_EVENT_SPAWN && ev->child != NULL && sb_child_ticket(ev->child))
    add_token_of(sb_child_ticket(ev->child));
  if (ev->type == SB_EVENT_STUB_REJECT)
    R.reject_events++;
  if (ev->type == SB_EVENT_STUB_EXIT) {
    CHECK(ev->conn == R.conn && R.connects == 1 && !R.conn_closed);
    R.stub_exits++;
  }
  if (sb_event_to_json(ev, &json) == 0) {
    CHECK(!str_has_token(json) || argv_has_token(ev->conn));
    free(json);
  }
}

static void on_reject(sb_server *server, const sb_reject_info *info) {
  (void)server;
  CHECK(R.connects == 0);
  CHECK(info->reason >= SB_REASON_BAD_TOKEN && info->reason <= SB_REASON_PROTOCOL);
  CHECK(info->message != NULL && !str_has_token(info->message));
  R.reject_cbs++;
  R.reject_reason = info->reason;
  snprintf(R.reject_msg, sizeof R.reject_msg, "%s", info->message);
}

static void on_server_closed(sb_server *server) {
  sb_server_stats_get(server, &R.stats);
  R.server_done = true;
}

static void close_server(void) {
  if (R.close_called)
    return;
  R.close_called = true;
  sb_server_close(R.server, on_server_closed);
}

/* The connection exists (open or closing) until its last close callback. */
static bool conn_alive(void) {
  sb_server_stats st;
  if (R.server_done)
    return false;
  sb_server_stats_get(R.server, &st);
  return st.open > 0;
}

/* ---- connection callbacks ------------------------------------------------------ */

static void expect_ok(int r) {
  /* What a callback may see: the connection closing under it, a stream or
   * the stub already ended, a disposition given already, memory. */
  CHECK(r == 0 || r == -EPIPE || r == -ENOTCONN || r == -EALREADY || r == -ENOMEM);
}

static void pause_conn(sb_conn *conn) {
  if (sb_conn_pause(conn) == 0)
    R.paused_by_us = true;
}

static void on_written(sb_conn *conn, int status, void *data) {
  CHECK(conn == R.conn && !R.conn_closed && R.writes > 0);
  CHECK(status <= 0);
  R.writes--;
  free(data);
}

/* Half by sb_conn_write (a copy freed by the callback), half by
 * sb_conn_write_copy. */
static void echo(sb_conn *conn, const char *buf, size_t len) {
  char *copy;
  int r;
  if (R.stdin_pieces % 2 == 1) {
    expect_ok(sb_conn_write_copy(conn, 1, buf, len));
    return;
  }
  copy = malloc(len);
  CHECK(copy != NULL);
  memcpy(copy, buf, len);
  r = sb_conn_write(conn, 2, copy, len, on_written, copy);
  expect_ok(r);
  if (r == 0)
    R.writes++;
  else
    free(copy);
}

static void on_stdin(sb_conn *conn, const char *buf, size_t len) {
  CHECK(conn == R.conn && !R.conn_closed && !R.stdin_ended);
  CHECK(sb_conn_data(conn) == &R && sb_conn_server(conn) == R.server);
  CHECK(sb_conn_child(conn) == NULL); /* a ticket of sb_ticket_new */
  R.stdin_pieces++;
  if (len == 0) {
    R.stdin_ended = true;
    if (R.behave & BH_EXIT_AT_EOF)
      expect_ok(sb_conn_exit(conn, 0));
    return;
  }
  if (R.behave & BH_ECHO)
    echo(conn, buf, len);
  if ((R.behave & BH_PAUSE) && R.stdin_pieces % 3 == 1)
    pause_conn(conn);
  /* A caller that changes its mind: the dispatch goes on. */
  if ((R.behave & BH_PAUSE) && R.stdin_pieces % 3 == 2 && sb_conn_pause(conn) == 0)
    CHECK(sb_conn_resume(conn) == 0);
  if ((R.behave & BH_SERVER_CLOSE) && R.stdin_pieces == 2)
    close_server();
}

static void on_signal(sb_conn *conn, int signum) {
  CHECK(conn == R.conn && !R.conn_closed);
  CHECK(sb_signal_name(signum) != NULL);
  if (R.stdin_pieces % 2 == 1)
    expect_ok(sb_conn_exit(conn, (128 + signum) & 255));
}

static void on_stream_error(sb_conn *conn, int stream, int err) {
  CHECK(conn == R.conn && !R.conn_closed);
  CHECK((stream == 1 || stream == 2) && err < 0);
  if (R.behave & BH_CLOSE_ERR)
    sb_conn_close(conn);
  else
    expect_ok(sb_conn_close_stream(conn, stream));
}

static void on_close(sb_conn *conn, sb_close_reason reason, int err) {
  int code = -2, sig = -2;
  bool told = sb_conn_told(conn, &code, &sig);

  CHECK(conn == R.conn && R.connects == 1 && !R.conn_closed);
  CHECK(reason >= SB_CLOSE_EXITED && reason <= SB_CLOSE_EXEC && err <= 0);
  CHECK(R.stub_exits == 1); /* STUB_EXIT comes just before */
  /* Every write's callback has run, and nothing is counted queued. */
  CHECK(R.writes == 0 && sb_conn_queued(conn) == 0);
  /* EXITED: the stub was told how to end (or said it, for a failed exec). */
  CHECK(reason != SB_CLOSE_EXITED || told);
  CHECK(!told || (sig == 0 ? code >= 0 && code <= 255 : sb_signal_name(sig) != NULL));
  /* Any function may be called from a callback, on_close too. */
  CHECK(sb_conn_write_copy(conn, 1, "x", 1) == -ENOTCONN);
  CHECK(sb_conn_exit(conn, 0) == -ENOTCONN && sb_conn_kill(conn, SIGTERM) == -ENOTCONN);
  CHECK(sb_conn_pause(conn) == -ENOTCONN && sb_conn_resume(conn) == -ENOTCONN);
  CHECK(sb_conn_close_stream(conn, 2) == -ENOTCONN);
  sb_conn_close(conn);
  R.conn_closed = true;
  R.closes++;
  R.prog_running = false;
}

static void on_program_output(sb_conn *conn, int stream, const char *buf, size_t len) {
  CHECK(conn == R.conn && !R.conn_closed && R.launched);
  CHECK((stream == 1 || stream == 2) && (buf != NULL || len == 0));
  if ((R.behave & BH_OUT_PAUSE) && len > 0)
    pause_conn(conn);
}

static void on_program_exit(sb_conn *conn, int64_t code, int signum) {
  CHECK(conn == R.conn && !R.conn_closed && R.launched);
  CHECK(++R.prog_exits == 1);
  CHECK(signum != 0 ? code == 0 : code >= -1 && code <= 255);
  R.prog_running = false;
  if (R.behave & BH_OVERRIDE)
    expect_ok(sb_conn_exit(conn, 3));
}

/* ---- on_connect: the dispositions ---------------------------------------------- */

static char *prog_argv[] = {"prog", "arg", NULL};
static char *prog_set[] = {"FUZZ=1", "FUZZ=2", NULL};
static char *prog_unset[] = {"HOME", NULL};
static char *true_argv[] = {"true", NULL};
static char *cat_argv[] = {"cat", NULL};
/* The call's env is the fuzzer's: nothing it says may reach the loader. */
static char *true_unset[] = {"LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", NULL};

static sb_program program(unsigned variant) {
  sb_program p;
  memset(&p, 0, sizeof p);
  p.argv = prog_argv;
  p.path = (variant & 1) ? "/bin/prog" : NULL;
  p.cwd = (variant & 2) ? "/tmp" : NULL;
  p.set = (variant & 4) ? prog_set : NULL;
  p.unset = (variant & 4) ? prog_unset : NULL;
  p.tee = (variant & 8) != 0;
  return p;
}

/* /bin/true ends at once; /bin/cat (variant 2) echoes stdin until its end;
 * variant 4 looks either up in the call's PATH; a program that is not there
 * fails, and the stub is told 127. */
static int delegate(sb_conn *conn, bool missing, unsigned variant) {
  bool cat = !missing && (variant & 2);
  sb_program p;
  int r;
  memset(&p, 0, sizeof p);
  p.argv = cat ? cat_argv : true_argv;
  p.path = missing ? "/nonexistent/fuzz-program" : cat ? "/bin/cat" : "/bin/true";
  if (!missing && (variant & 4))
    p.path = NULL;
  /* The call's cwd, from the hello, may be anything: a failed spawn. */
  p.cwd = (variant & 1) ? NULL : "/";
  p.unset = true_unset;
  r = sb_conn_delegate(conn, &p);
  if (r == 0) {
    R.launched = R.prog_running = true;
    R.prog_ends = !cat;
    return 0;
  }
  CHECK(r != -EINVAL && r != -EALREADY && r != -ENOTCONN);
  return sb_conn_exit(conn, 127);
}

static int respond(sb_conn *conn, unsigned variant, uint64_t delay_ms) {
  static const int sigs[4] = {0, SIGTERM, SIGKILL, SIGINT};
  sb_response rs;
  memset(&rs, 0, sizeof rs);
  rs.out = "out\n";
  rs.out_len = (variant & 1) ? 4 : 0;
  rs.err = "err\n";
  rs.err_len = (variant & 2) ? 4 : 0;
  rs.signum = sigs[(variant >> 2) & 3];
  rs.code = (int)variant * 17;
  rs.delay_ms = delay_ms;
  return sb_conn_respond(conn, &rs);
}

static void check_call(const sb_conn *conn) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  const sb_call *c = sb_conn_call(conn);
  CHECK(c->argv[c->argc] == NULL && c->env[c->envc] == NULL);
  for (size_t i = 0; i < c->envc; i++)
    CHECK(strncmp(c->env[i], prefix, sizeof prefix - 1) != 0);
  CHECK(sb_conn_getenv(conn, SB_ENV_TOKEN) == NULL);
}

/* Writes to both streams, closes stdout; variant 1: also a write of nothing
 * (its callback still runs); 2: one bigger than max_bytes (several frames). */
static int write_some(sb_conn *conn, unsigned variant) {
  static char big[10000];
  int r;
  if ((r = sb_conn_write_copy(conn, 1, "hi\n", 3)) < 0)
    return r;
  if ((r = sb_conn_close_stream(conn, 1)) < 0)
    return r;
  CHECK(sb_conn_close_stream(conn, 1) == 0); /* closed already: nothing */
  CHECK(sb_conn_write_copy(conn, 1, "x", 1) == -EPIPE);
  if ((variant & 1) && (r = sb_conn_write(conn, 2, NULL, 0, on_written, NULL)) == 0)
    R.writes++;
  if ((variant & 2) &&
      (r = sb_conn_write(conn, 2, big, sizeof big, on_written, NULL)) == 0)
    R.writes++;
  return r;
}

/* Chooses by R.dispo; every call here must succeed (or run out of memory):
 * the connection is open and nothing was chosen yet. */
static int dispose(sb_server *server, sb_conn *conn, unsigned variant) {
  static const int sigs[4] = {SIGTERM, SIGINT, SIGHUP, SIGKILL};
  sb_program p = program(variant);
  int r;

  switch (R.dispo & 15) {
  case 0: /* the callbacks drive it */
    return 0;
  case 1:
    return sb_conn_exit(conn, (int)variant);
  case 2:
    return sb_conn_kill(conn, sigs[variant & 3]);
  case 3:
    return respond(conn, variant, 0);
  case 4:
    return respond(conn, variant, 1);
  case 5:
    R.launched = true;
    return sb_conn_exec(conn, &p);
  case 6:
    R.launched = true;
    return sb_conn_run(conn, &p);
  case 7:
    return delegate(conn, false, variant);
  case 8:
    pause_conn(conn);
    return 0;
  case 9:
    sb_conn_close(conn);
    return 0;
  case 10:
    return write_some(conn, variant);
  case 11:
    (void)server;
    close_server();
    return 0;
  case 12: /* revoked while the stub is on: it stays on */
    sb_ticket_free(R.ticket);
    R.ticket = NULL;
    CHECK(sb_conn_ticket(conn) == NULL);
    return 0;
  case 13:
    return delegate(conn, true, variant);
  case 14:
    R.launched = true;
    if ((r = sb_conn_run(conn, &p)) == 0)
      pause_conn(conn);
    return r;
  default: /* 15: exec, then nothing may be written */
    R.launched = true;
    if ((r = sb_conn_exec(conn, &p)) == 0)
      CHECK(sb_conn_write_copy(conn, 1, "x", 1) == -EPIPE);
    return r;
  }
}

static void on_connect(sb_server *server, sb_conn *conn) {
  sb_conn_callbacks cbs;
  int r;

  CHECK(conn == R.conn && ++R.connects == 1 && R.reject_cbs == 0);
  check_call(conn);
  memset(&cbs, 0, sizeof cbs);
  cbs.on_stdin = on_stdin;
  cbs.on_signal = (R.behave & BH_ON_SIGNAL) ? on_signal : NULL;
  cbs.on_stream_error = on_stream_error;
  cbs.on_close = on_close;
  cbs.on_program_output = on_program_output;
  cbs.on_program_exit = on_program_exit;
  sb_conn_set_callbacks(conn, &cbs, &R);
  r = dispose(server, conn, (unsigned)R.dispo >> 4);
  CHECK(r == 0 || r == -ENOMEM);
}

/* ---- the loop and the peer ------------------------------------------------------ */

static void collect(void) {
  for (;;) {
    if (R.out_cap - R.out_len < 65536) {
      R.out_cap = R.out_cap * 2 + 65536;
      R.out = realloc(R.out, R.out_cap);
      CHECK(R.out != NULL);
    }
    ssize_t n = read(R.peer, R.out + R.out_len, R.out_cap - R.out_len);
    if (n <= 0) {
      CHECK(n == 0 || errno == EAGAIN);
      return;
    }
    R.out_len += (size_t)n;
  }
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

static void run_nowait(void) {
  uv_run(&R.loop, UV_RUN_NOWAIT);
  if (!(R.cfg & CFG_NO_DRAIN))
    collect();
}

/* Lets the loop wait a little: delays, timeouts and a program's end. */
static void wait_a_bit(void) {
  int rounds = 0;
  /* Repeating: a tick that fired before the poll would leave it waiting for
   * I/O that never comes. */
  uv_update_time(&R.loop);
  uv_timer_start(&R.tick, on_tick, 1, 1);
  do {
    uv_run(&R.loop, UV_RUN_ONCE);
    /* A few ms: a timeout, then the linger it starts. A program ends in a
     * few ms too, once its stdin has: wait for that. */
  } while (++rounds < 3 || (R.prog_running && (R.prog_ends || R.stdin_ended) &&
                            conn_alive() && rounds < 500));
  uv_timer_stop(&R.tick);
  run_nowait();
}

/* The connection does not read now. Lift our own pause; anything else (a
 * drain of what waited, a close) is the loop's to finish. False: give up. */
static bool unstick(unsigned *stuck) {
  if (R.paused_by_us && conn_alive()) {
    int r = sb_conn_resume(R.conn);
    R.paused_by_us = false;
    CHECK(r == 0 || r == -ENOTCONN);
  }
  run_nowait();
  return ++*stuck < MAX_STUCK;
}

/* Between two pieces: the loop, and what the input chose. */
static void between(unsigned *waits) {
  uint32_t x = next_rand();
  run_nowait();
  if (R.paused_by_us && (x & 1) && conn_alive()) {
    R.paused_by_us = false;
    sb_conn_resume(R.conn);
    run_nowait();
  }
  if ((R.cfg & CFG_WAITS) && (x & 0x70) == 0 && *waits < MAX_WAITS) {
    ++*waits;
    wait_a_bit();
  }
  /* Rarely, the stub stops reading for good: writes fail (EPIPE). */
  if (((x >> 8) & 0xff) == 0x5a)
    shutdown(R.peer, SHUT_RD);
}

static size_t next_cut(size_t left) {
  uint32_t x = next_rand();
  /* Mostly small pieces, where cuts matter; now and then a big one. */
  size_t c = (x & 3) == 0 ? x % 65536 : (x & 3) == 1 ? x % 512 : x % 9 + 1;
  return c == 0 || c > left ? left : c;
}

static void feed_all(const uint8_t *p, size_t len) {
  size_t off = 0;
  unsigned stuck = 0, waits = 0;

  while (off < len && conn_alive()) {
    /* libuv never reads while bytes of an earlier read wait. */
    CHECK(!(R.conn->reading && R.conn->pend_len > 0));
    size_t took = sb__conn_feed(R.conn, p + off, next_cut(len - off));
    if (took == 0) {
      if (!unstick(&stuck))
        break;
      continue;
    }
    stuck = 0;
    off += took;
    between(&waits);
  }
  /* Before the end: a stub that is told how to end (a delay over, a program
   * ended) closes after that, not before. */
  if (R.cfg & CFG_FINAL_WAIT)
    wait_a_bit();
  if ((R.cfg & CFG_EOF) && conn_alive()) {
    int err = (R.cfg & CFG_RESET) ? UV_ECONNRESET : UV_EOF;
    stuck = 0;
    while (conn_alive() && !sb__conn_feed_end(R.conn, err) && unstick(&stuck))
      ;
    run_nowait();
  }
}

/* ---- what the supervisor wrote ----------------------------------------------- */

static void check_output(uint32_t max_bytes) {
  sb_decoder d;
  const uint8_t *p = R.out;
  size_t n = R.out_len;
  bool first = true, ended = false, hold = false, launched = false;
  bool stream_end[3] = {false, false, false};
  sb_frame f;
  sb_diag diag;
  int r;

  sb_decoder_init(&d, max_bytes);
  while ((r = sb_decoder_next(&d, &p, &n, &f, &diag)) > 0) {
    CHECK(!ended); /* nothing after reject, exit or exec */
    if (f.kind != SB_KIND_CONTROL) {
      int s = sb_kind_stream((int)f.kind);
      CHECK(!first && !hold && !launched && (s == 1 || s == 2) && !stream_end[s]);
      if (f.len == 0)
        stream_end[s] = true;
      continue;
    }
    sb_msg m;
    CHECK(!has_token(f.data, f.len));
    CHECK(sb_msg_parse(f.data, f.len, &m, &diag) == 0);
    if (first)
      CHECK(m.type == SB_MSG_WELCOME || m.type == SB_MSG_REJECT);
    else
      CHECK(m.type != SB_MSG_WELCOME && m.type != SB_MSG_REJECT);
    if (hold) /* "stdin": false promised an exec or run next */
      CHECK(m.type == SB_MSG_EXEC || m.type == SB_MSG_RUN);
    hold = m.type == SB_MSG_WELCOME && m.u.welcome.hold_stdin;
    if (m.type == SB_MSG_WELCOME)
      CHECK(m.u.welcome.version == SB_PROTOCOL_VERSION && R.connects == 1);
    /* The stub is told what the caller is. */
    if (m.type == SB_MSG_REJECT)
      CHECK(R.reject_cbs == 1 && m.u.reject.reason == R.reject_reason &&
            strcmp(m.u.reject.message, R.reject_msg) == 0);
    if (m.type == SB_MSG_RUN) {
      CHECK(!launched);
      launched = true;
    }
    ended = m.type == SB_MSG_REJECT || m.type == SB_MSG_EXIT || m.type == SB_MSG_EXEC;
    first = false;
    sb_msg_free(&m);
  }
  /* A write cancelled by the close may have gone out in part. */
  CHECK(r == 0);
  sb_decoder_free(&d);
}

/* ---- the target ---------------------------------------------------------------- */

static void on_guard(uv_timer_t *t) {
  (void)t;
  fprintf(stderr, "sb_server_close did not finish within %d ms\n", GUARD_MS);
  abort();
}

static void start(uint32_t max_bytes) {
  static const unsigned timeouts[4] = {0, 1, 3, 0};
  sb_server_options o;
  int sv[2];

  CHECK(uv_loop_init(&R.loop) == 0);
  uv_timer_init(&R.loop, &R.tick);
  uv_timer_init(&R.loop, &R.guard);
  memset(&o, 0, sizeof o);
  o.transport = SB_TRANSPORT_UNIX;
  o.handshake_timeout_ms = timeouts[R.cfg & CFG_TIMEOUT];
  o.max_bytes = max_bytes;
  o.stub_path = "/bin/true"; /* absolute: no lookup */
  o.on_connect = on_connect;
  o.on_reject = on_reject;
  o.on_event = on_event;
  CHECK(sb_server_new(&R.loop, &o, &R.server) == 0);
  CHECK(sb_ticket_new(R.server, &R.ticket) == 0);
  add_token_of(R.ticket);
  CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) == 0);
  R.peer = sv[1];
  if (R.cfg & CFG_NO_DRAIN) {
    /* A stub that never reads: small buffers, so writes queue in libuv. */
    int small = 4096;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  }
  if (sb__conn_adopt_fd(R.server, sv[0], &R.conn) != 0)
    abort();
}

static void finish(void) {
  close_server();
  /* Referenced: uv_run never returns at once with nothing done, and a close
   * that hangs ends here. */
  uv_update_time(&R.loop);
  uv_timer_start(&R.guard, on_guard, GUARD_MS, 0);
  while (!R.server_done) {
    uv_run(&R.loop, UV_RUN_ONCE);
    if (!(R.cfg & CFG_NO_DRAIN))
      collect();
  }
  uv_close((uv_handle_t *)&R.tick, NULL);
  uv_close((uv_handle_t *)&R.guard, NULL);
  uv_run(&R.loop, UV_RUN_DEFAULT);
  CHECK(uv_loop_close(&R.loop) == 0);
  collect(); /* what is left: the other end is closed, so this ends */
  close(R.peer);
}

static void check_end(void) {
  uint64_t rejected = 0;
  for (int i = 0; i <= SB_REASON_PROTOCOL; i++)
    rejected += R.stats.rejected[i];
  CHECK(R.stats.open == 0 && R.stats.accepted == 1);
  CHECK(R.stats.welcomed <= R.stats.accepted);
  CHECK(R.stats.welcomed + rejected <= R.stats.accepted);
  CHECK(R.stats.welcomed == (uint64_t)R.connects);
  CHECK(R.closes == R.connects && R.stub_exits == R.connects);
  CHECK(R.reject_cbs == (int)rejected && R.reject_events == (int)rejected);
}

/* An fd leaked per input shows as a climbing lowest free fd. */
static void check_fds(void) {
  static int first = -1;
  int fd = dup(0);
  CHECK(fd >= 0);
  close(fd);
  if (first < 0)
    first = fd;
  CHECK(fd <= first + 16);
}

static void replace_tokens(uint8_t *p, size_t n, const char *token) {
  static char ts[SB_TOKEN_HEX];
  uint8_t *at;
  memset(ts, 'T', sizeof ts);
  while ((at = memmem(p, n, ts, sizeof ts)) != NULL) {
    memcpy(at, token, SB_TOKEN_HEX);
    n -= (size_t)(at - p) + SB_TOKEN_HEX;
    p = at + SB_TOKEN_HEX;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint32_t max_bytes;
  uint8_t *in;
  size_t len;

  if (size < HEADER)
    return -1; /* not an input: keep it out of the corpus */
  check_fds();
  free(R.out);
  memset(&R, 0, sizeof R);
  R.cfg = data[0];
  R.dispo = data[1];
  R.behave = data[2];
  R.rng = ((uint32_t)data[3] << 8 | data[4]) + 1;
  max_bytes = (R.cfg & CFG_SMALL_MAX) ? SB_MIN_MAX_BYTES : SB_DEFAULT_MAX_BYTES;

  start(max_bytes);
  len = size - HEADER;
  in = malloc(len + 1);
  CHECK(in != NULL);
  memcpy(in, data + HEADER, len);
  replace_tokens(in, len, R.tokens[0]);

  feed_all(in, len);
  finish();
  check_end();
  check_output(max_bytes);
  free(in);
  free(R.out);
  R.out = NULL;
  return 0;
}
