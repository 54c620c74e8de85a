/* SPDX-License-Identifier: MIT */
/* closed_stdout PROGRAM [ARG...]: runs PROGRAM with a stdout that is a pipe
 * nobody reads (its read end closed), so the first write gets EPIPE (or
 * SIGPIPE, for a program that does not ignore it). */
#include <unistd.h>

int main(int argc, char **argv) {
  int p[2];
  if (argc < 2 || pipe(p) != 0)
    return 2;
  close(p[0]);
  if (dup2(p[1], 1) < 0)
    return 2;
  close(p[1]);
  execvp(argv[1], argv + 1);
  return 127;
}
