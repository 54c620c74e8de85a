/* SPDX-License-Identifier: MIT */
/* Peers that are refused: each is closed with the right reason, counted,
 * and never disturbs an honest stub streaming at the same time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#include <criterion/parameterized.h>

TestSuite(reject, .timeout = 60);

#define STREAM_BYTES (16ull * 1024 * 1024)
#define SEED 7

/* Parameters are copied into each test's process, where pointers into the
 * runner's memory mean nothing: strings are held inline. */
typedef struct hostile {
  char mode[16];
  char answer[16]; /* what rawpeer prints */
  sb_reason reason;
} hostile;

static bool is_rawpeer(const sb_call *call) {
  return call->argc > 0 && strcmp(call->argv[0], "rawpeer") == 0;
}

static sb_close_reason peer_closed;
static int peer_close_err;

static void on_peer_close(sb_conn *c, sb_close_reason reason, int err) {
  (void)c;
  peer_closed = reason;
  peer_close_err = err;
}

/* The honest stub streams; a welcomed rawpeer is only watched. */
static void serve(harness *h, sb_conn *c) {
  if (is_rawpeer(sb_conn_call(c))) {
    sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_close = on_peer_close}, NULL);
    return;
  }
  h_source_start(h->user, c);
}

/* Starts the honest stub and waits until it streams. */
static void start_honest(harness *h, h_exit *ex) {
  h->on_connect = serve;
  h->user = h_source_new(STREAM_BYTES, SEED);
  int out = h_create(h, "sum");
  char script[512];
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" | '%s'", HELPER_SUM);
  h_sh(h, script, out, 0, ex);
  close(out);
  h_wait_count(h, &h->connects, 1, "the honest stub to connect");
}

static void check_honest(harness *h, h_exit *ex) {
  h_wait_exit(h, ex);
  cr_assert_eq(ex->status, 0, "the honest stub's pipeline ended %lld",
               (long long)ex->status);
  char want[64];
  h_source_expect(STREAM_BYTES, SEED, want);
  char *got = h_read(h, "sum", NULL);
  cr_assert_str_eq(got, want, "the honest stream was disturbed");
  free(got);
  free(h->user);
}

