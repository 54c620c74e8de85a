/* SPDX-License-Identifier: MIT */
/* fdout.c - the stub's own fds: how to write fds 1/2 (and read fd 0) without
 * ever blocking the poll loop, and how to close them.
 *
 * A blocking write to a full pipe would stop the loop, and with it the
 * detection of a lost bridge: the stub would hang for as long as its reader
 * does. Setting O_NONBLOCK on fd 1 is not an option, because the flag lives
 * on the open file description, which the stub shares with its parent and
 * siblings (a shell's terminal, a pipe inherited by several processes).
 * So, on Linux, the stub opens /proc/self/fd/N again: that yields a new,
 * private description of the same pipe, FIFO or terminal, on which
 * O_NONBLOCK affects nobody else. Sockets need no re-open (and cannot be
 * re-opened that way): send()/recv() take MSG_DONTWAIT per call.
 *
 * When the re-open fails (no /proc, or a pipe or terminal owned by another
 * user), the stub does I/O on the blocking fd itself, but only once poll()
 * says it is ready, and writes at most PIPE_BUF bytes at a time: a pipe
 * that has room for one byte has room for a page, so that write does not
 * block. (It still can if another process sharing the pipe fills it
 * between our poll and our write: the one case left where a stuck reader
 * stalls the stub.) Regular files and character devices such as /dev/null
 * are written plainly: they do not block for long. */
#include "stub.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

unsigned stub_std_closed;

_Static_assert(SB_TTY_STDIN == 1u << 0 && SB_TTY_STDOUT == 1u << 1 &&
                   SB_TTY_STDERR == 1u << 2,
               "a tty mask bit is 1 << fd");

/* One ioctl per fd tells both: a terminal, or EBADF for a closed fd (and
 * ENOTTY for any other open one). Only an EBADF is asked again: an O_PATH
 * fd is open, yet refuses every ioctl with EBADF. */
unsigned stub_guard_std_fds(unsigned *tty) {
  unsigned closed = 0;
  *tty = 0;
  for (int fd = 0; fd <= 2; fd++) {
    if (isatty(fd)) {
      *tty |= 1u << fd;
      continue;
    }
    if (errno != EBADF || fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
      continue;
    closed |= 1u << fd;
    /* open() returns the lowest free fd, which is this one: the ones below
     * it are open by now. */
    if (open("/dev/null", O_RDWR) != fd)
      stub_fail("fd %d is closed and /dev/null cannot take its place", fd);
  }
  stub_std_closed = closed;
  return closed;
}

void stub_unguard_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (stub_std_closed & (1u << fd))
      close(fd);
}

/* A private non-blocking description of fd, or -1. */
static int reopen_private(int fd, bool writing) {
  char path[32];
  sb__snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  /* O_NOCTTY: re-opening a terminal must not make it our controlling one. */
  return open(path, (writing ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
}

void stub_fd_setup(stub_fd *f, int fd, bool writing, bool was_closed, int tty) {
  struct stat st;
  f->fd = fd;
  f->io = fd;
  f->mode = STUB_IO_PLAIN;
  f->done = false;
  f->failed = false;
  if (was_closed) {
    /* The placeholder must not swallow data: I/O on -1 fails with EBADF,
     * which is what the parent set up and what gets reported. */
    f->io = -1;
    return;
  }
  if (fstat(fd, &st) < 0)
    return;
  if (S_ISSOCK(st.st_mode)) {
    f->mode = STUB_IO_SOCKET;
    return;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && (fl & O_NONBLOCK)) {
    /* Whoever made it non-blocking shares it so; we just wait for poll. */
    f->mode = STUB_IO_NONBLOCK;
    return;
  }
  if (!S_ISFIFO(st.st_mode) && !(tty >= 0 ? tty : isatty(fd)))
    return;
  int p = reopen_private(fd, writing);
  /* Else the blocking fd, polled: see the comment at the top. */
  f->io = p >= 0 ? p : fd;
  f->mode = p >= 0 ? STUB_IO_NONBLOCK : STUB_IO_POLLED;
}

/* STUB_IO_POLLED: true when fd is ready for events now (or has failed, which
 * the read or write then reports without blocking). */
static bool polled_ready(const stub_fd *f, short events) {
  struct pollfd p = {.fd = f->io, .events = events};
  return f->mode != STUB_IO_POLLED || poll(&p, 1, 0) > 0;
}

ssize_t stub_fd_write(const stub_fd *f, const void *buf, size_t len) {
  if (!polled_ready(f, POLLOUT))
    return -EAGAIN;
  if (f->mode == STUB_IO_POLLED && len > PIPE_BUF)
    len = PIPE_BUF;
  ssize_t n = f->mode == STUB_IO_SOCKET
                  ? send(f->io, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL)
                  : write(f->io, buf, len);
  if (n < 0)
    return -errno;
  /* A write of len > 0 that moves nothing and reports no error: treat as
   * an I/O error rather than retry forever. */
  return n == 0 && len > 0 ? -EIO : n;
}

ssize_t stub_fd_read(const stub_fd *f, void *buf, size_t len) {
  if (!polled_ready(f, POLLIN))
    return -EAGAIN;
  ssize_t n = f->mode == STUB_IO_SOCKET ? recv(f->io, buf, len, MSG_DONTWAIT)
                                        : read(f->io, buf, len);
  return n < 0 ? -errno : n;
}

void stub_fd_close(stub_fd *f) {
  if (f->io >= 0 && f->io != f->fd)
    close(f->io);
  /* /dev/null takes the slot, atomically closing the stream (the reader
   * sees EOF once every writer is gone), so that no later open() lands on
   * fd 1 or 2 and receives what was meant for the old stream. */
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, f->fd) < 0)
    close(f->fd);
  if (null >= 0)
    close(null);
  f->io = -1;
  f->done = true;
}
