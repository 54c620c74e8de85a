/* SPDX-License-Identifier: MIT */
/* test_frame.c - the frame header and the incremental decoder. */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

/* ---- building input ---------------------------------------------------- */

typedef struct buf {
  uint8_t b[4096];
  size_t n;
} buf;

static void put_frame(buf *o, sb_kind kind, const void *payload, size_t len) {
  cr_assert_leq(o->n + SB_FRAME_HEADER + len, sizeof o->b, "test buffer too small");
  sb_frame_header(o->b + o->n, kind, (uint32_t)len);
  memcpy(o->b + o->n + SB_FRAME_HEADER, payload, len);
  o->n += SB_FRAME_HEADER + len;
}

static void put_raw_header(buf *o, uint32_t length, uint8_t kind) {
  uint8_t h[5] = {(uint8_t)(length >> 24), (uint8_t)(length >> 16),
                  (uint8_t)(length >> 8), (uint8_t)length, kind};
  memcpy(o->b + o->n, h, 5);
  o->n += 5;
}

/* A control frame, data frames of each kind, empty ones that close streams,
 * and an empty control frame. */
static void mixed_input(buf *o) {
  static const char hello[] = "{\"type\":\"welcome\",\"version\":1}";
  o->n = 0;
  put_frame(o, SB_KIND_CONTROL, hello, sizeof hello - 1);
  put_frame(o, SB_KIND_STDOUT, "hello, world\n", 13);
  put_frame(o, SB_KIND_STDERR, "e", 1);
  put_frame(o, SB_KIND_STDOUT, "", 0);
  put_frame(o, SB_KIND_STDIN, "\0\1\2\3\xff", 5);
  put_frame(o, SB_KIND_CONTROL, "", 0);
  put_frame(o, SB_KIND_STDIN, "", 0);
  put_frame(o, SB_KIND_CONTROL, "{\"type\":\"exit\",\"code\":3}", 24);
}

/* ---- collecting frames ------------------------------------------------- */

/* Whole frames, data pieces joined up to `end`. */
typedef struct got {
  int kind[32];
  size_t off[32], len[32];
  uint8_t data[4096];
  size_t nframes, ndata;
  bool open; /* a data frame has pieces in, not its end */
} got;

static void got_piece(got *g, const sb_frame *f, const uint8_t *in, size_t in_len) {
  if (f->kind != SB_KIND_CONTROL && f->len > 0) {
    cr_assert(f->data >= in && f->data + f->len <= in + in_len,
              "data piece of %zu bytes is not in the input (copied?)", f->len);
  }
  if (!g->open) {
    cr_assert_lt(g->nframes, 32, "too many frames");
    g->kind[g->nframes] = (int)f->kind;
    g->off[g->nframes] = g->ndata;
    g->len[g->nframes] = 0;
  } else {
    cr_assert_eq((int)f->kind, g->kind[g->nframes],
                 "piece of kind %d inside a frame of kind %d", f->kind,
                 g->kind[g->nframes]);
    cr_assert_gt(f->len, 0, "an empty piece inside a non-empty data frame");
  }
  memcpy(g->data + g->ndata, f->data, f->len);
  g->ndata += f->len;
  g->len[g->nframes] += f->len;
  g->open = !f->end;
  if (f->end)
    g->nframes++;
}

/* Feeds in[0..len) to the decoder and collects what comes out. */
static void feed(sb_decoder *d, got *g, const uint8_t *in, size_t len) {
  const uint8_t *p = in;
  size_t n = len;
  sb_frame f;
  sb_diag diag = {""};
  int r;
  while ((r = sb_decoder_next(d, &p, &n, &f, &diag)) > 0)
    got_piece(g, &f, in, len);
  cr_assert_eq(r, 0, "decoder returned %d (%s)", r, diag.msg);
  cr_assert_eq(n, 0, "decoder returned 0 with %zu bytes unused", n);
}

