/* SPDX-License-Identifier: MIT */
/* conn.c - one stub connection: accept, handshake (hello -> welcome or
 * reject), the events of a welcomed connection, and its close.
 *
 * A connection owns two handles, its stream and a timer. It is freed in the
 * close callback of the last of them; on_close runs just before, after the
 * callbacks of every pending write (UV_ECANCELED). */
#include "sb_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* STUB_EXIT: how a welcomed connection ended, and what the stub was told. */
static void emit_stub_exit(sb_conn *conn) {
  sb_event ev = {0};
  ev.type = SB_EVENT_STUB_EXIT;
  ev.conn = conn;
  ev.child = conn->child;
  ev.pid = conn->call.pid;
  ev.close_reason = conn->close_reason;
  ev.status = conn->exit_sent ? conn->told_code : -1;
  ev.signal = conn->exit_sent ? conn->told_signal : 0;
  sb__emit(conn->server, &ev);
}

void sb__conn_handle_closed(uv_handle_t *handle) {
  sb_conn *conn = handle->data;
  sb_server *server = conn->server;

  if (--conn->open_handles > 0)
    return;
  server->stats.open--;
  if (conn->welcomed)
    emit_stub_exit(conn);
  if (conn->welcomed && conn->cbs.on_close != NULL)
    conn->cbs.on_close(conn, conn->close_reason, conn->close_err);
  if (conn->msg != NULL)
    sb__message_detach(conn->msg);
  sb__list_remove(&conn->link);
  sb_decoder_free(&conn->dec);
  if (conn->have_hello)
    sb_msg_free(&conn->hello);
  sb__dispo_free(conn->dp);
  free(conn->rbuf);
  explicit_bzero(conn->head, sizeof conn->head); /* a token not yet decided on */
  free(conn);
  /* Its fd is free now: a waiting peer may be accepted. */
  sb__accept_kick(server);
  sb__server_maybe_finish(server);
}

/* How a welcomed TCP connection ends when its socket is closed with no end
 * agreed (no exit sent), here or by the kernel when the supervisor dies
 * (kill -9): a reset, at once, dropping what is unsent. A FIN would queue
 * behind unsent data the stub may never read (its stdout is full), and the
 * stub would wait for it as long as its reader sleeps. Once an exit is sent
 * the close is the normal one, so the stub gets everything before it. A
 * Unix socket's peer sees the close at once whatever is queued: nothing to
 * do there. */
