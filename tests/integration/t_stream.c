/* SPDX-License-Identifier: MIT */
/* Bulk data both ways, checksummed: every byte arrives, in order, with
 * bounded buffering on the supervisor's side. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../helpers/stream.h"
#include "harness.h"

TestSuite(stream, .timeout = 120);

#define BIG (64ull * 1024 * 1024)
#define SEED 20261122

/* ---- stdin: gen | stub -> supervisor ----------------------------------- */

typedef struct sink {
  tsum sum;
  bool eof;
  size_t max_piece;
} sink;

static void sum_stdin(sb_conn *c, const char *buf, size_t len) {
  sink *s = sb_conn_data(c);
  if (len == 0) {
    s->eof = true;
    cr_assert_eq(sb_conn_exit(c, 0), 0);
    return;
  }
  if (len > s->max_piece)
    s->max_piece = len;
  tsum_add(&s->sum, buf, len);
}

static void start_sink(harness *h, sb_conn *c) {
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_stdin = sum_stdin}, h->user);
}

Test(stream, carries_64_mib_of_stdin_to_the_supervisor_intact) {
  harness h;
  sink s;
  tsum_init(&s.sum);
  s.eof = false;
  s.max_piece = 0;
  h_init(&h, NULL);
  h.on_connect = start_sink;
  h.user = &s;
  char script[512];
  snprintf(script, sizeof script, "'%s' %llu %d | \"$SOCKETBRIDGE_STUB\"", HELPER_GEN,
           BIG, SEED);
  h_exit ex;
  h_sh(&h, script, 0, 0, &ex);
  h_wait_exit(&h, &ex);
  tsum want = tstream_expected(SEED, BIG);
  cr_assert(s.eof, "no EOF");
  cr_assert_eq(ex.status, 0);
  cr_assert_eq(s.sum.bytes, want.bytes, "got %" PRIu64 " of %" PRIu64 " bytes",
               s.sum.bytes, want.bytes);
  cr_assert_eq(s.sum.hash, want.hash, "the bytes differ");
  h_fini(&h);
}

/* ---- stdout: supervisor -> stub | sum ---------------------------------- */

static void start_source(harness *h, sb_conn *c) {
  h_source_start(h->user, c);
}

Test(stream, carries_64_mib_from_the_supervisor_to_stdout_intact) {
  harness h;
  h_source *s = h_source_new(BIG, SEED);
  h_init(&h, NULL);
  h.on_connect = start_source;
  h.user = s;
  int out = h_create(&h, "sum");
  char script[512];
  snprintf(script, sizeof script, "\"$SOCKETBRIDGE_STUB\" | '%s'", HELPER_SUM);
  h_exit ex;
  h_sh(&h, script, out, 0, &ex);
  close(out);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 0);
  char expect[64];
  h_source_expect(BIG, SEED, expect);
  char *got = h_read(&h, "sum", NULL);
  cr_assert_str_eq(got, expect, "what the stub's reader summed");
  cr_assert_leq(s->max_queued, (size_t)H_SOURCE_SLOTS * H_SOURCE_CHUNK, "queued %zu",
                s->max_queued);
  free(got);
  free(s);
  h_fini(&h);
}

/* The stub's stdout is a pipe whose description its parent made
 * non-blocking: writes hit EAGAIN whenever the reader lags, and every byte
 * must still arrive once, in order. */
Test(stream, a_non_blocking_stdout_inherited_from_the_parent_loses_nothing) {
  harness h;
  enum { N = 8 * 1024 * 1024 };
  h_source *s = h_source_new(N, SEED + 1);
  h_init(&h, NULL);
  h.on_connect = start_source;
  h.user = s;
  int out = h_create(&h, "sum");
  char script[512];
  snprintf(script, sizeof script, "'%s' \"$SOCKETBRIDGE_STUB\" | '%s'", HELPER_NONBLOCK,
           HELPER_SUM);
  h_exit ex;
  h_sh(&h, script, out, 0, &ex);
  close(out);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 0);
  char expect[64];
  h_source_expect(N, SEED + 1, expect);
  char *got = h_read(&h, "sum", NULL);
  cr_assert_str_eq(got, expect, "what the stub's reader summed");
  free(got);
  free(s);
  h_fini(&h);
}
