/* SPDX-License-Identifier: MIT */
/* nonblock PROGRAM [ARG...]: sets O_NONBLOCK on the open file description of
 * stdout (shared with whoever else holds it), then runs PROGRAM, which thus
 * inherits a non-blocking stdout: its writes can fail with EAGAIN. */
#include <fcntl.h>
#include <unistd.h>

int main(int argc, char **argv) {
  int fl = fcntl(1, F_GETFL);
  if (argc < 2 || fl < 0 || fcntl(1, F_SETFL, fl | O_NONBLOCK) < 0)
    return 2;
  execvp(argv[1], argv + 1);
  return 127;
}
