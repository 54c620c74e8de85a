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

/* The directory of the shim we were started as, into dir (PATH_MAX
 * bytes); false when we were not started through one: argv[0] with a slash
 * that is not the stub, or a bare argv[0] whose first hit on PATH is not
 * the stub (as execvp would have found it). */
static bool shim_dir(const char *argv0, char *dir) {
  struct stat self, st;
  if (argv0 == NULL || *argv0 == '\0')
    return false;
  if (sb_path_find(argv0, getenv("PATH"), NULL, NULL, dir, PATH_MAX) != 0)
    return false;
  /* Without /proc the stub cannot tell; the file's checks still hold. */
  if (stat("/proc/self/exe", &self) == 0 &&
      (stat(dir, &st) != 0 || st.st_dev != self.st_dev || st.st_ino != self.st_ino))
    return false;
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    return false; /* "./name" keeps a slash: never here */
  slash[slash == dir] = '\0';
  return true;
}

/* Reads the bridge file of dir into buf (NUL-terminated). Returns its
 * length, 0 when there is none worth reading, or -1 with diag. Only a
 * regular file of our own user that nobody else may read or write counts:
 * it holds a token, and names where we connect. */
static ssize_t read_bridge_file(const char *dir, char *buf, sb_diag *diag) {
  char path[PATH_MAX];
  struct stat st;
  if (sb__snprintf(path, sizeof path, "%s/%s", dir, SB_SHIM_BRIDGE_FILE) >=
      (int)sizeof path)
    return 0;
  int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return 0;
  ssize_t n = 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() &&
      (st.st_mode & 077) == 0) {
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
  if (!shim_dir(argv0, dir))
    return 0;
  ssize_t len = read_bridge_file(dir, buf, diag);
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
