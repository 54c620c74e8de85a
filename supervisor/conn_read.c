/* SPDX-License-Identifier: MIT */
/* conn_read.c - bytes in: one reusable buffer per connection, handed to the
 * decoder; stdin reaches the caller as pointers into it. A pause stops
 * reading between two events; what was read but not yet dispatched waits in
 * the buffer (nothing else is read meanwhile) and is dispatched first on
 * resume. Also what peers without a token may hold, which decides whether
 * they are read at all.
 *
 * What is read goes up to conn.c only through conn->ev (head, frame,
 * decode_error, read_end, failed); conn.c calls down into this file. */
#include "sb_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- what peers without a token cost ---------------------------------------
 *
 * A connection that has not shown a valid token is charged for its own
 * memory and for the hello bytes its decoder holds; all of them together at
 * most SB__UNAUTH_BYTES. Without room for one more read (and a reserve), a
 * connection is not read (starved) until some is freed; without room for
 * one more connection, none is accepted (the peers wait in the backlog).
 * The handshake timeout still ends each. An honest stub's hello begins with
 * its token (SB_HELLO_PREFIX): checked on the first bytes, which are kept
 * in the connection itself and always read, it is never charged. The
 * reserve keeps room to accept new peers while the buffered hellos of
 * others starve, so an honest stub gets to show its token. */

bool sb__unauth_room(const sb_server *server, size_t more) {
  return server->unauth_bytes + more <= SB__UNAUTH_BYTES;
}

/* Stops libuv reading the stream (idempotent). */
static void stop_reading(sb_conn *conn) {
  if (!conn->reading)
    return;
  uv_read_stop(&conn->io.stream);
  conn->reading = false;
}

static size_t cost(const sb_conn *conn) {
  if (conn->authed ||
      (conn->state != SB__CONN_HANDSHAKE && conn->state != SB__CONN_REJECTING))
    return 0;
  return SB__CONN_COST + sb_decoder_held(&conn->dec);
}

static void unstarve(sb_conn *conn) {
  if (!conn->starved)
    return;
  conn->starved = false;
  conn->server->nstarved--;
}

/* Room came back: read the starved first (they were accepted first), then
 * accept again. */
static void pool_freed(sb_server *server) {
  sb__link *l;

  for (l = server->conns.next; l != &server->conns && server->nstarved > 0; l = l->next) {
    sb_conn *conn = sb__container_of(l, sb_conn, link);
    if (!conn->starved)
      continue;
    if (!sb__unauth_room(server, SB__READ_ROOM))
      return;
    unstarve(conn);
    if (sb__conn_start_reading(conn) < 0)
      conn->ev->failed(conn, SB_CLOSE_PEER_LOST, UV_EIO);
  }
  if (sb__unauth_room(server, SB__CONN_COST))
    sb__accept_unhold(server);
}

static bool starvable(const sb_conn *conn) {
  return conn->state == SB__CONN_HANDSHAKE && conn->charged > 0 && conn->head_done &&
         conn->reading;
}

/* No room for one more read: none of them reads until room comes back.
 * All at once, since libuv reads any connection that is readable, and each
 * read may take room. */
static void starve_all(sb_server *server) {
  for (sb__link *l = server->conns.next; l != &server->conns; l = l->next) {
    sb_conn *conn = sb__container_of(l, sb_conn, link);
    if (!starvable(conn))
      continue;
    stop_reading(conn);
    conn->starved = true;
    server->nstarved++;
  }
}

void sb__conn_account(sb_conn *conn) {
  sb_server *server = conn->server;
  size_t now = cost(conn), was = conn->charged;

  server->unauth_bytes = server->unauth_bytes - was + now;
  conn->charged = now;
  if (conn->state != SB__CONN_HANDSHAKE)
    unstarve(conn);
  if (now < was)
    pool_freed(server);
  else if (starvable(conn) && !sb__unauth_room(server, SB__READ_ROOM))
    starve_all(server);
}

/* ---- reading ------------------------------------------------------------- */