static void assert_same_frames(const got *want, const got *g, const char *how) {
  cr_assert_eq(g->nframes, want->nframes, "%s: %zu frames, want %zu", how, g->nframes,
               want->nframes);
  for (size_t i = 0; i < want->nframes; i++) {
    cr_assert_eq(g->kind[i], want->kind[i], "%s: frame %zu of kind %d, want %d", how, i,
                 g->kind[i], want->kind[i]);
    cr_assert_eq(g->len[i], want->len[i], "%s: frame %zu of %zu bytes, want %zu", how, i,
                 g->len[i], want->len[i]);
    cr_assert_arr_eq(g->data + g->off[i], want->data + want->off[i], want->len[i],
                     "%s: frame %zu differs", how, i);
  }
}

static void decode_whole(const buf *in, got *g) {
  sb_decoder d;
  sb_decoder_init(&d, 0);
  memset(g, 0, sizeof *g);
  feed(&d, g, in->b, in->n);
  cr_assert(sb_decoder_idle(&d), "decoder not idle after whole frames");
  sb_decoder_free(&d);
}

/* ---- tests ------------------------------------------------------------- */

Test(frame, header_is_a_big_endian_length_counting_the_kind_byte) {
  uint8_t h[SB_FRAME_HEADER];
  sb_frame_header(h, SB_KIND_STDERR, 0x01020304);
  uint8_t want[] = {0x01, 0x02, 0x03, 0x05, 4};
  cr_assert_arr_eq(h, want, 5, "header %02x %02x %02x %02x %02x", h[0], h[1], h[2], h[3],
                   h[4]);
  sb_frame_header(h, SB_KIND_CONTROL, 0);
  cr_assert(h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 1 && h[4] == 1,
            "empty control frame header %02x %02x %02x %02x %02x", h[0], h[1], h[2], h[3],
            h[4]);
}

Test(frame, maps_kinds_to_streams_and_names) {
  cr_assert_eq(sb_kind_stream(SB_KIND_STDIN), 0);
  cr_assert_eq(sb_kind_stream(SB_KIND_STDOUT), 1);
  cr_assert_eq(sb_kind_stream(SB_KIND_STDERR), 2);
  cr_assert_eq(sb_kind_stream(SB_KIND_CONTROL), -1);
  cr_assert_eq(sb_kind_stream(9), -1);
  for (int s = 0; s < 3; s++)
    cr_assert_eq(sb_kind_stream(sb_stream_kind(s)), s, "stream %d does not map back", s);
  cr_assert_eq(sb_stream_kind(3), 0);
  cr_assert_eq(sb_stream_kind(-1), 0);
  cr_assert_str_eq(sb_kind_name(SB_KIND_CONTROL), "control");
  cr_assert_str_eq(sb_kind_name(SB_KIND_STDIN), "stdin");
  cr_assert_str_eq(sb_kind_name(SB_KIND_STDOUT), "stdout");
  cr_assert_str_eq(sb_kind_name(SB_KIND_STDERR), "stderr");
  cr_assert_str_eq(sb_kind_name(0), "unknown");
}

Test(frame, decodes_several_frames_merged_in_one_buffer) {
  buf in;
  got g;
  mixed_input(&in);
  decode_whole(&in, &g);
  cr_assert_eq(g.nframes, 8, "%zu frames", g.nframes);
  int kinds[] = {1, 3, 4, 3, 2, 1, 2, 1};
  size_t lens[] = {30, 13, 1, 0, 5, 0, 0, 24};
  for (size_t i = 0; i < 8; i++) {
    cr_assert_eq(g.kind[i], kinds[i], "frame %zu of kind %d", i, g.kind[i]);
    cr_assert_eq(g.len[i], lens[i], "frame %zu of %zu bytes", i, g.len[i]);
  }
  cr_assert_arr_eq(g.data + g.off[1], "hello, world\n", 13, "stdout payload differs");
  cr_assert_arr_eq(g.data + g.off[4], "\0\1\2\3\xff", 5, "stdin payload differs");
}

