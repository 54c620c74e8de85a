/* SPDX-License-Identifier: MIT */
/* path.c - finding a program as execvp(3) would, minus the stub itself.
 *
 * Both sides use it: the stub, to exec or spawn what the supervisor names,
 * or the real program when it falls back; the supervisor, to tell what a
 * stub's lookup would find. A stub installed as a PATH shim named `git`
 * must never find itself when it looks `git` up, or it would exec itself
 * forever: its shim directories are skipped by name, and any other link to
 * it (a symlink or hard link elsewhere on PATH) by identity. A name with a
 * slash that is the stub (in a shim directory, or the same file) is looked
 * up by its last component the same way: gcc's collect2 runs `ld` by the
 * shim's absolute path, cmake runs the compiler so, and `{0}` repeats it. */
#include "proto.h"

#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Length of the element at s of a colon-separated list. (Not strcspn:
 * every libc function the stub imports costs it room.) */
static size_t elem_len(const char *s) {
  size_t n = 0;
  while (s[n] != '\0' && s[n] != ':')
    n++;
  return n;
}

/* Length of dir[0..n) without trailing slashes: "bin/" is "bin", and "/"
 * stays "/". */
static size_t trim_len(const char *dir, size_t n) {
  while (n > 1 && dir[n - 1] == '/')
    n--;
  return n;
}

/* True when dir[0..n) is one of the colon-separated skip directories.
 * Empty entries of skip match nothing: an empty SOCKETBRIDGE_SHIMS must
 * not mean the current directory. */
static bool skipped(const char *dir, size_t n, const char *skip) {
  n = trim_len(dir, n);
  while (skip != NULL && *skip != '\0') {
    size_t k = elem_len(skip);
    if (k > 0 && trim_len(skip, k) == n && strncmp(skip, dir, n) == 0)
      return true;
    skip += k + (skip[k] == ':');
  }
  return false;
}

/* 0 for a program we may run; -EACCES for one that is there but is not
 * (as execve would say); -ENOENT for nothing, a directory, or the stub. */
static int check(const char *p, const struct stat *self) {
  struct stat st;
  if (stat(p, &st) < 0)
    return errno == EACCES ? -EACCES : -ENOENT;
  if (S_ISDIR(st.st_mode))
    return -ENOENT;
  if (self != NULL && st.st_dev == self->st_dev && st.st_ino == self->st_ino)
    return -ENOENT;
  /* AT_EACCESS: execve checks the effective ids, not the real ones. */
  if (!S_ISREG(st.st_mode) || faccessat(AT_FDCWD, p, X_OK, AT_EACCESS) < 0)
    return -EACCES;
  return 0;
}

static int copy_out(const char *s, size_t len, char *out, size_t outsz) {
  if (len >= outsz)
    return -ENAMETOOLONG;
  memcpy(out, s, len + 1);
  return 0;
}

/* Builds dir/name into buf (PATH_MAX bytes); false when it does not fit. */
static bool join(char *buf, const char *dir, size_t n, const char *name, size_t len) {
  n = trim_len(dir, n);
  size_t slash = dir[n - 1] != '/';
  if (n + slash + len >= PATH_MAX)
    return false;
  memcpy(buf, dir, n);
  buf[n] = '/';
  memcpy(buf + n + slash, name, len + 1);
  return true;
}

/* Whether the path p (which holds a slash) names the stub: a file in one of
 * the skip directories, or the same file as self. */
static bool is_stub(const char *p, const char *skip_dirs, const struct stat *self) {
  struct stat st;
  const char *slash = strrchr(p, '/');
  if (skipped(p, slash > p ? (size_t)(slash - p) : 1, skip_dirs))
    return true;
  return self != NULL && stat(p, &st) == 0 && st.st_dev == self->st_dev &&
         st.st_ino == self->st_ino;
}

/* cold: called once per program start, and the stub must stay small. */
__attribute__((cold)) int sb_path_find(const char *name, const char *path,
                                       const char *skip_dirs, const char *skip_file,
                                       char *out, size_t outsz) {
  struct stat self;
  char buf[PATH_MAX];
  size_t len = name != NULL ? strlen(name) : 0;
  int err = -ENOENT;

  if (len == 0)
    return -ENOENT;
  bool have_self = skip_file != NULL && stat(skip_file, &self) == 0;
  const char *slash = strrchr(name, '/');
  if (slash != NULL) {
    if (!is_stub(name, skip_dirs, have_self ? &self : NULL))
      return copy_out(name, len, out, outsz);
    /* The stub by another path: the program it stands in for, by name. */
    name = slash + 1;
    len = strlen(name);
    if (len == 0)
      return -ENOENT;
  }
  if (len > NAME_MAX)
    return -ENAMETOOLONG;
  if (path == NULL || *path == '\0')
    path = SB_DEFAULT_PATH;
  for (const char *p = path;; p++) {
    size_t n = elem_len(p);
    /* An empty element is the current directory, as for execvp; "./name"
     * keeps a slash, so nothing searches the result again. */
    const char *dir = n > 0 ? p : ".";
    size_t dn = n > 0 ? n : 1;
    int r = -ENOENT;
    if (!skipped(dir, dn, skip_dirs)) {
      if (!join(buf, dir, dn, name, len))
        r = -ENAMETOOLONG;
      else if ((r = check(buf, have_self ? &self : NULL)) == 0)
        return copy_out(buf, strlen(buf), out, outsz);
    }
    /* Worth reporting, from most to least: found but not runnable, a path
     * too long to try, nothing. */
    if (r == -EACCES || (r == -ENAMETOOLONG && err == -ENOENT))
      err = r;
    p += n;
    if (*p == '\0')
      return err;
  }
}
