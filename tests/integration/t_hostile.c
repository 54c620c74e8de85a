/* SPDX-License-Identifier: MIT */
/* Hostile peers, slow peers, floods and leaks (issue 7): each hostile input is
 * refused with the right reason and counted while ten honest stubs stream
 * 16 MiB each through the same supervisor and all finish intact; slow and
 * deaf peers cannot stall the loop; floods leave no fd behind; the token is
 * reported nowhere. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness.h"

#include "../helpers/stream.h"

#include <criterion/logging.h>
#include <criterion/parameterized.h>

TestSuite(hostile, .timeout = 120);

#define STREAM_BYTES (16ull * 1024 * 1024)
#define CHUNK (256 * 1024)
#define SLOTS 4

#if defined(__SANITIZE_ADDRESS__)
#define SB_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SB_ASAN 1
#endif
#endif

/* ---- honest stubs: checksummed streams, held at half way on a gate -------- */

/* Streams `total` bytes of the stream of seed to one stub, then exit 0. With
 * a gate, it stops at half way until the gate opens, so what the test does
 * meanwhile happens while every honest stream is in the middle. */
typedef struct gsrc {
  tstream g;
  uint64_t total, sent;
  unsigned in_flight, next;
  const bool *gate; /* NULL: no gate */
  bool exited;
  sb_conn *conn;
  uint8_t buf[SLOTS][CHUNK];
} gsrc;

static void gsrc_pump(gsrc *s);

static void gsrc_written(sb_conn *c, int status, void *data) {
  (void)c;
  gsrc *s = data;
  cr_assert_eq(status, 0, "an honest write failed: %s", sb_strerror(status));
  s->in_flight--;
  gsrc_pump(s);
}

static void gsrc_pump(gsrc *s) {
  while (s->sent < s->total && s->in_flight < SLOTS) {
    if (s->gate && !*s->gate && s->sent >= s->total / 2)
      return;
    uint64_t left = s->total - s->sent;
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    uint8_t *b = s->buf[s->next++ % SLOTS];
    tstream_fill(&s->g, b, n);
    s->sent += n;
    s->in_flight++;
    int r = sb_conn_write(s->conn, 1, b, n, gsrc_written, s);
    cr_assert_eq(r, 0, "sb_conn_write: %s", sb_strerror(r));
  }
  if (s->sent == s->total && s->in_flight == 0 && !s->exited) {
    s->exited = true;
    cr_assert_eq(sb_conn_exit(s->conn, 0), 0);
  }
}

#define MAX_HONEST 10

/* Per-test state (each Criterion test is its own process). */
typedef struct fleet {
  unsigned n; /* honest stubs */
  bool gate;  /* open: the honest streams may finish */
  gsrc *src[MAX_HONEST];
  h_exit ex[MAX_HONEST];
  /* the other connections */
  void (*other)(harness *h, sb_conn *c);
  unsigned events_reject[SB_REASON_PROTOCOL + 1];
} fleet;

static fleet F;

static bool is_honest(const sb_call *call) {
  return call->argc >= 3 && strcmp(call->argv[1], "honest") == 0;
}

static void fleet_connect(harness *h, sb_conn *c) {
  const sb_call *call = sb_conn_call(c);
  if (!is_honest(call)) {
    cr_assert_not_null(F.other, "an unexpected peer was welcomed (argv[0] %s)",
                       call->argc ? call->argv[0] : "?");
    F.other(h, c);
    return;
  }
  unsigned i = (unsigned)atoi(call->argv[2]);
  cr_assert_lt(i, F.n);
  cr_assert_null(F.src[i]->conn, "honest stub %u connected twice", i);
  F.src[i]->conn = c;
  gsrc_pump(F.src[i]);
}

static void fleet_event(sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_STUB_REJECT && ev->reason >= 1 &&
      ev->reason <= SB_REASON_PROTOCOL)
    F.events_reject[ev->reason]++;
}

static void fleet_start(harness *h, unsigned n, bool gated) {
  unsigned base = h->connects;
  F.n = n;
  h->on_connect = fleet_connect;
  for (unsigned i = 0; i < n; i++) {
    gsrc *s = calloc(1, sizeof *s);
    cr_assert_not_null(s);
    tstream_init(&s->g, 1000 + i);
    s->total = STREAM_BYTES;
    s->gate = gated ? &F.gate : NULL;
    F.src[i] = s;
    char script[512], name[16];
    snprintf(name, sizeof name, "sum%u", i);
    int out = h_create(h, name);
    snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" honest %u | '%s'", i,
             HELPER_SUM);
    h_sh(h, script, out, 0, &F.ex[i]);
    close(out);
  }
  h_wait_count(h, &h->connects, base + n, "the honest stubs to connect");
}

/* Opens the gate and checks that every honest stream arrived whole. */
static void fleet_finish(harness *h) {
  F.gate = true;
  for (unsigned i = 0; i < F.n; i++)
    gsrc_pump(F.src[i]);
  for (unsigned i = 0; i < F.n; i++) {
    h_wait_exit(h, &F.ex[i]);
    cr_assert_eq(F.ex[i].status, 0, "honest pipeline %u ended %lld", i,
                 (long long)F.ex[i].status);
    char name[16], want[64];
    snprintf(name, sizeof name, "sum%u", i);
    h_source_expect(STREAM_BYTES, 1000 + i, want);
    char *got = h_read(h, name, NULL);
    cr_assert_str_eq(got, want, "honest stream %u was disturbed", i);
    free(got);
    free(F.src[i]);
    F.src[i] = NULL;
  }
}

