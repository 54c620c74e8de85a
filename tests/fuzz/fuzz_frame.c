/* SPDX-License-Identifier: MIT */
/* fuzz_frame.c - the frame decoder under any input cut at any points.
 *
 * Input: byte 0 picks max_bytes, bytes 1..2 seed the cut points, the rest
 * is the byte stream. Checks that
 * - every cut of the stream gives the same frames and the same end (error
 *   code or a clean stop) as the stream in one piece;
 * - every event keeps the promises of proto.h (data pieces point into the
 *   input, are non-empty unless they are a whole empty frame; control frames
 *   come whole; lengths within max_bytes);
 * - re-encoding the frames gives back the stream's bytes, exactly, up to the
 *   end of the last whole frame. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

/* Whole frames: kinds and lengths, payloads end to end in one buffer. */
typedef struct frames {
  uint8_t *kind;
  size_t *len;
  size_t n, cap;
  uint8_t *data;
  size_t ndata;
  bool open;  /* the last frame has pieces in but not its end */
  int result; /* 0, or the error the decoder stopped with */
} frames;

static void frames_free(frames *f) {
  free(f->kind);
  free(f->len);
  free(f->data);
}

static void add_piece(frames *fs, const sb_frame *f, size_t data_cap) {
  if (!fs->open) {
    if (fs->n == fs->cap) {
      fs->cap = fs->cap ? fs->cap * 2 : 16;
      fs->kind = realloc(fs->kind, fs->cap);
      fs->len = realloc(fs->len, fs->cap * sizeof *fs->len);
      CHECK(fs->kind != NULL && fs->len != NULL);
    }
    fs->kind[fs->n] = (uint8_t)f->kind;
    fs->len[fs->n] = 0;
  } else {
    CHECK(fs->kind[fs->n] == (uint8_t)f->kind);
  }
  CHECK(fs->ndata + f->len <= data_cap);
  if (f->len > 0)
    memcpy(fs->data + fs->ndata, f->data, f->len);
  fs->ndata += f->len;
  fs->len[fs->n] += f->len;
  fs->open = !f->end;
  if (f->end)
    fs->n++;
}

/* Feeds one chunk, checking each event against the header's promises. */
static int feed(sb_decoder *d, frames *fs, const uint8_t *in, size_t len, size_t data_cap,
                uint32_t max) {
  const uint8_t *p = in;
  size_t n = len;
  sb_frame f;
  sb_diag diag;
  int r;
  while ((r = sb_decoder_next(d, &p, &n, &f, &diag)) > 0) {
    CHECK(f.kind >= SB_KIND_CONTROL && f.kind <= SB_KIND_STDERR);
    CHECK(f.len < max);
    if (f.kind == SB_KIND_CONTROL) {
      CHECK(f.end);
    } else {
      if (f.len > 0)
        CHECK(f.data >= in && f.data + f.len <= in + len);
      /* An empty piece is a whole empty frame, never part of one. */
      CHECK(f.len > 0 || (f.end && !fs->open));
    }
    add_piece(fs, &f, data_cap);
  }
  if (r == 0)
    CHECK(n == 0);
  return r;
}

/* A small PRNG for the cut points, seeded from the input. */
static uint32_t next_rand(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

static void decode(const uint8_t *in, size_t len, uint32_t max, uint32_t seed,
                   frames *fs) {
  sb_decoder d;
  sb_decoder_init(&d, max);
  max = d.max_bytes;
  memset(fs, 0, sizeof *fs);
  fs->data = malloc(len + 1);
  CHECK(fs->data != NULL);
  size_t off = 0;
  int r = 0;
  while (off < len && r == 0) {
    size_t chunk = len - off;
    if (seed != 0) {
      /* Mostly tiny chunks, where the interesting cuts are. */
      uint32_t x = next_rand(&seed);
      size_t c = (x & 3) == 0 ? x % 4096 : x % 9;
      if (c < chunk)
        chunk = c;
    }
    r = feed(&d, fs, in + off, chunk, len, max);
    off += chunk;
  }
  if (r < 0) {
    /* Errors are sticky, and a failed decoder is never idle. */
    const uint8_t *p = in;
    size_t n = len;
    sb_frame f;
    CHECK(sb_decoder_next(&d, &p, &n, &f, NULL) == r);
    CHECK(!sb_decoder_idle(&d));
  } else {
    /* Idle exactly when the input ends where a frame does. */
    size_t framed = 0;
    for (size_t i = 0; i < fs->n; i++)
      framed += SB_FRAME_HEADER + fs->len[i];
    CHECK(sb_decoder_idle(&d) == (framed == len));
  }
  fs->result = r;
  sb_decoder_free(&d);
}

static void check_same(const frames *a, const frames *b) {
  CHECK(a->result == b->result);
  CHECK(a->n == b->n);
  CHECK(a->ndata == b->ndata);
  CHECK(a->open == b->open);
  size_t off = 0;
  for (size_t i = 0; i < a->n; i++) {
    CHECK(a->kind[i] == b->kind[i]);
    CHECK(a->len[i] == b->len[i]);
    CHECK(memcmp(a->data + off, b->data + off, a->len[i]) == 0);
    off += a->len[i];
  }
}

/* The whole frames, framed again, are the stream's first bytes. */
static void check_reencode(const frames *fs, const uint8_t *in, size_t len) {
  size_t off = 0, at = 0;
  for (size_t i = 0; i < fs->n; i++) {
    uint8_t h[SB_FRAME_HEADER];
    sb_frame_header(h, (sb_kind)fs->kind[i], (uint32_t)fs->len[i]);
    CHECK(at + SB_FRAME_HEADER + fs->len[i] <= len);
    CHECK(memcmp(in + at, h, SB_FRAME_HEADER) == 0);
    CHECK(memcmp(in + at + SB_FRAME_HEADER, fs->data + off, fs->len[i]) == 0);
    at += SB_FRAME_HEADER + fs->len[i];
    off += fs->len[i];
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3)
    return 0;
  /* Small bounds make oversize frames easy to reach; 0 is the default. */
  uint32_t max = data[0] == 0 ? 0 : (uint32_t)data[0] * 16;
  uint32_t seed = ((uint32_t)data[1] << 8 | data[2]) + 1;
  const uint8_t *in = data + 3;
  size_t len = size - 3;

  frames whole, cut, bytewise;
  decode(in, len, max, 0, &whole);
  decode(in, len, max, seed, &cut);
  check_same(&whole, &cut);
  check_reencode(&whole, in, len);

  /* One byte at a time is the hardest cut; keep it to small inputs. */
  if (len <= 512) {
    sb_decoder d;
    sb_decoder_init(&d, max);
    uint32_t eff_max = d.max_bytes;
    memset(&bytewise, 0, sizeof bytewise);
    bytewise.data = malloc(len + 1);
    CHECK(bytewise.data != NULL);
    int r = 0;
    for (size_t i = 0; i < len && r == 0; i++)
      r = feed(&d, &bytewise, in + i, 1, len, eff_max);
    bytewise.result = r;
    sb_decoder_free(&d);
    check_same(&whole, &bytewise);
    frames_free(&bytewise);
  }
  frames_free(&whole);
  frames_free(&cut);
  return 0;
}