static void set_abortive_close(sb_conn *conn, bool on) {
  struct linger lg = {.l_onoff = on, .l_linger = 0};
  uv_os_fd_t fd;

  if (conn->server->transport == SB_TRANSPORT_TCP &&
      uv_fileno(&conn->io.handle, &fd) == 0)
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void sb__conn_close(sb_conn *conn, sb_close_reason reason, int err) {
  sb_server *server = conn->server;

  if (conn->state == SB__CONN_CLOSING)
    return;
  if (conn->state == SB__CONN_HANDSHAKE || conn->state == SB__CONN_OPEN)
    server->nactive--;
  if (conn->state == SB__CONN_OPEN && reason == SB_CLOSE_PEER_LOST)
    server->stats.lost++;
  conn->state = SB__CONN_CLOSING;
  conn->close_reason = reason;
  conn->close_err = err;
  conn->reading = false;
  conn->pend_len = 0;
  sb__conn_account(conn);
  sb__dispo_close(conn);
  if (conn->welcomed && conn->exit_sent)
    set_abortive_close(conn, false);
  uv_close(&conn->io.handle, sb__conn_handle_closed);
  uv_close((uv_handle_t *)&conn->timer, sb__conn_handle_closed);
}

static void on_linger_timeout(uv_timer_t *timer) {
  sb__conn_close(timer->data, SB_CLOSE_PROTOCOL, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

static void emit_stub_reject(sb_conn *conn, sb_reason reason, const char *msg) {
  sb_event ev = {0};
  ev.type = SB_EVENT_STUB_REJECT;
  ev.reason = reason;
  ev.message = msg;
  ev.pid = conn->have_hello ? conn->hello.u.hello.pid : 0;
  sb__emit(conn->server, &ev);
}

void sb__conn_reject(sb_conn *conn, sb_reason reason, bool send, const char *fmt, ...) {
  sb_server *server = conn->server;
  sb_reject_info info;
  sb_msg m;
  char msg[256];
  unsigned linger;
  va_list ap;

  if (conn->state != SB__CONN_HANDSHAKE)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  server->nactive--;
  conn->state = SB__CONN_REJECTING;
  server->stats.rejected[reason]++;
  uv_timer_stop(&conn->timer);
  /* Nothing more of its hello is kept: what it sends now is dropped. */
  sb_decoder_free(&conn->dec);
  sb__conn_account(conn);

  memset(&m, 0, sizeof m);
  m.type = SB_MSG_REJECT;
  m.u.reject.reason = reason;
  m.u.reject.message = msg;
  if (send && sb__conn_send_msg(conn, &m) == 0) {
    /* Closing at once could lose the reject: a TCP socket closed with
     * unread input (the rest of an oversize frame, say) resets the
     * connection. So: FIN after the reject, drain what the peer still
     * sends, and close on its EOF or after a short linger. */
    uv_shutdown(&conn->shutdown_req, &conn->io.stream, on_shutdown);
    linger = server->handshake_timeout_ms < SB__LINGER_MS ? server->handshake_timeout_ms
                                                          : SB__LINGER_MS;
    uv_timer_start(&conn->timer, on_linger_timeout, linger, 0);
    if (sb__conn_start_reading(conn) < 0)
      sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
  } else {
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
  }

  /* Last: the callbacks may close the server, and with it this connection
   * (whose memory stays until its close callbacks have run). */
  emit_stub_reject(conn, reason, msg);
  if (server->on_reject != NULL) {
    info.reason = reason;
    info.message = msg;
    info.ticket = conn->ticket;
    info.pid = conn->have_hello ? conn->hello.u.hello.pid : 0;
    server->on_reject(server, &info);
  }
}

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
      sb__conn_close(conn, SB_CLOSE_PEER_LOST, UV_EIO);
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
    sb__conn_stop_reading(conn);
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

/* ---- the first bytes: does the hello begin with a live token? ------------- */

static uint32_t head_length(const sb_conn *conn) {
  const uint8_t *h = conn->head;
  return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Whether body[0..n) can begin SB_HELLO_PREFIX and a token (n at most its
 * length). */
static bool prefix_so_far(const uint8_t *body, size_t n) {
  static const char fixed[] = SB_HELLO_PREFIX;
  const size_t nfixed = sizeof fixed - 1;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = body[i];
    if (i < nfixed                  ? c != (uint8_t)fixed[i]
        : i < nfixed + SB_TOKEN_HEX ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                                    : c != '"')
      return false;
  }
  return true;
}

/* Whether the head says enough: the decoder refuses the header, the frame
 * cannot hold the prefix, the bytes left it, or the prefix is whole. */
static bool head_decided(const sb_conn *conn) {
  size_t have = conn->head_len;
  uint32_t length;

  if (have < 4)
    return false;
  length = head_length(conn);
  if (length == 0 || length > conn->dec.ctl_max)
    return true;
  if (have < SB_FRAME_HEADER)
    return false;
  if (conn->head[4] != SB_KIND_CONTROL || length - 1 < SB_HELLO_PREFIX_LEN)
    return true;
  return !prefix_so_far(conn->head + SB_FRAME_HEADER, have - SB_FRAME_HEADER) ||
         have == sizeof conn->head;
}

/* The token of a whole prefix, checked as on_hello checks it; the copy is
 * wiped. */
static bool head_token_live(sb_conn *conn) {
  char token[SB_TOKEN_HEX + 1];
  bool live;

  if (conn->head_len != sizeof conn->head ||
      !prefix_so_far(conn->head + SB_FRAME_HEADER, SB_HELLO_PREFIX_LEN))
    return false;
  memcpy(token, conn->head + SB_FRAME_HEADER + sizeof SB_HELLO_PREFIX - 1, SB_TOKEN_HEX);
  token[SB_TOKEN_HEX] = '\0';
  live = sb__ticket_lookup(conn->server, token) != NULL;
  explicit_bzero(token, sizeof token);
  return live;
}

bool sb__conn_head_take(sb_conn *conn, size_t n) {
  uint32_t length;

  conn->head_len += n;
  if (!head_decided(conn))
    return false;
  conn->head_done = true;
  conn->authed = head_token_live(conn);
  length = conn->head_len >= 4 ? head_length(conn) : 0;
  if (!conn->authed && conn->head_len >= SB_FRAME_HEADER &&
      conn->head[4] == SB_KIND_CONTROL && length > conn->server->max_bytes &&
      length <= conn->dec.ctl_max) {
    sb__conn_reject(conn, SB_REASON_TOO_LARGE, true,
                    "frame length %u exceeds max_bytes %u (only a hello that begins "
                    "with a live token may be longer)",
                    length, conn->server->max_bytes);
    return false;
  }
  sb__conn_account(conn);
  return true;
}

static void on_handshake_timeout(uv_timer_t *timer) {
  sb_conn *conn = timer->data;
  /* The deadline is on the hello's arrival, not on when the loop got round
   * to it: after a stall (SIGSTOP, a slow callback) this timer runs before
   * the reads that were waiting. What is in the kernel now arrived before
   * this moment: read it first. */
  sb__conn_read_pending(conn, (size_t)conn->dec.ctl_max + SB_FRAME_HEADER);
  if (conn->state != SB__CONN_HANDSHAKE)
    return; /* welcomed, or refused for what it sent */
  sb__conn_reject(conn, SB_REASON_TIMEOUT, true, "no hello within %u ms",
                  conn->server->handshake_timeout_ms);
}

/* A connection in HANDSHAKE on a stream handle of the server's transport
 * (pipe when tcp is false), not yet connected: listed, counted open and
 * active, its decoder ready. NULL when out of memory. */
static sb_conn *conn_new(sb_server *server, bool tcp) {
  sb_conn *conn = calloc(1, sizeof *conn);
  int r;

  if (conn == NULL)
    return NULL;
  conn->server = server;
  if (tcp)
    r = uv_tcp_init(server->loop, &conn->io.tcp);
  else
    r = uv_pipe_init(server->loop, &conn->io.pipe, 0);
  if (r < 0) {
    free(conn);
    return NULL;
  }
  uv_timer_init(server->loop, &conn->timer);
  conn->io.handle.data = conn;
  conn->timer.data = conn;
  conn->open_handles = 2;
  conn->state = SB__CONN_HANDSHAKE;
  sb_decoder_init(&conn->dec, server->max_bytes);
  /* A hello may carry what execve(2) takes; only one that begins with a
   * live token may be longer than max_bytes (sb__conn_head_take). */
  sb_decoder_set_ctl_max(&conn->dec, SB_CTL_MAX_BYTES);
  sb__list_push(&server->conns, &conn->link);
  server->stats.open++;
  server->nactive++;
  sb__conn_account(conn);
  return conn;
}

/* A connected peer: the checks on who it is, then the handshake clock and
 * reading its hello. */
static void admit(sb_conn *conn) {
  sb_server *server = conn->server;
  char msg[160];
  int r;

  server->stats.accepted++;
  /* Only a bound the caller chose refuses a peer; without one, load is
   * served late rather than refused: when fds run out, accept.c leaves the
   * peers in the backlog until some are freed. */
  if (server->max_connections != 0 && server->nactive > server->max_connections) {
    sb__conn_reject(conn, SB_REASON_BUSY, true, "too many connections (at most %u)",
                    server->max_connections);
    return;
  }
  if (server->transport == SB_TRANSPORT_TCP)
    uv_tcp_nodelay(&conn->io.tcp, 1);
  if (!sb__listener_peer_allowed(server, conn, msg, sizeof msg)) {
    sb__conn_reject(conn, SB_REASON_NOT_ALLOWED, true, "%s", msg);
    return;
  }
  uv_timer_start(&conn->timer, on_handshake_timeout, server->handshake_timeout_ms, 0);
  r = sb__conn_start_reading(conn);
  if (r < 0)
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, r);
}

int sb__conn_adopt_fd(sb_server *server, int fd, sb_conn **out) {
  sb_conn *conn;
  int r;

  *out = NULL;
  if (server->closing)
    return -EINVAL;
  conn = conn_new(server, server->transport == SB_TRANSPORT_TCP);
  if (conn == NULL)
    return -ENOMEM;
  if (server->transport == SB_TRANSPORT_TCP)
    r = uv_tcp_open(&conn->io.tcp, fd);
  else
    r = uv_pipe_open(&conn->io.pipe, fd);
  if (r < 0) {
    /* The fd stays the caller's: a handle that failed to open does not own
     * it. */
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, r);
    return r;
  }
  *out = conn;
  admit(conn);
  return 0;
}

/* lib/ already leaves SOCKETBRIDGE_TOKEN out of hello.env; this keeps the
 * guarantee whatever a peer sends. */
static void drop_token_env(sb_hello *h) {
  static const char prefix[] = SB_ENV_TOKEN "=";
  size_t i, n = 0;
  if (h->env.v == NULL)
    return;
  for (i = 0; i < h->env.n; i++) {
    char *e = h->env.v[i];
    if (strncmp(e, prefix, sizeof prefix - 1) == 0) {
      explicit_bzero(e, strlen(e));
      free(e);
    } else {
      h->env.v[n++] = e;
    }
  }
  h->env.v[n] = NULL;
  h->env.n = n;
}

static void fill_call(sb_conn *conn) {
  static char *const empty[1] = {NULL};
  const sb_hello *h = &conn->hello.u.hello;
  sb_call *c = &conn->call;
  c->pid = h->pid;
  c->ppid = h->ppid;
  c->argc = h->argv.v != NULL ? h->argv.n : 0;
  c->argv = h->argv.v != NULL ? h->argv.v : empty;
  c->envc = h->env.v != NULL ? h->env.n : 0;
  c->env = h->env.v != NULL ? h->env.v : empty;
  c->cwd = h->cwd;
  c->exe = h->exe;
  c->tty = h->tty;
  c->has_winsize = h->has_winsize;
  c->winsize = h->winsize;
}

int sb__conn_check_peer(sb_conn *conn, int version, int min_version, char *token) {
  sb_server *server = conn->server;
  int lo, hi;

  conn->ticket = sb_token_valid(token) ? sb__ticket_lookup(server, token) : NULL;
  explicit_bzero(token, strlen(token));

  /* docs/protocol.md section 3: the highest version both sides speak. */
  lo = min_version > 0 ? min_version : version;
  if (lo < SB_PROTOCOL_MIN_VERSION)
    lo = SB_PROTOCOL_MIN_VERSION;
  hi = version < SB_PROTOCOL_VERSION ? version : SB_PROTOCOL_VERSION;
  if (hi < lo) {
    sb__conn_reject(conn, SB_REASON_VERSION, true,
                    "no protocol version in common: the stub speaks %d..%d, the "
                    "supervisor %d..%d",
                    min_version > 0 ? min_version : version, version,
                    SB_PROTOCOL_MIN_VERSION, SB_PROTOCOL_VERSION);
    return 0;
  }
  if (conn->ticket == NULL) {
    sb__conn_reject(conn, SB_REASON_BAD_TOKEN, true,
                    "the token is not one this supervisor issued, or it was revoked");
    return 0;
  }
  return hi;
}

static void on_hello(sb_conn *conn, const sb_frame *f) {
  sb_server *server = conn->server;
  sb_event ev;
  sb_diag diag;
  sb_hello *h;
  int hi, r;

  if (f->kind != SB_KIND_CONTROL) {
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "a %s frame before welcome",
                    sb_kind_name((int)f->kind));
    return;
  }
  memset(&diag, 0, sizeof diag);
  r = sb_msg_parse(f->data, f->len, &conn->hello, &diag);
  if (r == SB_ENOMEM) {
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, r);
    return;
  }
  if (r < 0 && sb__message_first_frame(conn, f))
    return; /* a side-band message (message.c), not a stub */
  if (r < 0) {
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "bad hello: %s",
                    diag.msg[0] != '\0' ? diag.msg : sb_strerror(r));
    return;
  }
  conn->have_hello = true;
  if (conn->hello.type != SB_MSG_HELLO) {
    const char *name = sb_msg_type_name(conn->hello.type);
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "expected hello, got %s",
                    name != NULL ? name : "an unknown message");
    return;
  }
  h = &conn->hello.u.hello;
  hi = sb__conn_check_peer(conn, h->version, h->min_version, h->token);
  if (hi == 0)
    return;

  drop_token_env(h);
  fill_call(conn);
  if (conn->ticket->child != NULL && conn->ticket->child->state < SB__CHILD_ENDING)
    conn->child = conn->ticket->child;

  uv_timer_stop(&conn->timer);
  conn->version = hi;
  conn->welcome_pending = true;
  conn->state = SB__CONN_OPEN;
  sb_decoder_set_ctl_max(&conn->dec, 0); /* the stub's later frames are small */
  sb__conn_account(conn);
  conn->welcomed = true;
  set_abortive_close(conn, true);
  server->stats.welcomed++;
  memset(&ev, 0, sizeof ev);
  ev.type = SB_EVENT_STUB_CONNECT;
  ev.conn = conn;
  ev.child = conn->child;
  ev.pid = conn->call.pid;
  sb__emit(server, &ev);
  /* The event's callback may have closed the connection (sb_server_close). */
  if (conn->state == SB__CONN_OPEN)
    server->on_connect(server, conn);
  if (conn->state == SB__CONN_OPEN && !conn->held && (r = sb__conn_welcome(conn)) < 0)
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, r);
}

