/* SPDX-License-Identifier: MIT */
/* stream.h - a deterministic byte stream and its checksum, shared by the test
 * helpers (gen, sum) and the integration tests, so a test can check that
 * every byte crossed the bridge, in order. */
#ifndef SB_TEST_STREAM_H
#define SB_TEST_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* xorshift64*: fast, and any lost, duplicated or reordered byte shows. */
typedef struct tstream {
  uint64_t state;
} tstream;

static inline void tstream_init(tstream *s, uint64_t seed) {
  s->state = seed * 0x9E3779B97F4A7C15ull + 1;
}

static inline void tstream_fill(tstream *s, uint8_t *buf, size_t len) {
  for (size_t i = 0; i < len; i++) {
    s->state ^= s->state >> 12;
    s->state ^= s->state << 25;
    s->state ^= s->state >> 27;
    buf[i] = (uint8_t)((s->state * 0x2545F4914F6CDD1Dull) >> 56);
  }
}

/* FNV-1a over the bytes, order-sensitive. */
typedef struct tsum {
  uint64_t hash, bytes;
} tsum;

static inline void tsum_init(tsum *t) {
  t->hash = 0xcbf29ce484222325ull;
  t->bytes = 0;
}

static inline void tsum_add(tsum *t, const void *p, size_t len) {
  const uint8_t *b = p;
  for (size_t i = 0; i < len; i++)
    t->hash = (t->hash ^ b[i]) * 0x100000001b3ull;
  t->bytes += len;
}

/* The checksum of the first n bytes of the stream of seed. */
static inline tsum tstream_expected(uint64_t seed, uint64_t n) {
  tstream s;
  tsum t;
  uint8_t buf[65536];
  tstream_init(&s, seed);
  tsum_init(&t);
  while (n > 0) {
    size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
    tstream_fill(&s, buf, k);
    tsum_add(&t, buf, k);
    n -= k;
  }
  return t;
}

#endif
