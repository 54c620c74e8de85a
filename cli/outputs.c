/* SPDX-License-Identifier: MIT */
/* outputs.c - the files the options of run name (--stdin, --stdout,
 * --stderr, --events, --record), opened before anything runs.
 *
 * Opening never waits: a FIFO is opened non-blocking (a FIFO nobody reads
 * is an error, not a hang). Nothing of an output is touched until the run
 * starts: a regular file is emptied then (cli_file_start), and one this
 * open created is removed when the run does not start, so a run that fails
 * its checks leaves every file as it was.
 *
 * "-" is the command's own stdout (stdin for --stdin). /dev/stdout,
 * /dev/stderr, /dev/fd/N, /proc/self/fd/N, and any path that is the file
 * our stdout or stderr already writes to, are inherited descriptors: they
 * are appended to, never truncated (the caller's `2>log` keeps what the
 * command writes there). */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The descriptor a path names as one we inherited, or -1. */
static int inherited_fd(const char *path, cli_file_use use) {
  static const char *const prefixes[] = {"/dev/fd/", "/proc/self/fd/", NULL};
  char *end;
  if (strcmp(path, "-") == 0)
    return use == CLI_FILE_READ ? 0 : 1;
  if (strcmp(path, "/dev/stdin") == 0)
    return 0;
  if (strcmp(path, "/dev/stdout") == 0)
    return 1;
  if (strcmp(path, "/dev/stderr") == 0)
    return 2;
  for (size_t i = 0; prefixes[i] != NULL; i++) {
    size_t n = strlen(prefixes[i]);
    if (strncmp(path, prefixes[i], n) != 0 || path[n] < '0' || path[n] > '9')
      continue;
    errno = 0;
    long fd = strtol(path + n, &end, 10);
    if (*end == '\0' && errno == 0 && fd <= INT_MAX)
      return (int)fd;
  }
  return -1;
}

/* True when st is the file our stdout or stderr is: appended to, as when
 * it is named /dev/stderr. */
static bool is_our_output(const struct stat *st) {
  struct stat o;
  for (int fd = 1; fd <= 2; fd++)
    if (fstat(fd, &o) == 0 && S_ISREG(o.st_mode) && o.st_dev == st->st_dev &&
        o.st_ino == st->st_ino)
      return true;
  return false;
}

static int set_blocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static int say(const cli_file *f, const char *what) {
  cli_error("%s: %s: %s", f->option, f->path, what);
  return -1;
}

/* An inherited descriptor: a pipe, FIFO or terminal that a JSON Lines
 * writer makes non-blocking is opened anew (/proc/self/fd/N: our own open
 * file, so the caller's and the child's stay blocking); anything else is
 * shared (a regular file keeps the caller's offset and mode). */
static int open_inherited(cli_file *f, int n, cli_file_use use) {
  char proc[64];
  struct stat st;
  if (fstat(n, &st) != 0)
    return say(f, strerror(errno));
  if (use == CLI_FILE_STREAM && (S_ISFIFO(st.st_mode) || isatty(n))) {
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", n);
    f->fd = open(proc, O_WRONLY | O_APPEND | O_NONBLOCK | O_CLOEXEC);
    if (f->fd < 0)
      return say(f, errno == ENXIO ? "a pipe nobody reads" : strerror(errno));
    return 0;
  }
  if (use != CLI_FILE_READ && S_ISDIR(st.st_mode))
    return say(f, strerror(EISDIR));
  /* A socket cannot be opened anew, and making the one we share
   * non-blocking would change it for the caller and the child too. */
  if (use == CLI_FILE_STREAM && S_ISSOCK(st.st_mode))
    return say(f, "a socket (give a file, a pipe or a terminal)");
  f->fd = fcntl(n, F_DUPFD_CLOEXEC, 3);
  return f->fd < 0 ? say(f, strerror(errno)) : 0;
}

static int open_read(cli_file *f) {
  struct stat st;
  /* Non-blocking: a FIFO is opened at once, writer or not. */
  f->fd = open(f->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (f->fd < 0)
    return say(f, strerror(errno));
  if (fstat(f->fd, &st) != 0 || S_ISDIR(st.st_mode))
    return say(f, strerror(S_ISDIR(st.st_mode) ? EISDIR : errno));
  return set_blocking(f->fd) < 0 ? say(f, strerror(errno)) : 0;
}

static int open_write(cli_file *f, cli_file_use use) {
  struct stat st;
  bool exists = stat(f->path, &st) == 0;
  int flags = O_WRONLY | O_NONBLOCK | O_CLOEXEC;

  if (exists && S_ISDIR(st.st_mode))
    return say(f, strerror(EISDIR));
  if (exists && is_our_output(&st))
    flags |= O_APPEND;
  else if (!exists)
    flags |= O_CREAT | O_EXCL; /* ours: removed if the run does not start */
  f->fd = open(f->path, flags, 0666);
  if (f->fd < 0)
    return say(f, errno == ENXIO && exists && S_ISFIFO(st.st_mode)
                      ? "a FIFO nobody reads (start its reader first)"
                      : strerror(errno));
  f->created = !exists;
  if (fstat(f->fd, &st) == 0 && S_ISREG(st.st_mode) && !(flags & O_APPEND))
    f->truncate = true;
  /* The child's stdout and stderr block as usual: its own business. */
  if (use == CLI_FILE_CHILD && set_blocking(f->fd) < 0)
    return say(f, strerror(errno));
  return 0;
}

int cli_file_open(cli_file *f, const char *option, const char *path, cli_file_use use) {
  int n;
  *f = (cli_file){.option = option, .path = path, .fd = -1};
  if (path == NULL)
    return 0;
  n = inherited_fd(path, use);
  if (n >= 0)
    return open_inherited(f, n, use);
  return use == CLI_FILE_READ ? open_read(f) : open_write(f, use);
}

void cli_file_start(cli_file *f) {
  if (f->fd >= 0 && f->truncate && ftruncate(f->fd, 0) != 0)
    cli_error("%s: %s: cannot empty it: %s", f->option, f->path, strerror(errno));
  f->truncate = false;
  f->created = false;
}

int cli_file_take(cli_file *f) {
  int fd = f->fd;
  f->fd = -1;
  return fd;
}

void cli_file_close(cli_file *f) {
  if (f->fd >= 0)
    close(f->fd);
  f->fd = -1;
  if (f->created)
    unlink(f->path); /* the run did not start: as if never opened */
  f->created = false;
}
