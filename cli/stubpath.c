/* SPDX-License-Identifier: MIT */
/* stubpath.c - which socketbridge-stub the command hands to its children:
 * the one installed (or built) next to it, else the library's default. */
#include "cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "socketbridge.h"

#define STUB_NAME "socketbridge-stub"

static bool is_executable_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *cli_exe_relative(const char *rel) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash, *path;
  size_t dirlen, rellen = strlen(rel) + 1;

  if (n <= 0)
    return NULL;
  exe[n] = '\0';
  slash = strrchr(exe, '/');
  if (slash == NULL)
    return NULL;
  dirlen = (size_t)(slash - exe) + 1;
  path = malloc(dirlen + rellen);
  if (path == NULL)
    return NULL;
  memcpy(path, exe, dirlen);
  memcpy(path + dirlen, rel, rellen);
  return path;
}

char *cli_stub_sibling(void) {
  char *path = cli_exe_relative(STUB_NAME);
  if (path != NULL && !is_executable_file(path)) {
    free(path);
    return NULL;
  }
  return path;
}

/* The library's default ($SOCKETBRIDGE_STUB when absolute, else beside
 * the library, on PATH, or the installed path): its rule, not repeated. */
static int library_default(char **out) {
  char path[PATH_MAX];
  int r = sb_default_stub_path(path, sizeof path);
  if (r < 0)
    return r;
  *out = strdup(path);
  return *out != NULL ? 0 : -ENOMEM;
}

char *cli_stub_resolve(const char *who) {
  char *path = cli_stub_sibling();
  int r;

  if (path != NULL)
    return path;
  r = library_default(&path);
  if (r < 0) {
    cli_error("%s: %s", who, sb_strerror(r));
    return NULL;
  }
  if (!is_executable_file(path)) {
    cli_error("%s: no executable " STUB_NAME " next to socketbridge nor at %s", who,
              path);
    free(path);
    return NULL;
  }
  return path;
}

int cli_stub_path(void) {
  char *path = cli_stub_resolve("stub-path");

  if (path == NULL)
    return CLI_EXIT_FAILURE;
  printf("%s\n", path);
  free(path);
  return fflush(stdout) == 0 ? 0 : CLI_EXIT_FAILURE;
}