/* A connection past the handshake reads into its own buffer (a pause may
 * leave bytes in it); the others into the server's, whose bytes are
 * dispatched at once, so that a thousand idle handshakes do not hold 64 KiB
 * each. The first bytes of a handshake go to conn->head (conn.c decides on
 * them). */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  sb_conn *conn = handle->data;
  uint8_t **mem = sb__conn_accepted(conn) ? &conn->rbuf : &conn->server->hs_rbuf;
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

/* Dispatches the events in p[0..n), stopping early on a pause or a close. */
static void process(sb_conn *conn, const uint8_t *p, size_t n) {
  sb_frame f;
  sb_diag diag;
  int r;

  conn->in_process = true;
  while (sb__conn_live(conn) && !conn->paused) {
    diag.msg[0] = '\0';
    r = sb_decoder_next(&conn->dec, &p, &n, &f, &diag);
    if (r == 0)
      break;
    if (r < 0) {
      conn->ev->decode_error(conn, r, &diag);
      break;
    }
    conn->ev->frame(conn, &f);
  }
  conn->in_process = false;
  if (!sb__conn_live(conn))
    return;
  if (n > 0 && !keep_pending(conn, &p, n)) {
    conn->ev->failed(conn, SB_CLOSE_SERVER, -ENOMEM);
    return;
  }
  conn->pend = n > 0 ? p : NULL;
  conn->pend_len = n;
  /* A callback may have paused and resumed; reading is on unless paused. */
  if (!conn->paused && n == 0 && sb__conn_start_reading(conn) < 0)
    conn->ev->failed(conn, SB_CLOSE_PEER_LOST, UV_EIO);
}

/* Draining a rejected peer: its bytes are dropped, up to a bound in time
 * (conn.c's linger timer) and in bytes, so a flood costs little. */
static void drain(sb_conn *conn, ssize_t nread) {
  if (nread > 0)
    conn->drained += (size_t)nread;
  if (nread < 0 || conn->drained > SB__LINGER_BYTES)
    conn->ev->read_end(conn, nread < 0 ? (int)nread : UV_EOF);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sb_conn *conn = stream->data;

  if (nread == 0)
    return;
  if (conn->state == SB__CONN_REJECTING) {
    drain(conn, nread);
    return;
  }
  if (!sb__conn_live(conn))
    return;
  if (nread < 0) {
    conn->ev->read_end(conn, (int)nread);
    return;
  }
  if (conn->state == SB__CONN_HANDSHAKE && !conn->head_done) {
    conn->head_len += (size_t)nread;
    if (!conn->ev->head(conn))
      return; /* more of the head to come, or refused */
    process(conn, conn->head, conn->head_len);
    explicit_bzero(conn->head, sizeof conn->head); /* it may hold the token */
  } else {
    process(conn, (const uint8_t *)buf->base, (size_t)nread);
  }
  if (conn->charged > 0)
    sb__conn_account(conn); /* what the decoder holds now */
}

#ifdef SB_FUZZ
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
#endif

void sb__conn_read_pending(sb_conn *conn, size_t limit) {
  uv_os_fd_t fd;
  uv_buf_t buf;
  ssize_t n;

  if (uv_fileno(&conn->io.handle, &fd) < 0)
    return;
  while (conn->reading && sb__conn_live(conn) && limit > 0) {
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

/* ---- pause and resume ------------------------------------------------------ */

static void on_drain(uv_timer_t *timer) {
  sb_conn *conn = timer->data;
  const uint8_t *p = conn->pend;
  size_t n = conn->pend_len;
  conn->pend = NULL;
  conn->pend_len = 0;
  process(conn, p, n);
}

void sb__read_pause(sb_conn *conn) {
  stop_reading(conn);
  uv_timer_stop(&conn->timer);
}

void sb__read_closed(sb_conn *conn) {
  conn->reading = false;
  conn->pend_len = 0;
  sb__conn_account(conn);
}

int sb__read_resume(sb_conn *conn) {
  if (conn->in_process)
    return 0; /* the dispatch loop goes on by itself */
  if (conn->pend_len > 0)
    return uv_timer_start(&conn->timer, on_drain, 0, 0);
  return sb__conn_start_reading(conn);
}
