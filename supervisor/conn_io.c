/* SPDX-License-Identifier: MIT */
/* conn_io.c - bytes in and out of a connection.
 *
 * Out: every sb_conn_write is one uv_write whose buffers alternate frame
 * headers (in the pooled request) and pieces of the caller's buffer, which is
 * never copied. In: one reusable buffer per connection, handed to the
 * decoder; stdin reaches the caller as pointers into it. A pause stops
 * reading between two events; what was read but not yet dispatched waits in
 * the buffer (nothing else is read meanwhile) and is dispatched first on
 * resume. */
#include "sb_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- reading ------------------------------------------------------------- */

/* A welcomed connection reads into its own buffer (a pause may leave bytes
 * in it); the others into the server's, whose bytes are dispatched at once,
 * so that a thousand idle handshakes do not hold 64 KiB each. The first
 * bytes of a handshake go to conn->head (conn.c decides on them). */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  sb_conn *conn = handle->data;
  uint8_t **mem = conn->state == SB__CONN_OPEN ? &conn->rbuf : &conn->server->hs_rbuf;
  (void)suggested;
  if (conn->state == SB__CONN_HANDSHAKE && !conn->head_done) {
    *buf = uv_buf_init((char *)conn->head + conn->head_len,
                       (unsigned)(sizeof conn->head - conn->head_len));
    return;
  }
  if (*mem == NULL)
    *mem = sb__page_alloc(SB__READ_BUF_SIZE);
  /* A zero-length buffer makes libuv report UV_ENOBUFS. */
  *buf = uv_buf_init((char *)*mem, *mem != NULL ? SB__READ_BUF_SIZE : 0);
}

/* Bytes left undispatched by a pause must outlive the next read into a
 * shared buffer (or the handshake's head): into the connection's own. */
static bool keep_pending(sb_conn *conn, const uint8_t **p, size_t n) {
  if (conn->rbuf != NULL && *p >= conn->rbuf && *p < conn->rbuf + SB__READ_BUF_SIZE)
    return true;
  if (conn->rbuf == NULL && (conn->rbuf = sb__page_alloc(SB__READ_BUF_SIZE)) == NULL)
    return false;
  memmove(conn->rbuf, *p, n); /* n <= SB__READ_BUF_SIZE: one read's rest */
  *p = conn->rbuf;
  return true;
}

static bool live(const sb_conn *conn) {
  return conn->state == SB__CONN_HANDSHAKE || conn->state == SB__CONN_OPEN;
}

/* Dispatches the events in p[0..n), stopping early on a pause or a close. */
static void process(sb_conn *conn, const uint8_t *p, size_t n) {
  sb_frame f;
  sb_diag diag;
  int r;

  conn->in_process = true;
  while (live(conn) && !conn->paused) {
    diag.msg[0] = '\0';
    r = sb_decoder_next(&conn->dec, &p, &n, &f, &diag);
    if (r == 0)
      break;
    if (r < 0) {
      sb__conn_on_decode_error(conn, r, &diag);
      break;
    }
    sb__conn_on_frame(conn, &f);
  }
  conn->in_process = false;
  if (!live(conn))
    return;
  if (n > 0 && !keep_pending(conn, &p, n)) {
    sb__conn_close(conn, SB_CLOSE_SERVER, -ENOMEM);
    return;
  }
  conn->pend = n > 0 ? p : NULL;
  conn->pend_len = n;
  /* A callback may have paused and resumed; reading is on unless paused. */
  if (!conn->paused && n == 0 && sb__conn_start_reading(conn) < 0)
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, UV_EIO);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sb_conn *conn = stream->data;

  if (nread == 0)
    return;
  if (conn->state == SB__CONN_REJECTING) {
    /* Draining a rejected peer: its bytes are dropped, up to a bound in
     * time (the linger timer) and in bytes, so a flood costs little. */
    if (nread > 0)
      conn->drained += (size_t)nread;
    if (nread < 0 || conn->drained > SB__LINGER_BYTES)
      sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
    return;
  }
  if (!live(conn))
    return;
  if (nread < 0) {
    sb__conn_on_read_end(conn, (int)nread);
    return;
  }
  if (conn->state == SB__CONN_HANDSHAKE && !conn->head_done) {
    if (!sb__conn_head_take(conn, (size_t)nread))
      return; /* more of the head to come, or refused */
    process(conn, conn->head, conn->head_len);
    explicit_bzero(conn->head, sizeof conn->head); /* it may hold the token */
  } else {
    process(conn, (const uint8_t *)buf->base, (size_t)nread);
  }
  if (conn->charged > 0)
    sb__conn_account(conn); /* what the decoder holds now */
}

