/* SPDX-License-Identifier: MIT */
/* pty.c - a delegated program on a pseudo-terminal (sb_conn_delegate, when
 * the call has a terminal): the supervisor holds the master, the program
 * has the slave as its controlling terminal and stdio.
 *
 *   stub stdin  --frames-->  delegate.c  --uv_write-->  master  (keys, raw)
 *   master  --uv_read-->  sb__delegate_output  --frames-->  stub stdout
 *
 * The master is the delegate's `in` handle (one uv_pipe_t reads and writes
 * it), so its writes, their backpressure and its close are delegate.c's;
 * here are opening it, reading it, and its size. */
#include "sb_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

int sb__pty_open(const sb_winsize *ws, int fds[2], char *name, size_t len) {
  struct winsize w = {.ws_row = ws->rows, .ws_col = ws->cols};
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), slave = -1, r;

  if (master < 0)
    return -errno;
  if (grantpt(master) != 0 || unlockpt(master) != 0 ||
      (r = ptsname_r(master, name, len)) != 0 || ioctl(master, TIOCSWINSZ, &w) != 0)
    goto error;
  /* O_NOCTTY: the slave must not become *our* controlling terminal; the
   * program opens it again as its own (sb__spawn's ctty). */
  slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    goto error;
  fds[0] = slave;
  fds[1] = master;
  return 0;

error:
  r = -errno;
  close(master);
  return r != 0 ? r : -EIO;
}

static void on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  sb_conn *conn = handle->data;
  (void)hint;
  *buf = uv_buf_init(conn->dp->pty_buf, SB__PTY_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf) {
  sb_conn *conn = stream->data;
  if (n > 0) {
    sb__delegate_output(conn, 1, buf->base, (size_t)n);
  } else if (n < 0) {
    /* EIO: every slave fd is closed (the program and all it left behind
     * ended). Writes to the master go on failing quietly until the
     * program's end closes it. */
    uv_read_stop(stream);
  }
}

int sb__pty_start(sb_conn *conn) {
  sb__dispo *dp = conn->dp;
  if (dp->pty_buf == NULL && (dp->pty_buf = malloc(SB__PTY_BUF_SIZE)) == NULL)
    return -ENOMEM;
  dp->on_pty = true;
  return uv_read_start((uv_stream_t *)&dp->in, on_alloc, on_read);
}

void sb__pty_pause(sb_conn *conn, bool paused) {
  sb__dispo *dp = conn->dp;
  if (!dp->in_open)
    return;
  if (paused)
    uv_read_stop((uv_stream_t *)&dp->in);
  else
    uv_read_start((uv_stream_t *)&dp->in, on_alloc, on_read);
}

/* Whatever the program wrote before it exited is in the master by now: a
 * read with nothing buffered first flushes the line discipline's pending
 * work (n_tty). The master is non-blocking (uv_pipe_open), so this never
 * waits; a process the program left behind, still writing, is cut off
 * after SB__PTY_DRAIN_READS reads. */
void sb__pty_drain(sb_conn *conn) {
  sb__dispo *dp = conn->dp;
  uv_os_fd_t fd;

  if (!dp->on_pty || !dp->in_open || uv_fileno((uv_handle_t *)&dp->in, &fd) != 0)
    return;
  for (unsigned i = 0; i < SB__PTY_DRAIN_READS && sb__conn_accepted(conn); i++) {
    ssize_t n = read(fd, dp->pty_buf, SB__PTY_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return; /* EAGAIN: all read; EIO: nobody holds the slave */
    sb__delegate_output(conn, 1, dp->pty_buf, (size_t)n);
  }
}

void sb__pty_resize(sb_conn *conn) {
  sb__dispo *dp = conn->dp;
  struct winsize w = {.ws_row = conn->call.winsize.rows,
                      .ws_col = conn->call.winsize.cols};
  uv_os_fd_t fd;
  /* The kernel sends SIGWINCH to the pty's foreground group. */
  if (dp != NULL && dp->on_pty && dp->in_open &&
      uv_fileno((uv_handle_t *)&dp->in, &fd) == 0)
    ioctl(fd, TIOCSWINSZ, &w);
}
