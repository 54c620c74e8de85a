/* SPDX-License-Identifier: MIT */
/* shim.c - PATH shims: links named like a program (git, cc) to the stub, in
 * a directory put first on a child's PATH, so every process of its tree
 * that runs that program by name runs the stub instead. The stub skips
 * these directories (SOCKETBRIDGE_SHIMS) and itself when it looks the real
 * program up, so a shim that forwards to its own name never loops. A
 * directory may also name a bridge (SB_SHIM_BRIDGE_FILE), so its shims
 * reach that bridge whatever runs in between (a nested supervisor). One
 * implementation for sb_spawn's shims and the command's --shim and `shim`. */
#include "sb_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SB__BRIDGE_FILE_MAX 4096 /* the bridge file is written whole, at once */

static bool is_file_name(const char *n) {
  return n[0] != '\0' && strchr(n, '/') == NULL && strcmp(n, ".") != 0 &&
         strcmp(n, "..") != 0;
}

/* Whether path is a symbolic link to target, exactly. */
static bool links_to(const char *path, const char *target) {
  char buf[PATH_MAX];
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  if (n < 0)
    return false;
  buf[n] = '\0';
  return strcmp(buf, target) == 0;
}

static int make_links(const char *dir, char *const *names, const char *stub,
                      sb_diag *diag) {
  char path[PATH_MAX];

  for (; *names != NULL; names++) {
    if (snprintf(path, sizeof path, "%s/%s", dir, *names) >= (int)sizeof path)
      return sb_diag_set(diag, -ENAMETOOLONG, "%s/%s: %s", dir, *names,
                         strerror(ENAMETOOLONG));
    if (symlink(stub, path) == 0)
      continue;
    int err = errno; /* links_to's readlink sets its own */
    /* Made by an earlier run: keep it, so a command can be repeated. */
    if (err == EEXIST && links_to(path, stub))
      continue;
    if (err == EEXIST)
      return sb_diag_set(diag, -EEXIST, "%s exists and is not a link to %s", path, stub);
    return sb_diag_set(diag, -err, "%s: %s", path, strerror(err));
  }
  return 0;
}

/* Writes the bridge file: the ticket's variables, one "NAME=VALUE" a line,
 * mode 0600. It holds a token: O_EXCL and O_NOFOLLOW, so it is never anyone
 * else's file, and our copy is wiped. One write of a regular file we just
 * created (page cache, as the open of a FILE stdio): it does not wait on
 * anyone, as a pipe or a FIFO could. */
static int write_bridge_file(const char *dir, char *const *env, sb_diag *diag) {
  char path[PATH_MAX], text[SB__BRIDGE_FILE_MAX];
  size_t len = 0;
  int fd, err = 0;

  for (; *env != NULL && err == 0; env++) {
    size_t n = strlen(*env);
    if (len + n + 1 > sizeof text) {
      err = E2BIG;
    } else {
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
    return sb_diag_set(diag, -err, "%s/%s: %s", dir, SB_SHIM_BRIDGE_FILE, strerror(err));
  return 0;
}

static void remove_bridge_file(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof path, "%s/%s", dir, SB_SHIM_BRIDGE_FILE) < (int)sizeof path)
    unlink(path);
}

void sb_shim_dir_remove(const char *dir, char *const *names) {
  char path[PATH_MAX];
  if (dir == NULL)
    return;
  remove_bridge_file(dir);
  if (names == NULL)
    return;
  for (; *names != NULL; names++)
    if (snprintf(path, sizeof path, "%s/%s", dir, *names) < (int)sizeof path)
      unlink(path);
  rmdir(dir);
}

/* A fresh 0700 directory in $TMPDIR (else /tmp), malloc'd. */
static int fresh_dir(char **out, sb_diag *diag) {
  const char *tmp = getenv("TMPDIR");
  char *dir;

  if (tmp == NULL || tmp[0] != '/')
    tmp = "/tmp";
  dir = sb__strdupf("%s/socketbridge-shims.XXXXXX", tmp);
  if (dir == NULL)
    return sb_diag_set(diag, -ENOMEM, "out of memory");
  if (mkdtemp(dir) == NULL) {
    int err = errno;
    free(dir);
    return sb_diag_set(diag, -err, "cannot create a directory in %s: %s", tmp,
                       strerror(err));
  }
  *out = dir;
  return 0;
}

/* dir, made if missing (one level), as an absolute path, malloc'd: a
 * relative PATH entry would follow each process's cwd. */
static int given_dir(const char *dir, char **out, sb_diag *diag) {
  struct stat st;

  if (mkdir(dir, 0755) != 0 && errno != EEXIST)
    return sb_diag_set(diag, -errno, "%s: %s", dir, strerror(errno));
  if (stat(dir, &st) != 0)
    return sb_diag_set(diag, -errno, "%s: %s", dir, strerror(errno));
  if (!S_ISDIR(st.st_mode))
    return sb_diag_set(diag, -ENOTDIR, "%s: %s", dir, strerror(ENOTDIR));
  *out = realpath(dir, NULL);
  if (*out == NULL)
    return sb_diag_set(diag, -errno, "%s: %s", dir, strerror(errno));
  return 0;
}

int sb_shim_dir_make(const char *dir, char *const *names, const char *stub_path,
                     const sb_ticket *ticket, char **path, sb_diag *diag) {
  char *made = NULL;
  int r;

  if (path != NULL)
    *path = NULL;
  if (names == NULL || stub_path == NULL || stub_path[0] != '/')
    return sb_diag_set(diag, -EINVAL, "the stub's path must be absolute");
  for (size_t i = 0; names[i] != NULL; i++)
    if (!is_file_name(names[i]))
      return sb_diag_set(diag, -EINVAL, "%s is not a program name (no '/', not . or ..)",
                         names[i]);
  r = dir != NULL ? given_dir(dir, &made, diag) : fresh_dir(&made, diag);
  if (r < 0)
    return r;
  r = make_links(made, names, stub_path, diag);
  /* An earlier bridge file is replaced (it is written O_EXCL). */
  if (r == 0 && ticket != NULL) {
    remove_bridge_file(made);
    r = write_bridge_file(made, sb_ticket_env(ticket), diag);
  }
  if (r < 0) {
    if (dir == NULL)
      sb_shim_dir_remove(made, names);
    free(made);
    return r;
  }
  if (path != NULL)
    *path = made;
  else
    free(made);
  return 0;
}