size_t sb__conn_feed(sb_conn *conn, const uint8_t *p, size_t n) {
  uv_buf_t buf;

  if (!conn->reading || n == 0)
    return 0;
  on_alloc(&conn->io.handle, SB__READ_BUF_SIZE, &buf);
  if (buf.len == 0) {
    on_read(&conn->io.stream, UV_ENOBUFS, &buf);
    return 0;
  }
  if (n > buf.len)
    n = buf.len;
  memcpy(buf.base, p, n);
  on_read(&conn->io.stream, (ssize_t)n, &buf);
  return n;
}

bool sb__conn_feed_end(sb_conn *conn, int err) {
  uv_buf_t buf = uv_buf_init(NULL, 0);

  if (!conn->reading || err >= 0)
    return false;
  on_read(&conn->io.stream, err, &buf);
  return true;
}

void sb__conn_read_pending(sb_conn *conn, size_t limit) {
  uv_os_fd_t fd;
  uv_buf_t buf;
  ssize_t n;

  if (uv_fileno(&conn->io.handle, &fd) < 0)
    return;
  while (conn->reading && live(conn) && limit > 0) {
    on_alloc(&conn->io.handle, SB__READ_BUF_SIZE, &buf);
    if (buf.len == 0)
      return; /* no memory: the caller decides as if nothing came */
    n = recv(fd, buf.base, buf.len < limit ? buf.len : limit, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    /* libuv's errors are negative errno on Unix; 0 is the peer's end. */
    on_read(&conn->io.stream, n > 0 ? n : n == 0 ? UV_EOF : -errno, &buf);
    if (n <= 0)
      return;
    limit -= (size_t)n;
  }
}

int sb__conn_start_reading(sb_conn *conn) {
  int r;
  if (conn->reading)
    return 0;
  r = uv_read_start(&conn->io.stream, on_alloc, on_read);
  if (r == 0)
    conn->reading = true;
  return r;
}

void sb__conn_stop_reading(sb_conn *conn) {
  if (!conn->reading)
    return;
  uv_read_stop(&conn->io.stream);
  conn->reading = false;
}

static void on_drain(uv_timer_t *timer) {
  sb_conn *conn = timer->data;
  const uint8_t *p = conn->pend;
  size_t n = conn->pend_len;
  conn->pend = NULL;
  conn->pend_len = 0;
  process(conn, p, n);
}

/* Reading on again: first what was left undispatched, on the next loop
 * iteration (never from inside the caller's call), then the socket. */
static int unpause(sb_conn *conn) {
  int r = 0;
  conn->paused = false;
  if (conn->in_process)
    return 0; /* the dispatch loop goes on by itself */
  if (conn->pend_len > 0)
    uv_timer_start(&conn->timer, on_drain, 0, 0);
  else
    r = sb__conn_start_reading(conn);
  if (r < 0)
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, r);
  return r;
}

