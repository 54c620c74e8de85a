/* SPDX-License-Identifier: MIT */
/* shimdir.c - which supervisor a shim reaches: the run that made it.
 *
 * `socketbridge run --shim` writes the bridge of its own ticket into its
 * shim directory (SB_SHIM_BRIDGE_FILE). A stub run as a shim from there
 * connects to that run, whatever ran in between: a nested run that does not
 * shim the name has put its own bridge in the environment, and the outer
 * run's calls must not reach it (docs/protocol.md, section 5). */
#include "stub.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file holds a handful of short lines. */
#define STUB_BRIDGE_FILE_MAX 4096
#define STUB_BRIDGE_VARS 15

/* The program argv0 names, as execvp would find it: argv0 itself when it
 * holds a slash, else the first hit on PATH (a malloc'd copy in *owned).
 * Sets *dirlen to the length of its directory. NULL when there is none.
 * Whether that program is the stub is asked only once its directory holds
 * a bridge file (is_stub): most stubs run from a directory without one,
 * and the first look at /proc/self of a new process costs more than the
 * rest of what the stub does before it connects. Nothing here takes a
 * large stack frame or buffer: a new process pays for each page it
 * touches, and this runs in every stub. */
static const char *candidate(const char *argv0, char **owned, size_t *dirlen) {
  const char *found = argv0;
  *owned = NULL;
  if (argv0 == NULL || *argv0 == '\0')
    return NULL;
  if (strchr(argv0, '/') == NULL) {
    if ((*owned = malloc(PATH_MAX)) == NULL ||
        sb_path_find(argv0, getenv("PATH"), NULL, NULL, *owned, PATH_MAX) != 0)
      return NULL;
    found = *owned;
  }
  const char *slash = strrchr(found, '/');
  if (slash == NULL)
    return NULL; /* "./name" keeps a slash: never here */
  *dirlen = (size_t)(slash - found) + (slash == found);
  return found;
}

/* Whether found is the stub itself: argv[0] with a slash that is not the
 * stub, or a bare argv[0] whose first hit on PATH is not the stub, was not
 * started through a shim. Without /proc the stub cannot tell; the file's
 * checks still hold. */
static bool is_stub(const char *found) {
  struct stat self, st;
  return stat("/proc/self/exe", &self) != 0 ||
         (stat(found, &st) == 0 && st.st_dev == self.st_dev && st.st_ino == self.st_ino);
}

/* The bridge file of found's directory (found[0..dirlen)), malloc'd. */
static char *bridge_path(const char *found, size_t dirlen) {
  static const char name[] = "/" SB_SHIM_BRIDGE_FILE;
  char *path = malloc(dirlen + sizeof name);
  if (path != NULL) {
    memcpy(path, found, dirlen);
    memcpy(path + dirlen - (found[dirlen - 1] == '/'), name, sizeof name);
  }
  return path;
}

/* Reads the open bridge file fd (path) into buf (NUL-terminated), when we
 * were started as the shim found. Returns its length, 0 when there is none
 * worth reading, or -1 with diag. Only a regular file of our own user that
 * nobody else may read or write counts: it holds a token, and names where
 * we connect. */
static ssize_t read_bridge_file(int fd, const char *path, const char *found, char *buf,
                                sb_diag *diag) {
  struct stat st;
  ssize_t n = 0;
  if (is_stub(found) && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_uid == geteuid() && (st.st_mode & 077) == 0) {
    do
      n = read(fd, buf, STUB_BRIDGE_FILE_MAX);
    while (n < 0 && errno == EINTR);
    if (n < 0 || n == STUB_BRIDGE_FILE_MAX)
      n = sb_diag_set(diag, SB_EINVAL, "%s: %s", path,
                      n < 0 ? strerror(errno) : "too large");
  }
  if (n > 0)
    buf[n] = '\0';
  return n;
}

/* The bridge file's lines, NULL-terminated, as sb_config_from_env reads an
 * environment. */
static int config_from_lines(char *buf, sb_config *cfg, sb_diag *diag) {
  char *env[STUB_BRIDGE_VARS + 1];
  size_t n = 0;
  for (char *line = buf; *line != '\0' && n < STUB_BRIDGE_VARS;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    env[n++] = line;
    line = nl != NULL ? nl + 1 : line + strlen(line);
  }
  env[n] = NULL;
  int r = sb_config_from_env(env, cfg, diag);
  return r == 0 ? sb_config_require(cfg, diag) : r;
}

/* Reads the bridge file at path, of the program found. Returns as
 * stub_shim_config. */
static int shim_config_at(const char *path, const char *found, sb_config *cfg,
                          sb_diag *diag) {
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return 0;
  /* Only a shim gets here: the buffer is allocated for it alone. */
  char *buf = malloc(STUB_BRIDGE_FILE_MAX + 1);
  ssize_t len = buf != NULL ? read_bridge_file(fd, path, found, buf, diag)
                            : sb_diag_set(diag, SB_ENOMEM, "out of memory");
  close(fd);
  int r = len > 0 ? config_from_lines(buf, cfg, diag) : (int)len;
  if (buf != NULL) {
    explicit_bzero(buf, STUB_BRIDGE_FILE_MAX + 1); /* the token lives in cfg alone now */
    free(buf);
  }
  if (r < 0 && len > 0) {
    /* Say which file, not only which variable. */
    sb_diag d = *diag;
    sb_diag_set(diag, r, "%s: %s", path, d.msg);
  }
  return r < 0 ? -1 : len > 0;
}

int stub_shim_config(const char *argv0, sb_config *cfg, sb_diag *diag) {
  char *owned, *path = NULL;
  size_t dirlen = 0;
  const char *found = candidate(argv0, &owned, &dirlen);
  int r = 0;
  if (found != NULL && (path = bridge_path(found, dirlen)) == NULL) {
    sb_diag_set(diag, SB_ENOMEM, "out of memory");
    r = -1;
  } else if (path != NULL) {
    r = shim_config_at(path, found, cfg, diag);
  }
  free(path);
  free(owned);
  return r;
}
