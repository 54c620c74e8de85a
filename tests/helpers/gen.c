/* SPDX-License-Identifier: MIT */
/* gen BYTES SEED: writes BYTES bytes of the test stream of SEED to stdout. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "stream.h"

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  uint64_t left = strtoull(argv[1], NULL, 10);
  tstream s;
  tstream_init(&s, strtoull(argv[2], NULL, 10));
  static uint8_t buf[65536];
  while (left > 0) {
    size_t n = left < sizeof buf ? (size_t)left : sizeof buf;
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