/* Runs rawpeer MODE (extra env may be NULL), waits for it, returns what it
 * printed on stdout (the caller frees). Its stderr (a flood's count) is
 * shown only when it fails. */
static char *run_rawpeer(harness *h, const char *mode, char *const *env, h_exit *ex) {
  char *args[] = {HELPER_RAWPEER, (char *)mode, NULL};
  int out = h_create(h, "peer"), err = h_create(h, "peer.err");
  h_spawn(h, &(h_spawn_opts){.args = args, .env = env, .out = out, .err = err}, ex);
  close(out);
  close(err);
  h_wait_exit(h, ex);
  if (ex->status != 0) {
    char *said = h_read(h, "peer.err", NULL);
    cr_assert_fail("rawpeer %s failed (%lld): %s", mode, (long long)ex->status, said);
  }
  return h_read(h, "peer", NULL);
}

static void token_of(sb_child *child, char out[SB_TOKEN_HEX + 1]) {
  out[0] = '\0';
  for (char *const *e = sb_ticket_env(sb_child_ticket(child)); *e; e++)
    if (strncmp(*e, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) == 0)
      snprintf(out, SB_TOKEN_HEX + 1, "%s", *e + sizeof SB_ENV_TOKEN);
  cr_assert_eq(strlen(out), SB_TOKEN_HEX, "no token in the ticket's env");
}

/* ---- 1. hostile input while ten honest stubs stream ---------------------- */

typedef struct hostile {
  char mode[16];
  char answer[16];       /* what rawpeer must print; "" for either of the reasons */
  sb_reason reason, alt; /* the reason counted (or alt, when not 0) */
} hostile;

ParameterizedTestParameters(hostile, input_while_ten_stubs_stream) {
  static hostile cases[] = {
      {"badtoken", "bad_token\n", SB_REASON_BAD_TOKEN, 0},
      {"revoked", "bad_token\n", SB_REASON_BAD_TOKEN, 0},
      {"badversion", "version\n", SB_REASON_VERSION, 0},
      {"silent", "timeout\n", SB_REASON_TIMEOUT, 0},
      {"oversize", "too_large\n", SB_REASON_TOO_LARGE, 0},
      {"garbage", "too_large\n", SB_REASON_TOO_LARGE, 0},
      {"badjson", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"shorttoken", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"zerolen", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"maxlen", "too_large\n", SB_REASON_TOO_LARGE, 0},
      {"badutf8", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"deepjson", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"datafirst", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"unknownkind", "protocol\n", SB_REASON_PROTOCOL, 0},
      {"flood", "", SB_REASON_TOO_LARGE, SB_REASON_PROTOCOL},
  };
  return cr_make_param_array(hostile, cases, sizeof cases / sizeof cases[0]);
}

static void brief_exit(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

ParameterizedTest(hostile *c, hostile, input_while_ten_stubs_stream) {
  harness h;
  /* The default handshake timeout (10 s; "silent" waits for it): at 2 s, an
   * honest stub of a loaded ASan run was once refused between its accept
   * and its hello, and the test failed for it. */
  h_init(&h, &(sb_server_options){.on_event = fleet_event});
  fleet_start(&h, MAX_HONEST, true);
  char env_token[SB_TOKEN_HEX + 32] = "";
  const char *mode = c->mode;
  if (strcmp(c->mode, "revoked") == 0) {
    /* A real token, of a child that has ended since. */
    F.other = brief_exit;
    char *args[] = {H_STUB, "brief", NULL};
    h_exit ex;
    sb_child *child = h_spawn(&h, &(h_spawn_opts){.args = args}, &ex);
    char tok[SB_TOKEN_HEX + 1];
    token_of(child, tok);
    h_wait_exit(&h, &ex);
    cr_assert_eq(ex.status, 0, "the brief child ended %lld", (long long)ex.status);
    snprintf(env_token, sizeof env_token, "RAWPEER_TOKEN=%s", tok);
    F.other = NULL;
    mode = "envtoken";
  }
  sb_server_stats before;
  sb_server_stats_get(h.server, &before);
  char *env[] = {env_token, NULL};
  h_exit peer;
  char *said = run_rawpeer(&h, mode, env_token[0] ? env : NULL, &peer);
  if (c->answer[0])
    cr_assert_str_eq(said, c->answer, "%s: the supervisor answered %s", c->mode, said);
  else
    cr_assert(strcmp(said, "too_large\n") == 0 || strcmp(said, "protocol\n") == 0 ||
                  strcmp(said, "closed\n") == 0,
              "%s: the supervisor answered %s", c->mode, said);
  free(said);
  /* The reject may be counted after the peer has already gone. */
  unsigned want_total = 1;
  h_wait_count(&h, &h.reject_total, want_total, "the reject to be counted");
  unsigned got = h.rejects[c->reason] + (c->alt ? h.rejects[c->alt] : 0);
  cr_assert_eq(got, 1, "%s: counted %u times as %s", c->mode, got,
               sb_reason_name(c->reason));
  cr_assert_eq(h.reject_total, 1, "%s: %u rejects", c->mode, h.reject_total);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  uint64_t sgot = st.rejected[c->reason] - before.rejected[c->reason];
  if (c->alt)
    sgot += st.rejected[c->alt] - before.rejected[c->alt];
  cr_assert_eq(sgot, 1, "%s: stats count %llu", c->mode, (unsigned long long)sgot);
  unsigned egot = F.events_reject[c->reason] + (c->alt ? F.events_reject[c->alt] : 0);
  cr_assert_eq(egot, 1, "%s: %u STUB_REJECT events", c->mode, egot);
  cr_assert_eq(st.welcomed - before.welcomed, 0, "%s: a hostile peer was welcomed",
               c->mode);
  fleet_finish(&h);
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.lost, 0, "an honest connection was lost");
  h_fini(&h);
}

