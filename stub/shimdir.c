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

/* The program argv0 names, as execvp would find it, into found (PATH_MAX
 * bytes). Returns the length of its directory, found[0..len), or 0 when
 * there is none. Whether that program is the stub is asked only once its
 * directory holds a bridge file (is_stub): most stubs run from a directory
 * without one, and the first look at /proc/self of a new process costs
 * more than the rest of what the stub does before it connects. */
static size_t candidate_dir(const char *argv0, char *found) {
  if (argv0 == NULL || *argv0 == '\0')
    return 0;
  if (sb_path_find(argv0, getenv("PATH"), NULL, NULL, found, PATH_MAX) != 0)
    return 0;
  char *slash = strrchr(found, '/');
  if (slash == NULL)
    return 0; /* "./name" keeps a slash: never here */
  return (size_t)(slash - found) + (slash == found);
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

/* Reads the bridge file of found's directory (found[0..dirlen)) into buf
 * (NUL-terminated), when we were started as the shim found. Returns its
 * length, 0 when there is none worth reading, or -1 with diag. Only a
 * regular file of our own user that nobody else may read or write counts:
 * it holds a token, and names where we connect. */
static ssize_t read_bridge_file(const char *found, size_t dirlen, char *buf,
                                sb_diag *diag) {
  static const char name[] = "/" SB_SHIM_BRIDGE_FILE;
  char path[PATH_MAX];
  struct stat st;
  if (dirlen + sizeof name > sizeof path)
    return 0;
  memcpy(path, found, dirlen);
  memcpy(path + dirlen - (found[dirlen - 1] == '/'), name, sizeof name);
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return 0;
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
  close(fd);
  if (n > 0)
    buf[n] = '\0';
  return n;
}

int stub_shim_config(const char *argv0, sb_config *cfg, sb_diag *diag) {
  char dir[PATH_MAX], buf[STUB_BRIDGE_FILE_MAX + 1];
  char *env[STUB_BRIDGE_VARS + 1];
  size_t n = 0;
  size_t dirlen = candidate_dir(argv0, dir);
  if (dirlen == 0)
    return 0;
  ssize_t len = read_bridge_file(dir, dirlen, buf, diag);
  dir[dirlen] = '\0';
  if (len <= 0)
    return len < 0 ? -1 : 0;
  for (char *line = buf; *line != '\0' && n < STUB_BRIDGE_VARS;) {
    char *nl = strchr(line, '\n');
    if (nl != NULL)
      *nl = '\0';
    env[n++] = line;
    line = nl != NULL ? nl + 1 : line + strlen(line);
  }
  env[n] = NULL;
  int r = sb_config_from_env(env, cfg, diag);
  if (r == 0)
    r = sb_config_require(cfg, diag);
  explicit_bzero(buf, sizeof buf); /* the token lives in cfg alone now */
  if (r < 0) {
    /* Say which file, not only which variable. */
    sb_diag d = *diag;
    sb_diag_set(diag, r, "%s/%s: %s", dir, SB_SHIM_BRIDGE_FILE, d.msg);
    return -1;
  }
  return 1;
}