Test(frame, every_split_point_yields_the_same_frames) {
  buf in;
  got want;
  mixed_input(&in);
  decode_whole(&in, &want);

  for (size_t i = 0; i <= in.n; i++) {
    for (size_t j = i; j <= in.n; j++) {
      sb_decoder d;
      got g = {0};
      char how[64];
      sb_decoder_init(&d, 0);
      feed(&d, &g, in.b, i);
      feed(&d, &g, in.b + i, j - i);
      feed(&d, &g, in.b + j, in.n - j);
      snprintf(how, sizeof how, "split at %zu and %zu", i, j);
      assert_same_frames(&want, &g, how);
      cr_assert(sb_decoder_idle(&d), "%s: decoder not idle at the end", how);
      sb_decoder_free(&d);
    }
  }
}

Test(frame, byte_by_byte_input_yields_the_same_frames) {
  buf in;
  got want, g = {0};
  sb_decoder d;
  mixed_input(&in);
  decode_whole(&in, &want);
  sb_decoder_init(&d, 0);
  for (size_t i = 0; i < in.n; i++)
    feed(&d, &g, in.b + i, 1);
  assert_same_frames(&want, &g, "byte by byte");
  sb_decoder_free(&d);
}

Test(frame, an_empty_data_frame_is_one_event_of_length_zero_with_end) {
  buf in = {.n = 0};
  put_frame(&in, SB_KIND_STDOUT, "", 0);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  const uint8_t *p = in.b;
  size_t n = in.n;
  sb_frame f;
  int r = sb_decoder_next(&d, &p, &n, &f, NULL);
  cr_assert_eq(r, 1, "returned %d", r);
  cr_assert(f.kind == SB_KIND_STDOUT && f.len == 0 && f.end, "kind %d len %zu end %d",
            f.kind, f.len, f.end);
  r = sb_decoder_next(&d, &p, &n, &f, NULL);
  cr_assert_eq(r, 0, "a second event (%d) after the empty frame", r);
  sb_decoder_free(&d);
}

Test(frame, hands_out_data_as_it_arrives_without_copying) {
  buf in = {.n = 0};
  put_frame(&in, SB_KIND_STDERR, "abcdef", 6);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  const uint8_t *p = in.b;
  size_t n = 8; /* the header and 3 payload bytes */
  sb_frame f;
  int r = sb_decoder_next(&d, &p, &n, &f, NULL);
  cr_assert_eq(r, 1, "returned %d", r);
  cr_assert(f.data == in.b + 5 && f.len == 3 && !f.end, "piece at +%td len %zu end %d",
            f.data - in.b, f.len, f.end);
  cr_assert(!sb_decoder_idle(&d), "idle inside a data frame");
  cr_assert_null(d.ctl, "a data frame was buffered");
  n = 3;
  r = sb_decoder_next(&d, &p, &n, &f, NULL);
  cr_assert(r == 1 && f.data == in.b + 8 && f.len == 3 && f.end,
            "r %d, piece at +%td len %zu end %d", r, f.data - in.b, f.len, f.end);
  cr_assert(sb_decoder_idle(&d), "not idle after the frame");
  sb_decoder_free(&d);
}

Test(frame, assembles_a_large_control_frame_fed_in_small_pieces) {
  size_t len = 200000;
  uint8_t *in = malloc(SB_FRAME_HEADER + len);
  cr_assert_not_null(in);
  sb_frame_header(in, SB_KIND_CONTROL, (uint32_t)len);
  for (size_t i = 0; i < len; i++)
    in[SB_FRAME_HEADER + i] = (uint8_t)(i * 7);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  size_t events = 0;
  for (size_t off = 0; off < SB_FRAME_HEADER + len; off += 777) {
    const uint8_t *p = in + off;
    size_t n = SB_FRAME_HEADER + len - off < 777 ? SB_FRAME_HEADER + len - off : 777;
    sb_frame f;
    int r;
    while ((r = sb_decoder_next(&d, &p, &n, &f, NULL)) > 0) {
      events++;
      cr_assert(f.kind == SB_KIND_CONTROL && f.end && f.len == len,
                "kind %d end %d len %zu", f.kind, f.end, f.len);
      cr_assert_arr_eq(f.data, in + SB_FRAME_HEADER, len, "control payload differs");
    }
    cr_assert_eq(r, 0, "returned %d", r);
  }
  cr_assert_eq(events, 1, "%zu events for one control frame", events);
  sb_decoder_free(&d);
  free(in);
}

