/* SPDX-License-Identifier: MIT */
/* child_stdio.c - what a child's stdin, stdout and stderr are: the
 * supervisor's own, /dev/null, a caller's fd, a file, a pipe captured
 * through libuv, or a buffer fed to stdin.
 *
 * Everything is opened in the parent before the spawn, so an error (a file
 * that cannot be created...) is returned by sb_spawn. Every fd the child's
 * 0..2 come from is close-on-exec and at 3 or above: the spawn's dup2s
 * cannot clobber one another's sources, and a supervisor whose own 0..2
 * are closed never has one of its standard fds taken by our pipes. */
#include "sb_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Moves fd to 3 or above (close-on-exec). Returns the fd or -errno; fd is
 * closed either way when it had to move. */
static int above_stdio(int fd) {
  int nfd, err;
  if (fd >= 3)
    return fd;
  nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  err = errno;
  close(fd);
  return nfd >= 0 ? nfd : -err;
}

static int open_above(const char *path, int flags, mode_t mode) {
  int fd = open(path, flags | O_CLOEXEC, mode);
  return fd >= 0 ? above_stdio(fd) : -errno;
}

/* ---- sb_spawn: checking and copying the options ------------------------- */

static int check_one(int i, const sb_stdio *s, const sb_spawn_options *opts) {
  switch (s->mode) {
  case SB_STDIO_INHERIT:
  case SB_STDIO_NULL:
    return 0;
  case SB_STDIO_FD:
    return s->fd >= 0 ? 0 : -EINVAL;
  case SB_STDIO_FILE:
    return s->path != NULL && s->path[0] != '\0' ? 0 : -EINVAL;
  case SB_STDIO_CAPTURE:
    return i > 0 && opts->on_output != NULL ? 0 : -EINVAL;
  case SB_STDIO_BUFFER:
    /* libuv writes at most UINT_MAX bytes from one buffer. */
    return i == 0 && (s->data != NULL || s->len == 0) && s->len <= UINT_MAX ? 0 : -EINVAL;
  }
  return -EINVAL;
}