int sb_conn_pause(sb_conn *conn) {
  if (conn == NULL)
    return -EINVAL;
  if (conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  /* After exit or kill the connection reads until the stub closes. */
  if (conn->exit_sent || conn->paused)
    return 0;
  conn->paused = true;
  sb__conn_stop_reading(conn);
  uv_timer_stop(&conn->timer);
  return 0;
}

int sb_conn_resume(sb_conn *conn) {
  if (conn == NULL)
    return -EINVAL;
  if (conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  if (!conn->paused)
    return 0;
  return unpause(conn);
}

/* ---- writing ------------------------------------------------------------- */

static void on_write_done(uv_write_t *w, int status) {
  sb__write_req *req = sb__container_of(w, sb__write_req, req);
  sb_conn *conn = req->conn;
  sb_write_cb cb = req->cb;
  void *data = req->data;

  conn->queued -= req->bytes;
  sb__req_put(conn->server, req);
  /* A failed write means the stub is gone before it got everything. Close
   * before the callback, so the caller sees the connection closing. */
  if (status < 0 && live(conn))
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, status);
  if (cb != NULL)
    cb(conn, status, data);
}

static int submit(sb_conn *conn, sb__write_req *req, const uv_buf_t *bufs,
                  unsigned nbufs) {
  int r;
  /* Nothing may precede the welcome. */
  if (conn->welcome_pending && (r = sb__conn_welcome(conn)) < 0) {
    sb__req_put(conn->server, req);
    return r;
  }
  req->conn = conn;
  r = uv_write(&req->req, &conn->io.stream, bufs, nbufs, on_write_done);
  if (r < 0)
    sb__req_put(conn->server, req);
  else
    conn->queued += req->bytes;
  return r;
}

/* Frames buf[0..len) as data of kind, cut at max_bytes - 1, in one
 * uv_write. len 0 sends one empty frame (the end of that stream). owned, if
 * not NULL, is freed when the write ends, or now on error. */
static int write_frames(sb_conn *conn, sb_kind kind, const uint8_t *buf, size_t len,
                        sb_write_cb cb, void *data, void *owned) {
  sb_server *server = conn->server;
  size_t chunk = server->max_bytes - 1, nframes, i, off;
  sb__write_req *req;
  uv_buf_t two[2], *bufs;
  uint8_t *hdrs;

  req = sb__req_get(server);
  if (req == NULL) {
    free(owned);
    return -ENOMEM;
  }
  req->cb = cb;
  req->data = data;
  req->owned = owned;
  req->bytes = len;
  if (len <= chunk) {
    sb_frame_header(req->hdr, kind, (uint32_t)len);
    two[0] = uv_buf_init((char *)req->hdr, SB_FRAME_HEADER);
    two[1] = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
    return submit(conn, req, two, len > 0 ? 2 : 1);
  }

  nframes = (len - 1) / chunk + 1;
  if (nframes > UINT_MAX / 2) {
    sb__req_put(server, req);
    return -EINVAL;
  }
  /* libuv copies the buffer array; the headers must live until the end. */
  req->frames = malloc(nframes * (2 * sizeof(uv_buf_t) + SB_FRAME_HEADER));
  if (req->frames == NULL) {
    sb__req_put(server, req);
    return -ENOMEM;
  }
  bufs = req->frames;
  hdrs = (uint8_t *)(bufs + 2 * nframes);
  for (i = 0, off = 0; i < nframes; i++, off += chunk) {
    size_t part = len - off < chunk ? len - off : chunk;
    sb_frame_header(hdrs + i * SB_FRAME_HEADER, kind, (uint32_t)part);
    bufs[2 * i] = uv_buf_init((char *)(hdrs + i * SB_FRAME_HEADER), SB_FRAME_HEADER);
    bufs[2 * i + 1] = uv_buf_init((char *)(uintptr_t)(buf + off), (unsigned)part);
  }
  return submit(conn, req, bufs, (unsigned)(2 * nframes));
}

/* A write of nothing: a request with one empty buffer, so its callback runs
 * in order with the writes queued before it. */
static int write_nothing(sb_conn *conn, sb_write_cb cb, void *data) {
  sb__write_req *req = sb__req_get(conn->server);
  uv_buf_t buf;
  if (req == NULL)
    return -ENOMEM;
  req->cb = cb;
  req->data = data;
  buf = uv_buf_init((char *)req->hdr, 0);
  return submit(conn, req, &buf, 1);
}

static int writable(const sb_conn *conn, int stream) {
  if (conn == NULL || (stream != 1 && stream != 2))
    return -EINVAL;
  if (conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  /* After exec and run the program writes; the caller cannot. */
  if (conn->exit_sent || conn->out_closed[stream] || conn->dispo == SB__DISPO_EXEC ||
      conn->dispo == SB__DISPO_RUN)
    return -EPIPE;
  return 0;
}

/* What both write calls check, in this order, before anything is queued. */
static int check_write(const sb_conn *conn, int stream, const void *buf, size_t len) {
  int r = writable(conn, stream);
  if (r == 0 && buf == NULL && len > 0)
    r = -EINVAL;
  return r;
}

int sb_conn_write(sb_conn *conn, int stream, const void *buf, size_t len, sb_write_cb cb,
                  void *data) {
  int r = check_write(conn, stream, buf, len);
  if (r < 0)
    return r;
  if (len == 0)
    return write_nothing(conn, cb, data);
  return write_frames(conn, (sb_kind)sb_stream_kind(stream), buf, len, cb, data, NULL);
}

int sb_conn_write_copy(sb_conn *conn, int stream, const void *buf, size_t len) {
  void *copy;
  int r = check_write(conn, stream, buf, len);
  if (r < 0 || len == 0)
    return r;
  copy = malloc(len);
  if (copy == NULL)
    return -ENOMEM;
  memcpy(copy, buf, len);
  return write_frames(conn, (sb_kind)sb_stream_kind(stream), copy, len, NULL, NULL, copy);
}

/* The caller's own bytes, not libuv's write_queue_size: that one counts
 * frame headers too, and drops what the kernel took at once, before the
 * write's callback (the caller's cue to write more) has run. */
size_t sb_conn_queued(const sb_conn *conn) {
  return conn != NULL ? conn->queued : 0;
}

int sb_conn_close_stream(sb_conn *conn, int stream) {
  int r = writable(conn, stream);
  if (r == -EPIPE && !conn->exit_sent)
    return 0; /* already closed */
  if (r < 0)
    return r;
  r = write_frames(conn, (sb_kind)sb_stream_kind(stream), NULL, 0, NULL, NULL, NULL);
  if (r == 0)
    conn->out_closed[stream] = true;
  return r;
}

int sb__conn_send_owned(sb_conn *conn, void *frame, size_t len) {
  sb__write_req *req = sb__req_get(conn->server);
  uv_buf_t buf;
  if (req == NULL) {
    free(frame);
    return -ENOMEM;
  }
  req->owned = frame;
  buf = uv_buf_init(frame, (unsigned)len);
  return submit(conn, req, &buf, 1);
}

int sb__conn_send_msg(sb_conn *conn, const sb_msg *m) {
  uint8_t *frame = NULL;
  size_t len = 0;
  /* exec and run carry a command line: SB_CTL_MAX_BYTES bounds them. */
  uint32_t bound = conn->server->max_bytes > SB_CTL_MAX_BYTES ? conn->server->max_bytes
                                                              : SB_CTL_MAX_BYTES;
  int r = sb_msg_encode(m, bound, &frame, &len);
  if (r < 0)
    return r;
  return sb__conn_send_owned(conn, frame, len);
}

/* ---- how the stub ends ---------------------------------------------------- */

static int send_exit(sb_conn *conn, int code, int signum) {
  sb_msg m;
  int r;

  if (conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  if (conn->exit_sent)
    return -EALREADY;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_EXIT;
  m.u.exit.code = code;
  m.u.exit.signal = signum;
  r = sb__conn_send_msg(conn, &m);
  if (r < 0)
    return r;
  conn->exit_sent = true;
  conn->told_code = code;
  conn->told_signal = signum;
  /* The stub closes once it has ended; read on to see that, even if the
   * caller had paused. */
  if (conn->paused)
    unpause(conn);
  return 0;
}

int sb_conn_exit(sb_conn *conn, int code) {
  if (conn == NULL || code < 0 || code > 255)
    return -EINVAL;
  return send_exit(conn, code, 0);
}

int sb_conn_kill(sb_conn *conn, int signum) {
  if (conn == NULL || signum <= 0 || sb_signal_name(signum) == NULL)
    return -EINVAL;
  return send_exit(conn, 0, signum);
}

bool sb_conn_told(const sb_conn *conn, int *code, int *signum) {
  /* exec leaves told_code at -1 until a failed exec reports its code. */
  if (conn == NULL || !conn->exit_sent || (conn->told_code < 0 && conn->told_signal == 0))
    return false;
  if (code != NULL)
    *code = conn->told_code;
  if (signum != NULL)
    *signum = conn->told_signal;
  return true;
}