Test(frame, accepts_a_frame_of_exactly_max_bytes) {
  uint32_t max = SB_MIN_MAX_BYTES;
  size_t total = SB_FRAME_HEADER + max - 1;
  uint8_t *in = calloc(1, total);
  cr_assert_not_null(in);
  sb_frame_header(in, SB_KIND_STDIN, max - 1);
  sb_decoder d;
  sb_decoder_init(&d, max);
  got g = {0};
  const uint8_t *p = in;
  size_t n = total;
  sb_frame f;
  int r = sb_decoder_next(&d, &p, &n, &f, NULL);
  cr_assert(r == 1 && f.len == max - 1 && f.end, "r %d len %zu end %d", r, f.len, f.end);
  (void)g;
  sb_decoder_free(&d);
  free(in);
}

/* Feeds all of in to a fresh decoder once; returns what it said, with how
 * many input bytes it left in *left. The caller frees d. */
static int decode_once(sb_decoder *d, uint32_t max_bytes, const buf *in, size_t *left,
                       sb_diag *diag) {
  const uint8_t *p = in->b;
  size_t n = in->n;
  sb_frame f;
  sb_decoder_init(d, max_bytes);
  int r = sb_decoder_next(d, &p, &n, &f, diag);
  if (left)
    *left = n;
  return r;
}

Test(frame, rejects_a_length_over_max_bytes_before_buffering) {
  buf in = {.n = 0};
  put_raw_header(&in, 2000000, SB_KIND_CONTROL);
  memset(in.b + in.n, '{', 100);
  in.n += 100;
  sb_decoder d;
  sb_diag diag = {""};
  size_t n;
  int r = decode_once(&d, 0, &in, &n, &diag);
  cr_assert_eq(r, SB_EMSGSIZE, "returned %d (%s)", r, sb_err_name(r));
  cr_assert_leq(in.n - n, 4, "%zu bytes consumed before the error", in.n - n);
  cr_assert_null(d.ctl, "the body of an oversize frame was buffered");
  cr_assert_str_eq(diag.msg, "frame length 2000000 exceeds max_bytes 1048576", "diag: %s",
                   diag.msg);
  cr_assert(!sb_decoder_idle(&d), "a failed decoder reports idle");
  sb_decoder_free(&d);
}

Test(frame, uses_the_given_max_bytes) {
  buf in = {.n = 0};
  put_raw_header(&in, 5000, SB_KIND_STDOUT);
  sb_decoder d;
  sb_diag diag = {""};
  int r = decode_once(&d, 4096, &in, NULL, &diag);
  cr_assert_eq(r, SB_EMSGSIZE, "returned %d", r);
  cr_assert(strstr(diag.msg, "5000") && strstr(diag.msg, "4096"), "diag: %s", diag.msg);
  sb_decoder_free(&d);
}

Test(frame, rejects_a_length_of_zero) {
  buf in = {.n = 0};
  put_raw_header(&in, 0, SB_KIND_STDOUT);
  sb_decoder d;
  sb_diag diag = {""};
  int r = decode_once(&d, 0, &in, NULL, &diag);
  cr_assert_eq(r, SB_EBADMSG, "returned %d", r);
  cr_assert(strstr(diag.msg, "length 0"), "diag: %s", diag.msg);
  sb_decoder_free(&d);
}

ParameterizedTestParameters(frame, rejects_an_unknown_kind) {
  static uint8_t kinds[] = {0, 5, 6, 0x7f, 0x80, 0xff};
  return cr_make_param_array(uint8_t, kinds, sizeof kinds);
}

