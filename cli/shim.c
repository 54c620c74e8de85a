/* SPDX-License-Identifier: MIT */
/* shim.c - PATH shims: links named like a program (git, cc) to the stub, in
 * a directory put first on a child's PATH, so every process of its tree
 * that runs that program by name runs the stub instead. The stub skips
 * these directories (SOCKETBRIDGE_SHIMS) and itself when it looks the real
 * program up, so a shim that forwards to its own name never loops. A run's
 * directory also names the run's bridge (SB_SHIM_BRIDGE_FILE), so its
 * shims reach that run whatever runs in between (a nested run). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether path is a symbolic link to target, exactly. */
static bool links_to(const char *path, const char *target) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return strcmp(buf, target) == 0;
}

int cli_shim_make(const char *dir, char *const *names, const char *stub) {
  char path[PATH_MAX];

  for (; *names != NULL; names++) {
    if (snprintf(path, sizeof path, "%s/%s", dir, *names) >= (int)sizeof path) {
      cli_error("shim: %s/%s: %s", dir, *names, strerror(ENAMETOOLONG));
      return -1;
    }
    if (symlink(stub, path) == 0)
      continue;
    /* Made by an earlier run: keep it, so the command can be repeated. */
    if (errno == EEXIST && links_to(path, stub))
      continue;
    if (errno == EEXIST)
      cli_error("shim: %s exists and is not a link to %s", path, stub);
    else
      cli_error("shim: %s: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

/* Writes the bridge file (SB_SHIM_BRIDGE_FILE): the ticket's variables,
 * one "NAME=VALUE" a line, mode 0600 in our fresh 0700 directory. It holds
 * a token: O_EXCL and O_NOFOLLOW, so it is never anyone else's file, and
 * our copy is wiped. Once, before the loop runs: a small blocking write. */
static int write_bridge_file(const char *dir, char *const *env) {
  char path[PATH_MAX], text[4096];
  size_t len = 0;
  int fd, err = 0;

  for (; *env != NULL && err == 0; env++) {
    size_t n = strlen(*env);
    if (len + n + 1 > sizeof text)
      err = E2BIG;
    else {
      memcpy(text + len, *env, n);
      text[len + n] = '\n';
      len += n + 1;
    }
  }
  if (err == 0 &&
      snprintf(path, sizeof path, "%s/%s", dir, SB_SHIM_BRIDGE_FILE) >= (int)sizeof path)
    err = ENAMETOOLONG;
  if (err == 0) {
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    ssize_t n = fd >= 0 ? write(fd, text, len) : -1;
    if (n != (ssize_t)len)
      err = n < 0 ? errno : EIO; /* a regular file takes 4 KiB whole, or fails */
    if (fd >= 0 && close(fd) != 0 && err == 0)
      err = errno;
  }
  explicit_bzero(text, sizeof text);
  if (err != 0)
    cli_error("--shim: %s/%s: %s", dir, SB_SHIM_BRIDGE_FILE, strerror(err));
  return err != 0 ? -1 : 0;
}

char *cli_shim_dir_new(char *const *names, const char *stub, char *const *bridge) {
  const char *tmp = getenv("TMPDIR");
  char *dir;

  if (tmp == NULL || tmp[0] != '/')
    tmp = "/tmp";
  if (asprintf(&dir, "%s/socketbridge-shims.XXXXXX", tmp) < 0)
    return NULL;
  if (mkdtemp(dir) == NULL) {
    cli_error("--shim: cannot create a directory in %s: %s", tmp, strerror(errno));
    free(dir);
    return NULL;
  }
  if (cli_shim_make(dir, names, stub) < 0 || write_bridge_file(dir, bridge) < 0) {
    cli_shim_dir_remove(dir, names);
    free(dir);
    return NULL;
  }
  return dir;
}

void cli_shim_bridge_remove(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, SB_SHIM_BRIDGE_FILE) < (int)sizeof path)
    unlink(path);
}

void cli_shim_dir_remove(const char *dir, char *const *names) {
  char path[PATH_MAX];
  for (; *names != NULL; names++)
    if (snprintf(path, sizeof path, "%s/%s", dir, *names) < (int)sizeof path)
      unlink(path);
  cli_shim_bridge_remove(dir);
  rmdir(dir);
}

char *cli_shim_dir_keep(const char *dir, char *const *names, const char *stub,
                        char *const *bridge) {
  struct stat st;
  char *copy;

  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    cli_error("shim: %s: %s", dir, strerror(errno));
    return NULL;
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    cli_error("shim: %s: %s", dir,
              strerror(errno != 0 && errno != EEXIST ? errno : ENOTDIR));
    return NULL;
  }
  if (cli_shim_make(dir, names, stub) < 0)
    return NULL;
  /* An earlier run's bridge file is replaced (written O_EXCL). */
  if (bridge != NULL) {
    cli_shim_bridge_remove(dir);
    if (write_bridge_file(dir, bridge) < 0)
      return NULL;
  }
  /* Absolute: a relative PATH entry would follow each process's cwd. */
  copy = realpath(dir, NULL);
  if (copy == NULL)
    cli_error("shim: %s: %s", dir, strerror(errno));
  return copy;
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