static sb_close_reason twice_closed;
static bool twice_done;

static void twice_close(sb_conn *c, sb_close_reason reason, int err) {
  (void)c, (void)err;
  twice_closed = reason;
  twice_done = true;
}

static void twice_connect(harness *h, sb_conn *c) {
  (void)h;
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_close = twice_close}, NULL);
}

/* Hello twice: the first is welcomed, the second closes that connection as
 * a protocol error (not a reject: it was welcomed), and nothing else. */
Test(hostile, hello_twice_while_ten_stubs_stream) {
  harness h;
  h_init(&h, &(sb_server_options){.on_event = fleet_event});
  fleet_start(&h, MAX_HONEST, true);
  F.other = twice_connect;
  h_exit peer;
  char *said = run_rawpeer(&h, "hellotwice", NULL, &peer);
  free(said);
  h_wait(&h, &twice_done, "the twice-greeting peer to be closed");
  cr_assert_eq(twice_closed, SB_CLOSE_PROTOCOL, "closed as %s",
               sb_close_reason_name(twice_closed));
  cr_assert_eq(h.reject_total, 0);
  fleet_finish(&h);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.lost, 0, "an honest connection was lost");
  cr_assert_eq(st.welcomed, MAX_HONEST + 1);
  h_fini(&h);
}

/* ---- 2. slow peers ------------------------------------------------------- */

static uint64_t reject_ts_ns;
static sb_reason reject_reason;

static void note_reject(sb_server *s, const sb_event *ev) {
  (void)s;
  if (ev->type == SB_EVENT_STUB_REJECT) {
    reject_ts_ns = ev->ts_ns;
    reject_reason = ev->reason;
  }
}

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(hostile, a_peer_dripping_its_hello_is_dropped_at_the_handshake_timeout) {
  harness h;
  h_init(&h, &(sb_server_options){.handshake_timeout_ms = 300, .on_event = note_reject});
  h.on_connect = NULL; /* a welcome fails the test */
  uint64_t start = realtime_ns();
  h_exit peer;
  char *said = run_rawpeer(&h, "drip", NULL, &peer);
  cr_assert_str_eq(said, "timeout\n", "the dripping peer was answered %s", said);
  free(said);
  h_wait_count(&h, &h.reject_total, 1, "the reject");
  cr_assert_eq(h.rejects[SB_REASON_TIMEOUT], 1);
  cr_assert_eq(reject_reason, SB_REASON_TIMEOUT);
  double after = (double)(reject_ts_ns - start) / 1e6;
  cr_log_info("drip: dropped %.0f ms after the spawn (timeout 300 ms)", after);
  /* The hello takes ~25 s at this pace and 50 bytes of it 5 s: a drop near
   * 300 ms shows each byte did not restart the clock. */
  const char *sc = getenv("SB_TEST_TIMEOUT_SCALE");
  double limit = 2000.0 * (sc && atof(sc) > 1 ? atof(sc) : 1.0);
  cr_assert_lt(after, limit, "dropped only after %.0f ms", after);
  cr_assert_geq(after, 290.0, "dropped before the timeout (%.0f ms)", after);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.rejected[SB_REASON_TIMEOUT], 1);
  h_wait_open(&h, 0);
  h_fini(&h);
}

/* The deaf peer: everything written to it, and what became of it. */
#define DEAF_CHUNK (1024 * 1024)
#define DEAF_WRITES 64

typedef struct deaf {
  sb_conn *conn;
  sb_child *child;
  uint64_t written, completed, dropped;
  unsigned callbacks;
  bool closed;
  sb_close_reason why;
} deaf;

static deaf D;
static uint8_t deaf_buf[DEAF_CHUNK];

static void deaf_written(sb_conn *c, int status, void *data) {
  (void)c, (void)data;
  D.callbacks++;
  if (status == 0)
    D.completed += DEAF_CHUNK;
  else
    D.dropped += DEAF_CHUNK;
}

static void deaf_close(sb_conn *c, sb_close_reason why, int err) {
  (void)c, (void)err;
  D.closed = true;
  D.why = why;
}

