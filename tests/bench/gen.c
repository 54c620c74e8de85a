/* SPDX-License-Identifier: MIT */
/* gen.c - the delegated program of the delegate figure, and the first hop
 * of its floor: `bench_gen BYTES SEED` writes BYTES bytes to stdout in
 * 64 KiB write()s. SEED 0: eight fixed 64 KiB chunks, each different, in
 * turn (no work per byte, as the stdout figure's); otherwise the stream of
 * SEED of tests/helpers/stream.h (the correctness runs). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "stream.h"

#define CHUNK (64u * 1024u)
#define SLOTS 8

int main(int argc, char **argv) {
  /* Page-aligned, as the floors' buffers: a source misaligned against the
   * pipe's pages would slow the kernel's copy (see docs/performance.md). */
  static uint8_t bufs[SLOTS][CHUNK] __attribute__((aligned(4096)));
  if (argc != 3)
    return 2;
  uint64_t left = strtoull(argv[1], NULL, 10);
  uint64_t seed = strtoull(argv[2], NULL, 10);
  tstream s;
  tstream_init(&s, seed != 0 ? seed : 6);
  if (seed == 0)
    tstream_fill(&s, &bufs[0][0], sizeof bufs);
  for (unsigned k = 0; left > 0; k = (k + 1) % SLOTS) {
    size_t n = left < CHUNK ? (size_t)left : CHUNK;
    uint8_t *buf = bufs[seed != 0 ? 0 : k];
    if (seed != 0)
      tstream_fill(&s, buf, n);
    for (size_t off = 0; off < n;) {
      ssize_t w = write(1, buf + off, n - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return 1;
      off += (size_t)w;
    }
    left -= n;
  }
  return 0;
}