ParameterizedTestParameters(reject, hostile_peers) {
  static hostile cases[] = {
      {"badtoken", "bad_token\n", SB_REASON_BAD_TOKEN},
      {"badversion", "version\n", SB_REASON_VERSION},
      {"oversize", "too_large\n", SB_REASON_TOO_LARGE},
      {"silent", "timeout\n", SB_REASON_TIMEOUT},
      {"garbage", "too_large\n", SB_REASON_TOO_LARGE},
      {"datafirst", "protocol\n", SB_REASON_PROTOCOL},
      {"badjson", "protocol\n", SB_REASON_PROTOCOL},
      {"unknownkind", "protocol\n", SB_REASON_PROTOCOL},
  };
  return cr_make_param_array(hostile, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(hostile *c, reject, hostile_peers) {
  harness h;
  h_init(&h, &(sb_server_options){.handshake_timeout_ms = 300});
  h_exit honest, peer;
  start_honest(&h, &honest);

  int out = h_create(&h, "peer");
  char *args[] = {HELPER_RAWPEER, c->mode, NULL};
  h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &peer);
  close(out);
  h_wait_exit(&h, &peer);
  cr_assert_eq(peer.status, 0, "%s: rawpeer failed", c->mode);
  char *said = h_read(&h, "peer", NULL);
  cr_assert_str_eq(said, c->answer, "%s: the supervisor answered %s", c->mode, said);
  free(said);
  cr_assert_eq(h.rejects[c->reason], 1, "%s: counted %u times", c->mode,
               h.rejects[c->reason]);
  cr_assert_eq(h.reject_total, 1, "%s: %u rejects", c->mode, h.reject_total);
  sb_server_stats st;
  sb_server_stats_get(h.server, &st);
  cr_assert_eq(st.rejected[c->reason], 1, "%s: stats count %llu", c->mode,
               (unsigned long long)st.rejected[c->reason]);

  check_honest(&h, &honest);
  h_fini(&h);
}

Test(reject, a_second_hello_closes_that_connection_as_a_protocol_error) {
  harness h;
  h_init(&h, NULL);
  h_exit honest, peer;
  start_honest(&h, &honest);
  peer_closed = 0;
  int out = h_create(&h, "peer");
  char *args[] = {HELPER_RAWPEER, "hellotwice", NULL};
  h_spawn(&h, &(h_spawn_opts){.args = args, .out = out}, &peer);
  close(out);
  h_wait_exit(&h, &peer);
  cr_assert_eq(h.connects, 2, "the first hello was not welcomed");
  cr_assert_eq(peer_closed, SB_CLOSE_PROTOCOL, "closed as %d", (int)peer_closed);
  cr_assert_lt(peer_close_err, 0, "no error given for the protocol close");
  check_honest(&h, &honest);
  h_fini(&h);
}

/* ---- the real stub, refused or misconfigured --------------------------- */

typedef struct misfit {
  char script[160]; /* runs the stub with a broken environment */
  char needle[32];  /* the stub's one stderr line must contain this */
  sb_reason reason; /* the reject counted, or 0 */
} misfit;

ParameterizedTestParameters(reject, stub_failures) {
  static misfit cases[] = {
      {"SOCKETBRIDGE_TOKEN=00000000000000000000000000000000000000000000000000000000000000"
       "00 exec \"$SOCKETBRIDGE_STUB\" x",
       "bad_token", SB_REASON_BAD_TOKEN},
      {"unset SOCKETBRIDGE_TOKEN; exec \"$SOCKETBRIDGE_STUB\" x", "SOCKETBRIDGE_TOKEN",
       0},
      {"SOCKETBRIDGE_TOKEN=xyz exec \"$SOCKETBRIDGE_STUB\" x", "SOCKETBRIDGE_TOKEN", 0},
      {"SOCKETBRIDGE_PORT=80x exec \"$SOCKETBRIDGE_STUB\" x", "SOCKETBRIDGE_PORT", 0},
      {"SOCKETBRIDGE_PORT=70000 exec \"$SOCKETBRIDGE_STUB\" x", "SOCKETBRIDGE_PORT", 0},
      {"unset SOCKETBRIDGE_PORT; exec \"$SOCKETBRIDGE_STUB\" x", "SOCKETBRIDGE_PORT", 0},
      {"SOCKETBRIDGE_HOST=localhost.invalid exec \"$SOCKETBRIDGE_STUB\" x",
       "SOCKETBRIDGE_HOST", 0},
      {"SOCKETBRIDGE_MAX_BYTES=12 exec \"$SOCKETBRIDGE_STUB\" x",
       "SOCKETBRIDGE_MAX_BYTES", 0},
      {"SOCKETBRIDGE_SOCKET=\"$PWD/no-such.sock\" exec \"$SOCKETBRIDGE_STUB\" x",
       "no-such.sock", 0},
  };
  return cr_make_param_array(misfit, cases, sizeof cases / sizeof cases[0]);
}

static const char *token_of(sb_child *child) {
  char *const *env = sb_ticket_env(sb_child_ticket(child));
  for (; *env; env++)
    if (strncmp(*env, SB_ENV_TOKEN "=", sizeof SB_ENV_TOKEN) == 0)
      return *env + sizeof SB_ENV_TOKEN;
  return NULL;
}

ParameterizedTest(misfit *c, reject, stub_failures) {
  harness h;
  h_init(&h, NULL);
  int out = h_create(&h, "out"), err = h_create(&h, "err");
  h_exit ex;
  char script[512];
  snprintf(script, sizeof script, "cd '%s' && %s", h.dir, c->script);
  sb_child *child = h_sh(&h, script, out, err, &ex);
  char token[SB_TOKEN_HEX + 1];
  snprintf(token, sizeof token, "%s", token_of(child));
  close(out);
  close(err);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 125, "%s: status %lld", c->script, (long long)ex.status);
  size_t olen, elen;
  char *o = h_read(&h, "out", &olen), *e = h_read(&h, "err", &elen);
  cr_assert_eq(olen, 0, "the stub wrote to stdout: %s", o);
  cr_assert(strncmp(e, "socketbridge-stub: ", 19) == 0, "stderr: %s", e);
  cr_assert(elen > 0 && e[elen - 1] == '\n' && strchr(e, '\n') == e + elen - 1,
            "not exactly one line: %s", e);
  cr_assert_not_null(strstr(e, c->needle), "%s: '%s' lacks %s", c->script, e, c->needle);
  cr_assert_null(strstr(e, token), "the stub printed the token");
  if (c->reason)
    cr_assert_eq(h.rejects[c->reason], 1);
  cr_assert_eq(h.connects, 0);
  free(o);
  free(e);
  h_fini(&h);
}
