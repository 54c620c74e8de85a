/* SPDX-License-Identifier: MIT */
/* fds: prints the fds this process has open, space-separated, on stdout
 * (the directory fd used to list them left out), then runs argv[1..] if
 * given. Shows what a child inherited. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
  DIR *d = opendir("/proc/self/fd");
  if (!d)
    return 1;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == self)
      continue;
    printf("%s ", e->d_name);
  }
  closedir(d);
  printf("\n");
  fflush(stdout);
  if (argc > 1) {
    execvp(argv[1], argv + 1);
    return 127;
  }
  return 0;
}
