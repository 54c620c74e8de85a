/* SPDX-License-Identifier: MIT */
/* ask_tty: prompts on /dev/tty as git, ssh and sudo do ("Username: "), reads
 * one line from it and prints "got LINE" on stdout. Without a controlling
 * terminal: prints "no tty: <strerror>" and exits 3. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  char line[256];
  FILE *t = fopen("/dev/tty", "r+");
  if (t == NULL) {
    printf("no tty: %s\n", strerror(errno));
    return 3;
  }
  fputs("Username: ", t);
  fflush(t);
  if (fgets(line, sizeof line, t) == NULL)
    return 4;
  line[strcspn(line, "\r\n")] = '\0';
  printf("got %s\n", line);
  return 0;
}