static void deaf_connect(harness *h, sb_conn *c) {
  (void)h;
  const sb_call *call = sb_conn_call(c);
  cr_assert(call->argc > 0 && strcmp(call->argv[0], "rawpeer") == 0);
  D.conn = c;
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_close = deaf_close}, NULL);
  for (int i = 0; i < DEAF_WRITES; i++) {
    cr_assert_eq(sb_conn_write(c, 1, deaf_buf, DEAF_CHUNK, deaf_written, NULL), 0);
    D.written += DEAF_CHUNK;
    cr_assert_eq(sb_conn_queued(c), D.written - D.completed - D.dropped,
                 "queued %zu after writing %llu", sb_conn_queued(c),
                 (unsigned long long)D.written);
  }
}

static size_t rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  cr_assert_not_null(f);
  unsigned long size = 0, rss = 0;
  cr_assert_eq(fscanf(f, "%lu %lu", &size, &rss), 2);
  fclose(f);
  return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

/* Bytes malloc has handed out and not had back (glibc's count). */
static size_t heap_in_use(void) {
  return mallinfo2().uordblks;
}

#ifndef SB_ASAN /* ASan's allocator is not glibc's: nothing to count */
/* RSS hides a small leak in the allocator's slack (a 40-byte string lost
 * per cycle grew it by 524 KiB only); the heap in use does not. Allowed:
 * 64 KiB for caches that fill up to a bound (the server keeps up to 256
 * write requests for reuse; a burst of rejects fills it: +24-33 KB over
 * 10,000 churn cycles here), and under 4 bytes a cycle, which no allocation
 * made per cycle can hide under. */
static void assert_heap_flat(long growth, long cycles) {
  long bound = 64 * 1024 + cycles * 4;
  cr_assert_lt(growth, bound,
               "the heap in use grew %ld bytes over %ld cycles (bound %ld)", growth,
               cycles, bound);
}
#endif

Test(hostile, a_peer_that_never_reads_does_not_stall_the_loop) {
  harness h;
  h_init(&h, NULL);
  memset(&D, 0, sizeof D);
  F.other = deaf_connect;
  h_exit deaf_ex;
  char *args[] = {HELPER_RAWPEER, "deaf", NULL};
  int out = h_create(&h, "deaf");
  D.child = h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &deaf_ex);
  close(out);
  h.on_connect = fleet_connect;
  F.n = 0;
  h_wait_count(&h, &h.connects, 1, "the deaf peer to connect");
  size_t rss0 = rss_bytes();
  /* Meanwhile, an honest stub streams 16 MiB through the same loop. */
  fleet_start(&h, 1, false);
  fleet_finish(&h);
  size_t rss1 = rss_bytes();
  size_t queued = sb_conn_queued(D.conn);
  cr_log_info(
      "deaf peer: %llu MiB written, %llu MiB taken by the kernel, %zu MiB queued; "
      "RSS %+ld KiB while the honest stub streamed",
      (unsigned long long)(D.written >> 20), (unsigned long long)(D.completed >> 20),
      queued >> 20, ((long)rss1 - (long)rss0) / 1024);
  cr_assert_not(D.closed, "the deaf peer's connection closed by itself");
  cr_assert_eq(queued, D.written - D.completed,
               "queued %zu, written %llu, completed %llu", queued,
               (unsigned long long)D.written, (unsigned long long)D.completed);
  /* What left the queue can only be what the socket buffers hold: a library
   * that copied and called back early would show (nearly) all of it done. */
  cr_assert_leq(D.completed, 16ull << 20,
                "%llu MiB reported written to a peer that reads "
                "nothing",
                (unsigned long long)(D.completed >> 20));
  cr_assert_gt(queued, (uint64_t)(DEAF_WRITES - 16) * DEAF_CHUNK);
  /* Closing it frees it: every callback runs, open goes back to 0. */
  sb_conn_close(D.conn);
  h_wait(&h, &D.closed, "the deaf connection to close");
  cr_assert_eq(D.why, SB_CLOSE_SERVER);
  cr_assert_eq(D.callbacks, DEAF_WRITES, "%u of %d write callbacks ran", D.callbacks,
               DEAF_WRITES);
  cr_assert_eq(D.completed + D.dropped, D.written);
  h_wait_open(&h, 0);
  sb_child_kill(D.child, SIGKILL);
  h_wait_exit(&h, &deaf_ex);
  h_fini(&h);
}

/* ---- 3. floods ----------------------------------------------------------- */

/* After a reject the server reads what the peer still sends (so the reject
 * frame is not lost to a reset) for at most 1 s and 1 MiB. A peer sending
 * 100 MB as fast as it can must get no further than that, plus what the
 * kernel queues for it (its send buffer: a Unix socket has no receive
 * buffer of its own) and the server's reads that crossed the bound (two of
 * at most 64 KiB: the one that found the bad frame, the one past 1 MiB).
 * Unbounded, a 1 s drain takes tens of MB here. */
