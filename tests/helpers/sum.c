/* SPDX-License-Identifier: MIT */
/* sum: reads stdin to its end and prints "BYTES HASH" (see stream.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "stream.h"

int main(void) {
  static uint8_t buf[65536];
  tsum t;
  tsum_init(&t);
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return 1;
    if (n == 0)
      break;
    tsum_add(&t, buf, (size_t)n);
  }
  printf("%" PRIu64 " %016" PRIx64 "\n", t.bytes, t.hash);
  return 0;
}