int sb_conn_hold(sb_conn *conn) {
  if (conn == NULL || conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  conn->held = true;
  return 0;
}

int sb_conn_open(sb_conn *conn) {
  int r;
  if (conn == NULL || conn->state != SB__CONN_OPEN)
    return -ENOTCONN;
  conn->held = false;
  if ((r = sb__conn_welcome(conn)) < 0)
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, r);
  return r;
}

int sb__conn_welcome(sb_conn *conn) {
  sb_msg m;

  if (!conn->welcome_pending)
    return 0;
  conn->welcome_pending = false; /* first: sending it queues a frame too */
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_WELCOME;
  m.u.welcome.version = conn->version;
  m.u.welcome.hold_stdin = conn->hold_stdin;
  return sb__conn_send_msg(conn, &m);
}

static void protocol_error(sb_conn *conn, int err) {
  sb__conn_close(conn, SB_CLOSE_PROTOCOL, err);
}

static void on_control(sb_conn *conn, const sb_frame *f) {
  sb_diag diag;
  sb_msg m;
  int r;

  memset(&diag, 0, sizeof diag);
  r = sb_msg_parse(f->data, f->len, &m, &diag);
  if (r < 0) {
    protocol_error(conn, r);
    return;
  }
  switch (m.type) {
  case SB_MSG_SIGNAL:
    if (conn->cbs.on_signal != NULL)
      conn->cbs.on_signal(conn, m.u.signal.signal);
    else if (conn->dispo == SB__DISPO_DELEGATE)
      sb__delegate_signal(conn, m.u.signal.signal);
    else if (!conn->exit_sent)
      sb_conn_kill(conn, m.u.signal.signal);
    break;
  case SB_MSG_EXITED:
    if ((conn->dispo != SB__DISPO_RUN && conn->dispo != SB__DISPO_EXEC) ||
        conn->prog_exited)
      protocol_error(conn, SB_EPROTO); /* we asked for no program, or it ended twice */
    else
      sb__program_exited(conn, &m.u.exit);
    break;
  case SB_MSG_WINSIZE:
    conn->call.winsize = m.u.winsize;
    if (conn->dispo == SB__DISPO_DELEGATE)
      sb__pty_resize(conn);
    break;
  case SB_MSG_STREAM_ERROR:
    if (conn->cbs.on_stream_error != NULL)
      conn->cbs.on_stream_error(conn, m.u.stream_error.stream, m.u.stream_error.err);
    break;
  default:
    /* A second hello, or a message only the supervisor sends. */
    protocol_error(conn, SB_EPROTO);
    break;
  }
  sb_msg_free(&m);
}