Test(hostile, a_flood_after_a_reject_is_drained_at_most_1_MiB) {
  harness h;
  h_init(&h, &(sb_server_options){.transport = SB_TRANSPORT_UNIX});
  h.on_connect = NULL; /* a welcome fails the test */
  char *args[] = {HELPER_RAWPEER, "flood", NULL};
  int out = h_create(&h, "peer"), err = h_create(&h, "sent");
  h_exit peer;
  h_spawn(&h, &(h_spawn_opts){.args = args, .out = out, .err = err}, &peer);
  close(out);
  close(err);
  h_wait_exit(&h, &peer);
  cr_assert_eq(peer.status, 0, "rawpeer flood failed (%lld)", (long long)peer.status);
  char *said = h_read(&h, "peer", NULL), *sent_line = h_read(&h, "sent", NULL);
  unsigned long long sent = 0;
  int sndbuf = 0;
  cr_assert_eq(sscanf(sent_line, "sent %llu sndbuf %d", &sent, &sndbuf), 2, "%s",
               sent_line);
  cr_log_info("flood: %llu bytes taken, SO_SNDBUF %d, answered %s", sent, sndbuf, said);
  unsigned long long bound = 1024ull * 1024 + (unsigned long long)sndbuf + 2 * 65536;
  cr_assert_leq(sent, bound, "the server took %llu bytes of a rejected peer (bound %llu)",
                sent, bound);
  cr_assert(strcmp(said, "too_large\n") == 0 || strcmp(said, "protocol\n") == 0,
            "the flood was answered %s", said);
  free(said);
  free(sent_line);
  h_wait_count(&h, &h.reject_total, 1, "the reject");
  h_wait_open(&h, 0);
  h_fini(&h);
}

Test(hostile, connections_over_the_maximum_are_refused_busy_while_sessions_go_on) {
  harness h;
  h_init(&h, &(sb_server_options){.max_connections = 4, .on_event = fleet_event});
  fleet_start(&h, 4, true);
  enum { EXTRA = 6 };
  for (int i = 0; i < EXTRA; i++) {
    h_exit peer;
    char *said = run_rawpeer(&h, "silent", NULL, &peer);
    cr_assert_str_eq(said, "busy\n", "extra connection %d was answered %s", i, said);
    free(said);
  }
  h_wait_count(&h, &h.reject_total, EXTRA, "the busy rejects");
  cr_assert_eq(h.rejects[SB_REASON_BUSY], EXTRA);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.rejected[SB_REASON_BUSY], EXTRA);
  cr_assert_eq(F.events_reject[SB_REASON_BUSY], EXTRA);
  cr_assert_eq(st.welcomed, 4);
  h_wait_open(&h, 4); /* the refused ones close; the 4 sessions stay */
  fleet_finish(&h);
  h_fini(&h);
}

static unsigned count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  cr_assert_not_null(d);
  unsigned n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own */
}

static void fd_list(char *out, size_t cap) {
  DIR *d = opendir("/proc/self/fd");
  size_t off = 0;
  struct dirent *e;
  out[0] = '\0';
  while (d && (e = readdir(d)) != NULL && off + 300 < cap) {
    if (e->d_name[0] == '.')
      continue;
    char p[300], t[256] = "";
    snprintf(p, sizeof p, "/proc/self/fd/%s", e->d_name);
    ssize_t k = readlink(p, t, sizeof t - 1);
    t[k > 0 ? k : 0] = '\0';
    off += (size_t)snprintf(out + off, cap - off, "%s->%s ", e->d_name, t);
  }
  if (d)
    closedir(d);
}

ParameterizedTestParameters(hostile, connect_close_cycles_leave_nothing_behind) {
  static sb_transport tr[] = {SB_TRANSPORT_TCP, SB_TRANSPORT_UNIX};
  return cr_make_param_array(sb_transport, tr, 2);
}

ParameterizedTest(sb_transport *tr, hostile, connect_close_cycles_leave_nothing_behind,
                  .timeout = 300) {
  /* Issue 7: 1,000 cycles a second for 10 s; rawpeer runs them as fast as it
   * can (several thousand a second here), which is harder. */
  enum { CYCLES = 10000 };
  harness h;
  /* 10,000 TCP cycles took 3-17 s here on a quiet host, and over 60 s under
   * ASan on a host loaded by other builds: give the waits 10x the usual
   * deadline (this test's process only). What it asserts is what is left
   * behind, not how fast. */
  setenv("SB_TEST_TIMEOUT_SCALE", "10", 0);
  h_init(&h, &(sb_server_options){.transport = *tr});
  h.on_connect = NULL;
  /* One cycle first: libuv opens a reserve fd the first time a stream is
   * made on a loop (the server's first connection), once per loop. */
  char *warm_env[] = {"RAWPEER_COUNT=1", NULL};
  h_exit warm;
  free(run_rawpeer(&h, "churn", warm_env, &warm));
  h_wait_count(&h, &h.reject_total, 1, "the warm-up cycle");
  h_wait_open(&h, 0);
  sb_server_stats st0;
  sb_server_stats_get(h.server, &st0);
  unsigned fd0 = count_fds();
  size_t rss0 = rss_bytes(), heap0 = heap_in_use();
  char before[4096];
  fd_list(before, sizeof before);
  char *env[] = {"RAWPEER_COUNT=10000", NULL};
  h_exit peer;
  char *said = run_rawpeer(&h, "churn", env, &peer);
  cr_assert_str_eq(said, "churned 10000\n", "the churn was cut short: %s", said);
  free(said);
  /* Every cycle ends as a reject (a close before hello counts as protocol,
   * or busy when many were pending at once). */
  h_wait_count(&h, &h.reject_total, 1 + CYCLES, "every cycle to be processed");
  h_wait_open(&h, 0);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  unsigned fd1 = count_fds();
  long growth = (long)rss_bytes() - (long)rss0;
  long heap_growth = (long)heap_in_use() - (long)heap0;
  char after[4096];
  fd_list(after, sizeof after);
  cr_log_info("%s churn: %d cycles, accepted %llu, protocol %llu, busy %llu, open %u; "
              "fds %u before, %u after; RSS %+ld KiB, heap in use %+ld bytes",
              *tr == SB_TRANSPORT_TCP ? "tcp" : "unix", CYCLES,
              (unsigned long long)st.accepted,
              (unsigned long long)st.rejected[SB_REASON_PROTOCOL],
              (unsigned long long)st.rejected[SB_REASON_BUSY], st.open, fd0, fd1,
              growth / 1024, heap_growth);
  cr_assert_eq(st.accepted - st0.accepted, CYCLES);
  cr_assert_eq(st.open, 0, "%u connections still open", st.open);
  cr_assert_eq(fd1, fd0, "fds before: %s\nafter: %s", before, after);
  cr_assert_eq(st.welcomed, 0);
#ifndef SB_ASAN
  /* Freed connections may stay in the allocator's free lists, not grow. */
  cr_assert_lt(growth, 4l << 20, "RSS grew %ld KiB over %d cycles", growth / 1024,
               CYCLES);
  assert_heap_flat(heap_growth, CYCLES);
#endif
  h_fini(&h);
}