ParameterizedTest(uint8_t *kind, frame, rejects_an_unknown_kind) {
  buf in = {.n = 0};
  put_raw_header(&in, 3, *kind);
  in.n += 2;
  sb_decoder d;
  sb_diag diag = {""};
  int r = decode_once(&d, 0, &in, NULL, &diag);
  cr_assert_eq(r, SB_EBADMSG, "kind %u: returned %d", *kind, r);
  char want[32];
  snprintf(want, sizeof want, "kind %u", *kind);
  cr_assert(strstr(diag.msg, want), "diag: %s", diag.msg);
  sb_decoder_free(&d);
}

Test(frame, errors_are_sticky) {
  buf bad = {.n = 0}, good = {.n = 0};
  put_raw_header(&bad, 1, 9);
  put_frame(&good, SB_KIND_STDOUT, "x", 1);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  const uint8_t *p = bad.b;
  size_t n = bad.n;
  sb_frame f;
  sb_diag first = {""}, again = {""};
  int r = sb_decoder_next(&d, &p, &n, &f, &first);
  cr_assert_eq(r, SB_EBADMSG, "returned %d", r);
  p = good.b;
  n = good.n;
  r = sb_decoder_next(&d, &p, &n, &f, &again);
  cr_assert_eq(r, SB_EBADMSG, "a failed decoder returned %d on good input", r);
  cr_assert_eq(n, good.n, "a failed decoder consumed %zu bytes", good.n - n);
  cr_assert_str_eq(again.msg, first.msg, "diag changed: \"%s\" then \"%s\"", first.msg,
                   again.msg);
  sb_decoder_free(&d);
}

Test(frame, a_truncated_frame_leaves_the_decoder_not_idle) {
  buf in = {.n = 0};
  put_frame(&in, SB_KIND_CONTROL, "{\"type\":\"welcome\",\"version\":1}", 30);
  for (size_t cut = 1; cut < in.n; cut++) {
    sb_decoder d;
    sb_decoder_init(&d, 0);
    cr_assert(sb_decoder_idle(&d), "a new decoder is not idle");
    const uint8_t *p = in.b;
    size_t n = cut;
    sb_frame f;
    int r = sb_decoder_next(&d, &p, &n, &f, NULL);
    cr_assert_eq(r, 0, "cut at %zu: returned %d", cut, r);
    cr_assert_eq(n, 0, "cut at %zu: %zu bytes left unused", cut, n);
    cr_assert(!sb_decoder_idle(&d), "cut at %zu: decoder idle mid-frame", cut);
    sb_decoder_free(&d);
  }
}

Test(frame, a_decoder_can_be_freed_and_initialised_again) {
  buf in = {.n = 0};
  put_frame(&in, SB_KIND_CONTROL, "{}", 2);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  const uint8_t *p = in.b;
  size_t n = 4 + 2; /* part of a control frame: buffered */
  sb_frame f;
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, NULL), 0);
  sb_decoder_free(&d);
  sb_decoder_free(&d);
  sb_decoder_init(&d, 0);
  cr_assert(sb_decoder_idle(&d), "not idle after init");
  sb_decoder_free(&d);
}

Test(frame, gives_back_a_large_control_buffer_when_the_next_frame_starts) {
  size_t len = 100000;
  uint8_t *in = calloc(1, SB_FRAME_HEADER + len);
  cr_assert_not_null(in);
  sb_frame_header(in, SB_KIND_CONTROL, (uint32_t)len);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  sb_frame f;
  const uint8_t *p = in;
  size_t n = SB_FRAME_HEADER + 10; /* the rest later: the frame is buffered */
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, NULL), 0);
  n = len - 10;
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, NULL), 1);
  cr_assert_geq(d.ctl_cap, len, "buffer of %zu bytes for a %zu-byte frame", d.ctl_cap,
                len);

  buf next = {.n = 0};
  put_frame(&next, SB_KIND_CONTROL, "{}", 2);
  p = next.b;
  n = SB_FRAME_HEADER + 1;
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, NULL), 0);
  cr_assert_leq(d.ctl_cap, 65536, "kept a buffer of %zu bytes", d.ctl_cap);
  n = 1;
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, NULL), 1);
  cr_assert(f.len == 2 && memcmp(f.data, "{}", 2) == 0, "second frame of %zu bytes",
            f.len);
  sb_decoder_free(&d);
  free(in);
}