/* run: the program's stdout or stderr, relayed by the stub. Only then, and
 * only until that stream's end and `exited`. */
static void on_program_output(sb_conn *conn, const sb_frame *f) {
  int s = sb_kind_stream((int)f->kind);

  if (conn->dispo != SB__DISPO_RUN || s < 1 || conn->prog_out_end[s] ||
      conn->prog_exited) {
    protocol_error(conn, SB_EPROTO);
    return;
  }
  if (f->len == 0)
    conn->prog_out_end[s] = true;
  if (conn->cbs.on_program_output != NULL)
    conn->cbs.on_program_output(conn, s, f->len != 0 ? (const char *)f->data : "",
                                f->len);
}

static void on_open_frame(sb_conn *conn, const sb_frame *f) {
  switch (f->kind) {
  case SB_KIND_CONTROL:
    on_control(conn, f);
    return;
  case SB_KIND_STDIN:
    if (conn->stdin_done) {
      protocol_error(conn, SB_EPROTO); /* data after the end of stdin */
      return;
    }
    if (f->len == 0)
      conn->stdin_done = true;
    if (conn->dispo == SB__DISPO_DELEGATE)
      sb__delegate_stdin(conn, f->len != 0 ? (const char *)f->data : "", f->len);
    if (conn->cbs.on_stdin != NULL && conn->state == SB__CONN_OPEN)
      conn->cbs.on_stdin(conn, f->len != 0 ? (const char *)f->data : "", f->len);
    return;
  default:
    on_program_output(conn, f);
    return;
  }
}