/* ---- 4. leaks: stub cycles ----------------------------------------------- */

static void exit_zero(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

static void stub_cycles(harness *h, unsigned n) {
  char *args[] = {H_STUB, "cycle", NULL};
  for (unsigned i = 0; i < n; i++) {
    h_exit ex;
    h_spawn(h, &(h_spawn_opts){.args = args}, &ex);
    h_wait_exit(h, &ex);
    cr_assert_eq(ex.status, 0, "cycle %u: status %lld", i, (long long)ex.status);
  }
}

Test(hostile, ten_thousand_stub_cycles_leave_fds_and_rss_flat, .timeout = 300) {
  enum { WARM = 100, CYCLES = 10000 };
  harness h;
  h_init(&h, NULL);
  h.on_connect = exit_zero;
  stub_cycles(&h, WARM); /* let the allocator and libuv reach their steady state */
  /* The connection of the last cycle may still be closing: wait on stats. */
  h_wait_open(&h, 0);
  unsigned fd0 = count_fds();
  size_t rss0 = rss_bytes(), heap0 = heap_in_use();
  stub_cycles(&h, CYCLES);
  h_wait_open(&h, 0);
  unsigned fd1 = count_fds();
  size_t rss1 = rss_bytes(), heap1 = heap_in_use();
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  long growth = (long)rss1 - (long)rss0;
  long heap_growth = (long)heap1 - (long)heap0;
  cr_log_info("stub cycles: %d after %d warm-up; fds %u -> %u; RSS %zu KiB -> %zu KiB "
              "(%+ld KiB); heap in use %+ld bytes; welcomed %llu, open %u",
              CYCLES, WARM, fd0, fd1, rss0 / 1024, rss1 / 1024, growth / 1024,
              heap_growth, (unsigned long long)st.welcomed, st.open);
  cr_assert_eq(h.connects, WARM + CYCLES);
  cr_assert_eq(fd1, fd0, "fds: %u before, %u after", fd0, fd1);
#ifndef SB_ASAN
  cr_assert_lt(growth, 4l << 20, "RSS grew %ld KiB over %d cycles", growth / 1024,
               CYCLES);
  assert_heap_flat(heap_growth, CYCLES);
#endif
  h_fini(&h);
}

/* ---- 5. the token is reported nowhere ------------------------------------ */

#define MAX_TOKENS 64

typedef struct leakcheck {
  harness *h;
  sb_server *server;
  char tokens[MAX_TOKENS][SB_TOKEN_HEX + 1];
  unsigned ntokens;
  char *log; /* every event as JSON, every reject message, every conn's call */
  size_t loglen, logcap;
  unsigned connects, events, rejects;
  bool closed;
} leakcheck;

static leakcheck L;

static void log_add(const char *what, const char *s, size_t len) {
  size_t need = L.loglen + strlen(what) + len + 3;
  if (need > L.logcap) {
    L.logcap = need * 2;
    L.log = realloc(L.log, L.logcap);
    cr_assert_not_null(L.log);
  }
  L.loglen += (size_t)sprintf(L.log + L.loglen, "%s:", what);
  memcpy(L.log + L.loglen, s, len);
  L.loglen += len;
  L.log[L.loglen++] = '\n';
  L.log[L.loglen] = '\0';
}

static void log_str(const char *what, const char *s) {
  if (s)
    log_add(what, s, strlen(s));
}

static void add_token(const char *t) {
  cr_assert_lt(L.ntokens, MAX_TOKENS);
  cr_assert_eq(strlen(t), SB_TOKEN_HEX, "token %s", t);
  snprintf(L.tokens[L.ntokens++], SB_TOKEN_HEX + 1, "%s", t);
}

static void leak_event(sb_server *s, const sb_event *ev) {
  (void)s;
  L.events++;
  char *json = NULL;
  cr_assert_eq(sb_event_to_json(ev, &json), 0);
  log_str("event", json);
  log_str("event.message", ev->message);
  free(json);
}

static void leak_reject(sb_server *s, const sb_reject_info *info) {
  (void)s;
  L.rejects++;
  log_str("reject", sb_reason_name(info->reason));
  log_str("reject.message", info->message);
}

static void leak_stdin(sb_conn *c, const char *buf, size_t len) {
  (void)c, (void)buf, (void)len;
}

static void leak_connect(sb_server *s, sb_conn *c) {
  (void)s;
  L.connects++;
  const sb_call *call = sb_conn_call(c);
  for (size_t i = 0; i < call->argc; i++)
    log_str("argv", call->argv[i]);
  for (size_t i = 0; i < call->envc; i++)
    log_str("env", call->env[i]);
  log_str("cwd", call->cwd);
  log_str("exe", call->exe);
  cr_assert_null(sb_conn_getenv(c, SB_ENV_TOKEN), "sb_conn_getenv handed out the token");
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_stdin = leak_stdin}, NULL);
  /* What the stub is told depends on its first argument. */
  if (call->argc > 1 && strcmp(call->argv[1], "drop") == 0)
    sb_conn_close(c); /* the stub fails with its one stderr line */
  else
    cr_assert_eq(
        sb_conn_exit(c, call->argc > 1 && strcmp(call->argv[1], "three") == 0 ? 3 : 0),
        0);
}