int sb__stdio_setup(sb_child *child, const sb_spawn_options *opts) {
  int i, r;

  /* Every mode is checked before any file is created or truncated. */
  for (i = 0; i < 3; i++)
    if ((r = check_one(i, &opts->stdio[i], opts)) < 0)
      return r;

  for (i = 0; i < 3; i++) {
    const sb_stdio *s = &opts->stdio[i];
    sb__stdio_cfg *c = &child->stdio[i];
    c->mode = s->mode;
    switch (s->mode) {
    case SB_STDIO_FD:
      c->fd = s->fd;
      break;
    case SB_STDIO_FILE:
      /* Opened once for every run: restarts append to what the earlier
       * runs wrote, and stdin is read again from its start. */
      c->fd = i == 0 ? open_above(s->path, O_RDONLY, 0)
                     : open_above(s->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (c->fd < 0)
        return c->fd;
      break;
    case SB_STDIO_CAPTURE:
      if (child->rbuf == NULL &&
          (child->rbuf = sb__page_alloc(SB__CAPTURE_BUF_SIZE)) == NULL)
        return -ENOMEM;
      break;
    case SB_STDIO_BUFFER:
      if (s->len > 0) {
        if ((c->data = malloc(s->len)) == NULL)
          return -ENOMEM;
        memcpy(c->data, s->data, s->len);
        c->len = s->len;
      }
      break;
    default:
      break;
    }
  }
  return 0;
}

void sb__stdio_cleanup(sb_child *child) {
  for (int i = 0; i < 3; i++) {
    sb__stdio_cfg *c = &child->stdio[i];
    if (c->mode == SB_STDIO_FILE && c->fd >= 0)
      close(c->fd);
    c->fd = -1;
    free(c->data);
    c->data = NULL;
  }
}

/* ---- one run: before and after the spawn --------------------------------- */

static void plan_close(sb__stdio_plan *plan) {
  for (int i = 0; i < 3; i++) {
    if (plan->close_child_fd[i] && plan->child_fd[i] >= 0)
      close(plan->child_fd[i]);
    if (plan->parent_fd[i] >= 0)
      close(plan->parent_fd[i]);
    plan->child_fd[i] = plan->parent_fd[i] = -1;
    plan->close_child_fd[i] = false;
  }
}

/* A pipe whose child end is dup'd onto fd i of the child. */
static int open_pipe(sb__stdio_plan *plan, int i) {
  int p[2], rd, wr;
  if (pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  rd = above_stdio(p[0]);
  wr = above_stdio(p[1]);
  if (rd < 0 || wr < 0) {
    if (rd >= 0)
      close(rd);
    if (wr >= 0)
      close(wr);
    return rd < 0 ? rd : wr;
  }
  /* stdin: the child reads, we write; stdout/stderr: the other way. */
  plan->child_fd[i] = i == 0 ? rd : wr;
  plan->parent_fd[i] = i == 0 ? wr : rd;
  plan->close_child_fd[i] = true;
  return 0;
}

int sb__stdio_plan_open(sb_child *child, sb__stdio_plan *plan) {
  int i, fd, r = 0;

  for (i = 0; i < 3; i++) {
    plan->child_fd[i] = plan->parent_fd[i] = -1;
    plan->close_child_fd[i] = false;
  }
  for (i = 0; i < 3 && r == 0; i++) {
    const sb__stdio_cfg *c = &child->stdio[i];
    switch (c->mode) {
    case SB_STDIO_NULL:
      fd = open_above("/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
      if (fd < 0)
        r = fd;
      plan->child_fd[i] = fd;
      plan->close_child_fd[i] = fd >= 0;
      break;
    case SB_STDIO_FILE:
      /* A restart reads stdin again from the start (a FIFO cannot seek,
       * and just goes on). */
      if (i == 0)
        lseek(c->fd, 0, SEEK_SET);
      plan->child_fd[i] = c->fd;
      break;
    case SB_STDIO_FD:
      /* A caller's fd below 3 is copied above, so wiring one of 0..2 in
       * the child never clobbers another's source (stdio = {1, 0, 2}). */
      if (c->fd < 3) {
        fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
          r = -errno;
        plan->child_fd[i] = fd;
        plan->close_child_fd[i] = fd >= 0;
      } else {
        plan->child_fd[i] = c->fd;
      }
      break;
    case SB_STDIO_CAPTURE:
    case SB_STDIO_BUFFER:
      r = open_pipe(plan, i);
      break;
    case SB_STDIO_INHERIT:
      break;
    }
  }
  if (r < 0)
    plan_close(plan);
  return r;
}

/* ---- capture --------------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  sb_child *child = handle->data;
  (void)suggested;
  *buf = uv_buf_init(child->rbuf, SB__CAPTURE_BUF_SIZE);
}

/* One chunk to the caller. The clock is read now, as the chunk is read; the
 * stamps never go backwards, even when the wall clock is set back, so they
 * order a child's stdout and stderr chunks. */
static void deliver(sb_child *child, int stream, const char *buf, size_t len) {
  uint64_t ts = sb__realtime_ns();
  if (ts < child->last_ts_ns)
    ts = child->last_ts_ns;
  child->last_ts_ns = ts;
  child->on_output(child, stream, buf, len, ts);
}

static void close_out(sb_child *child, int k) {
  if (!child->out_open[k])
    return;
  child->out_open[k] = false;
  uv_close((uv_handle_t *)&child->out[k], sb__child_handle_closed);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sb_child *child = stream->data;
  int k = stream == (uv_stream_t *)&child->out[0] ? 0 : 1;

  if (nread > 0)
    deliver(child, k + 1, buf->base, (size_t)nread);
  else if (nread < 0)
    close_out(child, k); /* UV_EOF, or an error: either way, no more */
}

void sb__child_capture_pause(sb_child *child, bool paused) {
  for (int k = 0; k < 2; k++) {
    if (!child->out_open[k])
      continue;
    if (paused)
      uv_read_stop((uv_stream_t *)&child->out[k]);
    else if (uv_read_start((uv_stream_t *)&child->out[k], on_alloc, on_read) < 0)
      close_out(child, k);
  }
}

/* What the pipe holds when the run's leader is reaped: everything it wrote
 * before it exited is there. Bounded, so a grandchild that keeps the pipe
 * and writes without end cannot hold us; what it writes later is lost with
 * the pipe. */
static void drain(sb_child *child, int k) {
  uv_os_fd_t fd;
  ssize_t n;
  int rounds;

  if (uv_fileno((uv_handle_t *)&child->out[k], &fd) != 0)
    return;
  for (rounds = 0; rounds < 64 && child->out_open[k]; rounds++) {
    n = read(fd, child->rbuf, SB__CAPTURE_BUF_SIZE);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break; /* EOF, EAGAIN (nothing more now), or an error */
    deliver(child, k + 1, child->rbuf, (size_t)n);
  }
}

/* ---- feeding stdin --------------------------------------------------------- */

static void close_in(sb_child *child) {
  if (!child->in_open)
    return;
  child->in_open = false;
  uv_close((uv_handle_t *)&child->in, sb__child_handle_closed);
}

static void on_stdin_written(uv_write_t *req, int status) {
  /* Done, or the child closed its stdin (-EPIPE: it need not read it), or
   * the run ended (-ECANCELED): close our end so the child sees EOF. */
  (void)status;
  close_in(req->data);
}

/* Opens our end of a pipe as a libuv handle; the fd is closed on failure. */
static int open_handle(sb_child *child, uv_pipe_t *pipe, int fd) {
  int r = uv_pipe_init(child->server->loop, pipe, 0);
  if (r < 0) {
    close(fd);
    return r;
  }
  pipe->data = child;
  child->open_handles++;
  r = uv_pipe_open(pipe, fd);
  if (r < 0) {
    close(fd);
    uv_close((uv_handle_t *)pipe, sb__child_handle_closed);
  }
  return r;
}

static void start_capture(sb_child *child, int k, int fd) {
  if (open_handle(child, &child->out[k], fd) < 0)
    return; /* the child's writes fail with EPIPE; nothing else to do */
  child->out_open[k] = true;
  if (uv_read_start((uv_stream_t *)&child->out[k], on_alloc, on_read) < 0)
    close_out(child, k);
}

static void start_feed(sb_child *child, int fd) {
  const sb__stdio_cfg *c = &child->stdio[0];
  uv_buf_t buf;

  if (c->len == 0) {
    close(fd); /* nothing to feed: EOF at once */
    return;
  }
  if (open_handle(child, &child->in, fd) < 0)
    return;
  child->in_open = true;
  child->in_req.data = child;
  buf = uv_buf_init(c->data, (unsigned)c->len);
  if (uv_write(&child->in_req, (uv_stream_t *)&child->in, &buf, 1, on_stdin_written) < 0)
    close_in(child);
}

void sb__stdio_plan_finish(sb_child *child, sb__stdio_plan *plan, bool spawned) {
  int i;

  for (i = 0; i < 3; i++) {
    if (plan->close_child_fd[i])
      close(plan->child_fd[i]);
    plan->close_child_fd[i] = false;
  }
  if (!spawned) {
    plan_close(plan);
    return;
  }
  for (i = 0; i < 3; i++) {
    if (plan->parent_fd[i] < 0)
      continue;
    if (i == 0)
      start_feed(child, plan->parent_fd[i]);
    else
      start_capture(child, i - 1, plan->parent_fd[i]);
    plan->parent_fd[i] = -1;
  }
}

void sb__stdio_run_ended(sb_child *child) {
  for (int k = 0; k < 2; k++) {
    if (child->out_open[k]) {
      drain(child, k);
      close_out(child, k);
    }
  }
  close_in(child);
}