void sb__conn_on_frame(sb_conn *conn, const sb_frame *f) {
  if (conn->state == SB__CONN_HANDSHAKE)
    on_hello(conn, f);
  else if (conn->state == SB__CONN_OPEN)
    on_open_frame(conn, f);
}

void sb__conn_on_decode_error(sb_conn *conn, int err, const sb_diag *diag) {
  const char *why = diag->msg[0] != '\0' ? diag->msg : sb_strerror(err);

  if (conn->state == SB__CONN_OPEN) {
    protocol_error(conn, err);
  } else if (conn->state == SB__CONN_HANDSHAKE) {
    if (err == SB_EMSGSIZE)
      sb__conn_reject(conn, SB_REASON_TOO_LARGE, true, "%s", why);
    else if (err == SB_ENOMEM)
      sb__conn_close(conn, SB_CLOSE_PROTOCOL, err);
    else
      sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "%s", why);
  }
}

void sb__conn_on_read_end(sb_conn *conn, int err) {
  switch (conn->state) {
  case SB__CONN_HANDSHAKE:
    if (err == UV_EOF)
      sb__conn_reject(conn, SB_REASON_PROTOCOL, false,
                      "the peer closed the connection before its hello");
    else
      sb__conn_reject(conn, SB_REASON_PROTOCOL, false,
                      "reading the connection failed before hello: %s", uv_strerror(err));
    break;
  case SB__CONN_OPEN:
    if (conn->dispo == SB__DISPO_EXEC && !conn->prog_exited)
      /* The socket is close-on-exec: the stub is the program now. */
      sb__conn_close(conn, SB_CLOSE_EXEC,
                     (err == UV_EOF || err == UV_ECONNRESET) ? 0 : err);
    else if (conn->exit_sent)
      /* The stub was told how to end, and its socket closed: it did. A
       * reset instead of a FIN says nothing more. */
      sb__conn_close(conn, SB_CLOSE_EXITED,
                     (err == UV_EOF || err == UV_ECONNRESET) ? 0 : err);
    else
      sb__conn_close(conn, SB_CLOSE_PEER_LOST, err == UV_EOF ? 0 : err);
    break;
  case SB__CONN_REJECTING:
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
    break;
  case SB__CONN_CLOSING:
    break;
  }
}