static void leak_exit(sb_child *c, int64_t status, int sig) {
  h_exit *ex = sb_child_data(c);
  ex->done = true;
  ex->status = status;
  ex->signal = sig;
}

static void leak_closed(sb_server *s) {
  (void)s;
  L.closed = true;
}

/* Spawns `sh -c script` through the test's own server, stdout and stderr to
 * files of the temp dir; remembers the child's token. */
static sb_child *leak_spawn(const char *script, const char *out, const char *err,
                            const sb_spawn_options *extra, h_exit *ex) {
  char *args[] = {"/bin/sh", "-c", (char *)script, NULL};
  memset(ex, 0, sizeof *ex);
  sb_spawn_options o = {0};
  if (extra)
    o = *extra;
  o.file = "/bin/sh";
  o.args = args;
  o.stdio[0] = (sb_stdio){SB_STDIO_FD, .fd = L.h->devnull};
  o.stdio[1] = (sb_stdio){SB_STDIO_FILE, .path = h_path(L.h, out)};
  o.stdio[2] = (sb_stdio){SB_STDIO_FILE, .path = h_path(L.h, err)};
  o.on_exit = leak_exit;
  o.data = ex;
  sb_child *c = NULL;
  int r = sb_spawn(L.server, &o, &c);
  cr_assert_eq(r, 0, "sb_spawn: %s", sb_strerror(r));
  char tok[SB_TOKEN_HEX + 1];
  token_of(c, tok);
  add_token(tok);
  return c;
}

/* Fails if any token, or either half of one, is in text. */
static void assert_no_token(const char *where, const char *text) {
  for (unsigned i = 0; i < L.ntokens; i++) {
    char half[SB_TOKEN_HEX / 2 + 1];
    cr_assert_null(strstr(text, L.tokens[i]), "%s holds token %u", where, i);
    /* Halves copied by length: a truncating snprintf would draw a warning. */
    memcpy(half, L.tokens[i], SB_TOKEN_HEX / 2);
    half[SB_TOKEN_HEX / 2] = '\0';
    cr_assert_null(strstr(text, half), "%s holds the first half of token %u", where, i);
    memcpy(half, L.tokens[i] + SB_TOKEN_HEX / 2, SB_TOKEN_HEX / 2);
    cr_assert_null(strstr(text, half), "%s holds the second half of token %u", where, i);
  }
}

static void assert_file_has_no_token(harness *h, const char *name) {
  char *text = h_read(h, name, NULL);
  assert_no_token(name, text);
  free(text);
}

