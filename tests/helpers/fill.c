/* SPDX-License-Identifier: MIT */
/* fill SEED COUNT_FILE: writes the test stream of SEED to stdout, made
 * non-blocking, for as long as stdout takes it. Once SIGUSR1 has come and
 * stdout is full (a write fails with EAGAIN and poll finds no room), it
 * writes to COUNT_FILE how many bytes it wrote, and exits 0: what the pipe
 * holds then is still unread. A test uses it to have a process exit while
 * its stdout pipe is full and its reader is known to be paused. Exits 1 on
 * an error, 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "stream.h"

int main(int argc, char **argv) {
  if (argc != 3)
    return 2;
  /* SIGUSR1 is taken from a signalfd, so it never interrupts a write and
   * is seen only where the loop looks for it. */
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  if (sigprocmask(SIG_BLOCK, &usr1, NULL) != 0)
    return 2;
  int sfd = signalfd(-1, &usr1, SFD_CLOEXEC);
  int fl = fcntl(1, F_GETFL);
  if (sfd < 0 || fl < 0 || fcntl(1, F_SETFL, fl | O_NONBLOCK) < 0)
    return 2;

  tstream s;
  tstream_init(&s, strtoull(argv[1], NULL, 10));
  static uint8_t buf[65536];
  size_t off = sizeof buf;
  uint64_t total = 0;
  for (;;) {
    if (off == sizeof buf) {
      tstream_fill(&s, buf, sizeof buf);
      off = 0;
    }
    ssize_t w = write(1, buf + off, sizeof buf - off);
    if (w > 0) {
      off += (size_t)w;
      total += (uint64_t)w;
      continue;
    }
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0 && errno != EAGAIN)
      return 1;
    /* Full: wait for room, or for the signal while there is none. */
    struct pollfd p[2] = {{.fd = 1, .events = POLLOUT}, {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      return 1;
    }
    if (p[0].revents & (POLLERR | POLLHUP | POLLNVAL))
      return 1;
    if (p[0].revents & POLLOUT)
      continue;
    if (p[1].revents & POLLIN)
      break;
  }

  FILE *f = fopen(argv[2], "w");
  if (f == NULL)
    return 1;
  fprintf(f, "%" PRIu64 "\n", total);
  return fclose(f) == 0 ? 0 : 1;
}