void sb__conns_forget(sb_server *server, const sb_ticket *ticket, const sb_child *child) {
  sb__link *l;
  for (l = server->conns.next; l != &server->conns; l = l->next) {
    sb_conn *conn = sb__container_of(l, sb_conn, link);
    if (ticket != NULL && conn->ticket == ticket)
      conn->ticket = NULL;
    if (child != NULL && conn->child == child)
      conn->child = NULL;
  }
}

/* ---- accessors ----------------------------------------------------------- */

void sb_conn_set_callbacks(sb_conn *conn, const sb_conn_callbacks *cbs, void *data) {
  if (cbs != NULL)
    conn->cbs = *cbs;
  else
    memset(&conn->cbs, 0, sizeof conn->cbs);
  conn->data = data;
}

void *sb_conn_data(const sb_conn *conn) {
  return conn->data;
}

const sb_call *sb_conn_call(const sb_conn *conn) {
  return &conn->call;
}

const char *sb_conn_getenv(const sb_conn *conn, const char *name) {
  size_t i, len;
  if (conn == NULL || name == NULL)
    return NULL;
  len = strlen(name);
  if (len == 0 || strchr(name, '=') != NULL)
    return NULL;
  for (i = 0; i < conn->call.envc; i++) {
    const char *e = conn->call.env[i];
    if (strncmp(e, name, len) == 0 && e[len] == '=')
      return e + len + 1;
  }
  return NULL;
}

sb_ticket *sb_conn_ticket(const sb_conn *conn) {
  return conn->ticket;
}

sb_child *sb_conn_child(const sb_conn *conn) {
  return conn->child;
}

sb_server *sb_conn_server(const sb_conn *conn) {
  return conn->server;
}

void sb_conn_close(sb_conn *conn) {
  if (conn == NULL)
    return;
  sb__conn_close(conn, SB_CLOSE_SERVER, 0);
}