Test(hostile, no_token_is_reported_anywhere, .timeout = 120) {
  harness h;
  h_init(&h, NULL); /* its own server carries the CLI run below */
  memset(&L, 0, sizeof L);
  L.h = &h;
  int r = sb_server_new(&h.loop,
                        &(sb_server_options){.on_connect = leak_connect,
                                             .on_reject = leak_reject,
                                             .on_event = leak_event,
                                             .stub_path = H_STUB,
                                             .handshake_timeout_ms = 500},
                        &L.server);
  cr_assert_eq(r, 0, "sb_server_new: %s", sb_strerror(r));

  enum { N = 7 };
  h_exit ex[N];
  char revoked[SB_TOKEN_HEX + 1];
  /* 0: a stub welcomed and told to exit 3, then its token used again later. */
  leak_spawn("\"$SOCKETBRIDGE_STUB\" three a b", "o0", "e0", NULL, &ex[0]);
  snprintf(revoked, sizeof revoked, "%s", L.tokens[0]);
  h_wait_exit(&h, &ex[0]);
  cr_assert_eq(ex[0].status, 3);
  /* 1: a stub whose bridge is dropped: its one stderr line. */
  leak_spawn("\"$SOCKETBRIDGE_STUB\" drop", "o1", "e1", NULL, &ex[1]);
  /* 2: a stub presenting the revoked token: rejected, bad_token. */
  char script[1024];
  snprintf(script, sizeof script, "SOCKETBRIDGE_TOKEN=%s \"$SOCKETBRIDGE_STUB\" x",
           revoked);
  leak_spawn(script, "o2", "e2", NULL, &ex[2]);
  /* 3: a stub given its own token less a digit: a malformed variable. */
  leak_spawn("SOCKETBRIDGE_TOKEN=${SOCKETBRIDGE_TOKEN%?} \"$SOCKETBRIDGE_STUB\" x", "o3",
             "e3", NULL, &ex[3]);
  /* 4: rawpeers presenting a truncated and a revoked token. */
  snprintf(script, sizeof script, "'%s' shorttoken; RAWPEER_TOKEN=%s '%s' envtoken",
           HELPER_RAWPEER, revoked, HELPER_RAWPEER);
  leak_spawn(script, "o4", "e4", NULL, &ex[4]);
  /* 5: a child past its deadline, stopped: TIMEOUT and STOP events. */
  leak_spawn("exec sleep 30", "o5", "e5", &(sb_spawn_options){.timeout_ms = 50}, &ex[5]);
  /* 6: a failing child restarted once: BACKOFF, RESTART, GIVE_UP events. */
  leak_spawn("\"$SOCKETBRIDGE_STUB\" x; exit 1", "o6", "e6",
             &(sb_spawn_options){.restart = SB_RESTART_ON_FAILURE,
                                 .max_restarts = 1,
                                 .backoff_min_ms = 1},
             &ex[6]);
  for (int i = 1; i < N; i++)
    h_wait_exit(&h, &ex[i]);
  cr_assert_eq(ex[1].status, 125);
  cr_assert_eq(ex[2].status, 125);
  cr_assert_eq(ex[3].status, 125);
  cr_assert_geq(L.rejects, 3, "%u rejects", L.rejects);

  /* The CLI: its events file, its stdout and stderr (the stubs' stderr too). */
#ifdef SB_TEST_CLI
  h.on_connect = NULL;
  char cli[4096];
  snprintf(cli, sizeof cli,
           "'%s' run --events='%s' --timeout=20 -- sh -c '"
           "printf %%s \"$SOCKETBRIDGE_TOKEN\" > \"%s\"; "
           "\"$SOCKETBRIDGE_STUB\" one; "
           "SOCKETBRIDGE_TOKEN=${SOCKETBRIDGE_TOKEN%%?}0 \"$SOCKETBRIDGE_STUB\" two; "
           "SOCKETBRIDGE_TOKEN=${SOCKETBRIDGE_TOKEN%%?} \"$SOCKETBRIDGE_STUB\" three; "
           "exit 4'",
           SB_TEST_CLI, h_path(&h, "cli.events"), h_path(&h, "cli.token"));
  int co = h_create(&h, "cli.out"), ce = h_create(&h, "cli.err");
  h_exit cex;
  h_sh(&h, cli, co, ce, &cex);
  close(co);
  close(ce);
  h_wait_exit(&h, &cex);
  cr_assert_eq(cex.status, 4, "the CLI run ended %lld", (long long)cex.status);
  size_t tl;
  char *ct = h_read(&h, "cli.token", &tl);
  cr_assert_eq(tl, SB_TOKEN_HEX, "the CLI's child saw no token: %s", ct);
  add_token(ct);
  free(ct);
  char *cerr = h_read(&h, "cli.err", NULL);
  cr_assert_not_null(strstr(cerr, "socketbridge-stub: "), "no stub failure line: %s",
                     cerr);
  free(cerr);
  assert_file_has_no_token(&h, "cli.events");
  assert_file_has_no_token(&h, "cli.out");
  assert_file_has_no_token(&h, "cli.err");
#endif

  /* Every child's stdout and stderr (the stubs' failure lines). */
  for (int i = 0; i < N; i++) {
    char o[8], e[8];
    snprintf(o, sizeof o, "o%d", i);
    snprintf(e, sizeof e, "e%d", i);
    assert_file_has_no_token(&h, o);
    assert_file_has_no_token(&h, e);
  }
  char *e1 = h_read(&h, "e1", NULL), *e2 = h_read(&h, "e2", NULL);
  cr_assert_not_null(strstr(e1, "socketbridge-stub: "), "e1: %s", e1);
  cr_assert_not_null(strstr(e2, "bad_token"), "e2: %s", e2);
  free(e1);
  free(e2);
  cr_assert_gt(L.events, 10, "only %u events", L.events);
  cr_assert_geq(L.connects, 3);
  cr_log_info("token check: %u tokens, %u events, %u rejects, %zu bytes of reports",
              L.ntokens, L.events, L.rejects, L.loglen);
  assert_no_token("the library's reports", L.log ? L.log : "");

  sb_server_close(L.server, leak_closed);
  h_wait(&h, &L.closed, "the second server to close");
  free(L.log);
  h_fini(&h);
}
