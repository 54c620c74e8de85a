/* SPDX-License-Identifier: MIT */
/* shim.c - PATH shims for `run --shim`, `serve` and `socketbridge shim`:
 * the library makes them (sb_shim_dir_make, supervisor/shim.c); here its
 * errors become the command's one line. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>

/* dir made or kept as sb_shim_dir_make says; NULL after the error, named by
 * who. */
static char *make(const char *who, const char *dir, char *const *names, const char *stub,
                  const sb_ticket *ticket) {
  sb_diag diag;
  char *path;
  if (sb_shim_dir_make(dir, names, stub, ticket, &path, &diag) < 0) {
    cli_error("%s: %s", who, diag.msg);
    return NULL;
  }
  return path;
}

int cli_shim_make(const char *dir, char *const *names, const char *stub) {
  char *path = make("shim", dir, names, stub, NULL);
  free(path);
  return path != NULL ? 0 : -1;
}

char *cli_shim_dir_new(char *const *names, const char *stub, const sb_ticket *ticket) {
  return make("--shim", NULL, names, stub, ticket);
}

void cli_shim_bridge_remove(const char *dir) {
  sb_shim_dir_remove(dir, NULL);
}

void cli_shim_dir_remove(const char *dir, char *const *names) {
  sb_shim_dir_remove(dir, names);
}

char *cli_shim_dir_keep(const char *dir, char *const *names, const char *stub,
                        const sb_ticket *ticket) {
  return make("shim", dir, names, stub, ticket);
}

int cli_shim(int argc, char **argv) {
  char err[CLI_ERR_MAX];
  char *stub, *dir;
  int i;

  if (argc < 3) {
    cli_error("shim: usage: socketbridge shim DIR NAME... (see socketbridge --help)");
    return CLI_EXIT_FAILURE;
  }
  for (i = 2; i < argc; i++) {
    if (cli_check_shim_name(argv[i], err) != 0) {
      fprintf(stderr, "%s\n", err);
      return CLI_EXIT_FAILURE;
    }
  }
  stub = cli_stub_resolve("shim");
  if (stub == NULL)
    return CLI_EXIT_FAILURE;
  dir = cli_shim_dir_keep(argv[1], argv + 2, stub, NULL);
  free(stub);
  free(dir);
  return dir != NULL ? 0 : CLI_EXIT_FAILURE;
}