/* Issue 15: hello, exec and run carry a command line, bound by ctl_max
 * (SB_CTL_MAX_BYTES), not max_bytes; data frames keep max_bytes, checked
 * once the kind byte is in, before any byte of the body. */
Test(frame, a_raised_control_bound_admits_control_frames_only) {
  buf in = {.n = 0};
  put_raw_header(&in, 2000000, SB_KIND_CONTROL);
  memset(in.b + in.n, '{', 100);
  in.n += 100;
  sb_decoder d;
  sb_diag diag = {""};
  const uint8_t *p = in.b;
  size_t n = in.n;
  sb_frame f;
  sb_decoder_init(&d, 0);
  sb_decoder_set_ctl_max(&d, SB_CTL_MAX_BYTES);
  cr_assert_eq(sb_decoder_next(&d, &p, &n, &f, &diag), 0, "%s", diag.msg);
  cr_assert_eq(n, 0);
  cr_assert_geq(sb_decoder_held(&d), 100);
  sb_decoder_free(&d);

  in.b[4] = SB_KIND_STDOUT;
  p = in.b;
  n = in.n;
  sb_decoder_init(&d, 0);
  sb_decoder_set_ctl_max(&d, SB_CTL_MAX_BYTES);
  int r = sb_decoder_next(&d, &p, &n, &f, &diag);
  cr_assert_eq(r, SB_EMSGSIZE, "a data frame over max_bytes returned %d", r);
  cr_assert_eq(in.n - n, SB_FRAME_HEADER, "%zu bytes consumed", in.n - n);
  cr_assert_str_eq(diag.msg, "frame length 2000000 exceeds max_bytes 1048576");
  sb_decoder_free(&d);

  in.n = 0;
  put_raw_header(&in, SB_CTL_MAX_BYTES + 1, SB_KIND_CONTROL);
  p = in.b;
  n = in.n;
  sb_decoder_init(&d, 0);
  sb_decoder_set_ctl_max(&d, SB_CTL_MAX_BYTES);
  r = sb_decoder_next(&d, &p, &n, &f, &diag);
  cr_assert_eq(r, SB_EMSGSIZE, "a control frame over ctl_max returned %d", r);
  cr_assert_leq(in.n - n, 4, "refused on the four length bytes");
  sb_decoder_free(&d);
}

/* What the supervisor's budget for tokenless peers relies on: k bytes fed
 * grow the control buffer by at most SB_DECODER_GROWTH(k). */
Test(frame, the_control_buffer_grows_by_at_most_the_documented_bound) {
  enum { LEN = 3 << 20 };
  uint8_t *in = malloc(SB_FRAME_HEADER + LEN);
  cr_assert_not_null(in);
  sb_frame_header(in, SB_KIND_CONTROL, LEN);
  memset(in + SB_FRAME_HEADER, 'x', LEN);
  sb_decoder d;
  sb_decoder_init(&d, 0);
  sb_decoder_set_ctl_max(&d, SB_CTL_MAX_BYTES);
  static const size_t steps[] = {1, 100, 4096, 65536, 3, 65536, 200000};
  size_t off = 0, i = 0;
  while (off < SB_FRAME_HEADER + LEN) {
    size_t k = steps[i++ % (sizeof steps / sizeof steps[0])];
    if (k > SB_FRAME_HEADER + LEN - off)
      k = SB_FRAME_HEADER + LEN - off;
    size_t before = sb_decoder_held(&d);
    const uint8_t *p = in + off;
    size_t n = k;
    sb_frame f;
    while (sb_decoder_next(&d, &p, &n, &f, NULL) > 0)
      cr_assert_eq(f.len, (size_t)LEN);
    if (off + k < SB_FRAME_HEADER + LEN)
      cr_assert_leq(sb_decoder_held(&d), before + SB_DECODER_GROWTH(k),
                    "%zu bytes grew the buffer from %zu to %zu", k, before,
                    sb_decoder_held(&d));
    off += k;
  }
  sb_decoder_free(&d);
  free(in);
}
