/* SPDX-License-Identifier: MIT */
/* conn.c - one stub connection's state, and every transition of it. Only
 * this file assigns the state fields of sb_conn (sb_internal.h); the
 * dispositions (dispo.c, program.c, delegate.c) and message.c call its
 * verbs, and it calls down into conn_read.c (bytes in), wire.c (frames
 * out) and conn_hello.c (what a hello says). Those report back only
 * through the callbacks in `events`.
 *
 *        adopt_fd
 *           |
 *           v          busy, not allowed, bad hello or token,
 *       HANDSHAKE ---- timeout, too large, EOF ---------------> REJECTING
 *        |      |      (reject sent: FIN, then drain the peer)      |
 *  hello |      | send (message.c)                                  | EOF, drain
 *        v      v                                                   | bound, linger
 *          OPEN ------- exit, kill, exec, reply ------> ENDING      |
 *           |                                             |         |
 *           | peer lost, protocol error,                  | the     |
 *           | sb_conn_close, the server's close           | peer    |
 *           v                                             | closes  |
 *        CLOSING <----------------------------------------+---------+
 *           |
 *           | the last handle's close callback: STUB_EXIT, on_close, free
 *
 * sb__conn_close takes any state but CLOSING to CLOSING (a reject that
 * cannot be sent too). What each state does with each event:
 *
 *   event          HANDSHAKE            OPEN, ENDING               REJECTING
 *   frame          on_hello             on_control, on_stdin,      (dropped)
 *                                       on_program_output
 *   decode error   reject (OOM: close)  close PROTOCOL             -
 *   read end       reject, unsent       close EXEC, EXITED or      close
 *                                       PEER_LOST
 *   timer          reject TIMEOUT       deferred reads (conn_read) close (linger)
 *   write failed   close PEER_LOST      close PEER_LOST            -
 *
 * ENDING is OPEN with its end told: the caller may write nothing more,
 * nor choose a disposition; frames are still read (stdin, signals, a run's
 * output and `exited`) until the stub closes, which is then the end it was
 * told (SB_CLOSE_EXITED; SB_CLOSE_EXEC after an exec).
 *
 * A connection owns two handles, its stream and a timer (and a
 * disposition's, sb__conn_own_handle). It is freed in the close callback of
 * the last of them; on_close runs just before, after the callbacks of every
 * pending write (UV_ECANCELED). */
#include "sb_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const sb__conn_events events;

/* ---- closing ------------------------------------------------------------------ */

/* STUB_EXIT: how a welcomed connection ended, and what the stub was told. */
static void emit_stub_exit(sb_conn *conn) {
  sb_event ev = {0};
  ev.type = SB_EVENT_STUB_EXIT;
  ev.conn = conn;
  ev.child = conn->child;
  ev.pid = conn->call.pid;
  ev.close_reason = conn->close_reason;
  ev.status = conn->told ? conn->told_code : -1;
  ev.signal = conn->told ? conn->told_signal : 0;
  sb__emit(conn->server, &ev);
}

static void dispo_free(sb__dispo *dp) {
  if (dp == NULL)
    return;
  free(dp->out);
  free(dp->err);
  free(dp->pty_buf);
  free(dp->spawn_file);
  free(dp->spawn_cwd);
  sb_strv_free(&dp->spawn_args);
  sb_strv_free(&dp->spawn_env);
  free(dp);
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
  dispo_free(conn->dp);
  free(conn->rbuf);
  explicit_bzero(conn->head, sizeof conn->head); /* a token not yet decided on */
  free(conn);
  /* Its fd is free now: a waiting peer may be accepted. */
  sb__accept_kick(server);
  sb__server_maybe_finish(server);
}

/* How a welcomed TCP connection ends when its socket is closed with no end
 * agreed (not ENDING), here or by the kernel when the supervisor dies
 * (kill -9): a reset, at once, dropping what is unsent. A FIN would queue
 * behind unsent data the stub may never read (its stdout is full), and the
 * stub would wait for it as long as its reader sleeps. Once an end is told
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

/* The connection is closing: closes the disposition's handles, and stops a
 * delegated program. */
static void dispo_close(sb_conn *conn) {
  sb__dispo *dp = conn->dp;

  if (dp == NULL)
    return;
  if (dp->timer_open) {
    dp->timer_open = false;
    uv_close((uv_handle_t *)&dp->timer, sb__conn_handle_closed);
  }
  if (dp->in_open) {
    dp->in_open = false;
    uv_close((uv_handle_t *)&dp->in, sb__conn_handle_closed);
  }
  if (dp->child != NULL) {
    /* The stub is gone: nobody reads the program's output any more, and
     * it must not outlive the call. Its callbacks find no connection. */
    dp->child->data = NULL;
    sb_child_stop(dp->child);
    dp->child = NULL;
  }
}

void sb__conn_close(sb_conn *conn, sb_close_reason reason, int err) {
  sb_server *server = conn->server;
  bool ending = conn->state == SB__CONN_ENDING;

  if (conn->state == SB__CONN_CLOSING)
    return;
  if (sb__conn_live(conn))
    server->nactive--;
  if (sb__conn_accepted(conn) && reason == SB_CLOSE_PEER_LOST)
    server->stats.lost++;
  conn->state = SB__CONN_CLOSING;
  conn->close_reason = reason;
  conn->close_err = err;
  sb__read_closed(conn);
  dispo_close(conn);
  if (conn->welcomed && ending)
    set_abortive_close(conn, false);
  uv_close(&conn->io.handle, sb__conn_handle_closed);
  uv_close((uv_handle_t *)&conn->timer, sb__conn_handle_closed);
}

/* What read and write failures close: a connection still talking. */
static void on_failed(sb_conn *conn, sb_close_reason reason, int err) {
  if (sb__conn_live(conn))
    sb__conn_close(conn, reason, err);
}

static void protocol_error(sb_conn *conn, int err) {
  sb__conn_close(conn, SB_CLOSE_PROTOCOL, err);
}

/* ---- rejecting ---------------------------------------------------------------- */

static void on_linger_timeout(uv_timer_t *timer) {
  sb__conn_close(timer->data, SB_CLOSE_PROTOCOL, 0);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

/* Sends the reject and drains the peer; closes when that cannot be done.
 * Closing at once could lose the reject: a TCP socket closed with unread
 * input (the rest of an oversize frame, say) resets the connection. So:
 * FIN after the reject, drain what the peer still sends, and close on its
 * EOF (or the drain's bound) or after a short linger. */
static void send_reject(sb_conn *conn, sb_reason reason, const char *msg) {
  unsigned timeout = conn->server->handshake_timeout_ms;
  sb_msg m;

  memset(&m, 0, sizeof m);
  m.type = SB_MSG_REJECT;
  m.u.reject.reason = reason;
  m.u.reject.message = (char *)(uintptr_t)msg;
  if (sb__wire_send_msg(conn, &m) < 0) {
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
    return;
  }
  uv_shutdown(&conn->shutdown_req, &conn->io.stream, on_shutdown);
  uv_timer_start(&conn->timer, on_linger_timeout,
                 timeout < SB__LINGER_MS ? timeout : SB__LINGER_MS, 0);
  if (sb__conn_start_reading(conn) < 0)
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
}

/* STUB_REJECT and on_reject. Last: the callbacks may close the server, and
 * with it this connection (whose memory stays until its close callbacks
 * have run). */
static void report_reject(sb_conn *conn, sb_reason reason, const char *msg) {
  sb_server *server = conn->server;
  int64_t pid = conn->have_hello ? conn->hello.u.hello.pid : 0;
  sb_event ev = {0};
  sb_reject_info info;

  ev.type = SB_EVENT_STUB_REJECT;
  ev.reason = reason;
  ev.message = msg;
  ev.pid = pid;
  sb__emit(server, &ev);
  if (server->on_reject != NULL) {
    info.reason = reason;
    info.message = msg;
    info.ticket = conn->ticket;
    info.pid = pid;
    server->on_reject(server, &info);
  }
}

void sb__conn_reject(sb_conn *conn, sb_reason reason, bool send, const char *fmt, ...) {
  char msg[256];
  va_list ap;

  if (conn->state != SB__CONN_HANDSHAKE)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);

  conn->server->nactive--;
  conn->state = SB__CONN_REJECTING;
  conn->server->stats.rejected[reason]++;
  uv_timer_stop(&conn->timer);
  /* Nothing more of its hello is kept: what it sends now is dropped. */
  sb_decoder_free(&conn->dec);
  sb__conn_account(conn);
  if (send)
    send_reject(conn, reason, msg);
  else
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
  report_reject(conn, reason, msg);
}

/* ---- a new connection ----------------------------------------------------------- */

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
  conn->ev = &events;
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
   * live token may be longer than max_bytes (on_head). */
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

/* ---- the handshake -------------------------------------------------------------- */

/* events.head: the first bytes decide whether the hello is charged (it
 * does not begin with a live token) and so held to max_bytes. */
static bool on_head(sb_conn *conn) {
  uint32_t length;

  if (!sb__head_decided(conn->head, conn->head_len, conn->dec.ctl_max))
    return false;
  conn->head_done = true;
  conn->authed = sb__head_token_live(conn->server, conn->head, conn->head_len);
  length = conn->head_len >= 4 ? sb__head_length(conn->head) : 0;
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

int sb__conn_check_peer(sb_conn *conn, int version, int min_version, char *token) {
  char msg[160];
  int hi;

  conn->ticket = sb_token_valid(token) ? sb__ticket_lookup(conn->server, token) : NULL;
  explicit_bzero(token, strlen(token));
  hi = sb__version_choose(version, min_version, msg, sizeof msg);
  if (hi == 0) {
    sb__conn_reject(conn, SB_REASON_VERSION, true, "%s", msg);
    return 0;
  }
  if (conn->ticket == NULL) {
    sb__conn_reject(conn, SB_REASON_BAD_TOKEN, true,
                    "the token is not one this supervisor issued, or it was revoked");
    return 0;
  }
  return hi;
}

/* The first frame parsed as a hello (into conn->hello), or a side-band
 * send handled by message.c: true when it is a hello; else the peer was
 * refused, closed, or handed over. */
static bool read_hello(sb_conn *conn, const sb_frame *f) {
  sb_diag diag;
  const char *name;
  int r;

  if (f->kind != SB_KIND_CONTROL) {
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "a %s frame before welcome",
                    sb_kind_name((int)f->kind));
    return false;
  }
  memset(&diag, 0, sizeof diag);
  r = sb_msg_parse(f->data, f->len, &conn->hello, &diag);
  if (r == SB_ENOMEM)
    protocol_error(conn, r);
  else if (r < 0 && !sb__message_first_frame(conn, f))
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "bad hello: %s",
                    diag.msg[0] != '\0' ? diag.msg : sb_strerror(r));
  if (r < 0)
    return false;
  conn->have_hello = true;
  if (conn->hello.type == SB_MSG_HELLO)
    return true;
  name = sb_msg_type_name(conn->hello.type);
  sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "expected hello, got %s",
                  name != NULL ? name : "an unknown message");
  return false;
}

/* HANDSHAKE -> OPEN: the stub is welcomed (the welcome itself waits for
 * on_connect, or the first frame it queues). */
static void accept_stub(sb_conn *conn, int version) {
  sb_hello *h = &conn->hello.u.hello;

  /* hello.env never holds SOCKETBRIDGE_TOKEN: sb_msg_parse leaves it out. */
  sb__hello_call(h, &conn->call);
  if (conn->ticket->child != NULL && conn->ticket->child->state < SB__CHILD_ENDING)
    conn->child = conn->ticket->child;
  uv_timer_stop(&conn->timer);
  conn->version = version;
  conn->welcome_pending = true;
  conn->state = SB__CONN_OPEN;
  sb_decoder_set_ctl_max(&conn->dec, 0); /* the stub's later frames are small */
  sb__conn_account(conn);
  conn->welcomed = true;
  set_abortive_close(conn, true);
  conn->server->stats.welcomed++;
}

/* STUB_CONNECT, on_connect, then the welcome unless held. Each callback may
 * close the connection (sb_server_close), or end it. */
static void connect_stub(sb_conn *conn) {
  sb_server *server = conn->server;
  sb_event ev = {0};
  int r;

  ev.type = SB_EVENT_STUB_CONNECT;
  ev.conn = conn;
  ev.child = conn->child;
  ev.pid = conn->call.pid;
  sb__emit(server, &ev);
  if (sb__conn_accepted(conn))
    server->on_connect(server, conn);
  if (sb__conn_accepted(conn) && !conn->held && (r = sb__conn_welcome(conn)) < 0)
    protocol_error(conn, r);
}

static void on_hello(sb_conn *conn, const sb_frame *f) {
  sb_hello *h;
  int version;

  if (!read_hello(conn, f))
    return;
  h = &conn->hello.u.hello;
  version = sb__conn_check_peer(conn, h->version, h->min_version, h->token);
  if (version == 0)
    return;
  accept_stub(conn, version);
  connect_stub(conn);
}

int sb_conn_hold(sb_conn *conn) {
  if (conn == NULL || !sb__conn_accepted(conn))
    return -ENOTCONN;
  conn->held = true;
  return 0;
}

int sb_conn_open(sb_conn *conn) {
  int r;
  if (conn == NULL || !sb__conn_accepted(conn))
    return -ENOTCONN;
  conn->held = false;
  if ((r = sb__conn_welcome(conn)) < 0)
    protocol_error(conn, r);
  return r;
}

int sb__conn_welcome(sb_conn *conn) {
  sb_msg m;

  if (!conn->welcome_pending)
    return 0;
  conn->welcome_pending = false;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_WELCOME;
  m.u.welcome.version = conn->version;
  m.u.welcome.hold_stdin = conn->hold_stdin;
  return sb__wire_send_msg(conn, &m);
}

/* ---- side-band senders (message.c) -------------------------------------------- */

void sb__conn_accept_sender(sb_conn *conn, int version) {
  uv_timer_stop(&conn->timer);
  conn->state = SB__CONN_OPEN;
  conn->version = version;
}

void sb__conn_set_message(sb_conn *conn, sb_message *msg) {
  conn->msg = msg;
}

static void on_reply_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

void sb__conn_replied(sb_conn *conn) {
  conn->state = SB__CONN_ENDING;
  uv_shutdown(&conn->shutdown_req, &conn->io.stream, on_reply_shutdown);
  sb_conn_resume(conn);
}

/* ---- the frames of an accepted connection -------------------------------------- */

static void on_signal_msg(sb_conn *conn, int signum) {
  if (conn->cbs.on_signal != NULL)
    conn->cbs.on_signal(conn, signum);
  else if (conn->ops != NULL && conn->ops->on_signal != NULL)
    conn->ops->on_signal(conn, signum);
  else if (conn->state == SB__CONN_OPEN)
    sb_conn_kill(conn, signum);
}

/* run, exec: `exited`, once, and only when we asked for a program. */
static void on_exited_msg(sb_conn *conn, const sb_status *st) {
  if (conn->ops == NULL || conn->ops->on_exited == NULL || conn->prog_exited) {
    protocol_error(conn, SB_EPROTO);
    return;
  }
  conn->prog_exited = true;
  if (conn->dispo == SB__DISPO_EXEC) {
    /* The exec failed; the stub ends with this status by itself. */
    conn->told = true;
    conn->told_code = st->code;
    conn->told_signal = st->signal;
  }
  conn->ops->on_exited(conn, st);
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
  if (m.type == SB_MSG_SIGNAL) {
    on_signal_msg(conn, m.u.signal.signal);
  } else if (m.type == SB_MSG_EXITED) {
    on_exited_msg(conn, &m.u.exit);
  } else if (m.type == SB_MSG_WINSIZE) {
    conn->call.winsize = m.u.winsize;
    if (conn->ops != NULL && conn->ops->on_winsize != NULL)
      conn->ops->on_winsize(conn);
  } else if (m.type == SB_MSG_STREAM_ERROR) {
    if (conn->cbs.on_stream_error != NULL)
      conn->cbs.on_stream_error(conn, m.u.stream_error.stream, m.u.stream_error.err);
  } else {
    protocol_error(conn, SB_EPROTO); /* a second hello, or a supervisor's message */
  }
  sb_msg_free(&m);
}

static void on_stdin(sb_conn *conn, const sb_frame *f) {
  const char *buf = f->len != 0 ? (const char *)f->data : "";

  if (conn->stdin_done) {
    protocol_error(conn, SB_EPROTO); /* data after the end of stdin */
    return;
  }
  if (f->len == 0)
    conn->stdin_done = true;
  if (conn->ops != NULL && conn->ops->on_stdin != NULL)
    conn->ops->on_stdin(conn, buf, f->len);
  if (conn->cbs.on_stdin != NULL && sb__conn_accepted(conn))
    conn->cbs.on_stdin(conn, buf, f->len);
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

/* events.frame */
static void on_frame(sb_conn *conn, const sb_frame *f) {
  if (conn->state == SB__CONN_HANDSHAKE)
    on_hello(conn, f);
  else if (!sb__conn_accepted(conn))
    return;
  else if (f->kind == SB_KIND_CONTROL)
    on_control(conn, f);
  else if (f->kind == SB_KIND_STDIN)
    on_stdin(conn, f);
  else
    on_program_output(conn, f);
}

/* events.decode_error */
static void on_decode_error(sb_conn *conn, int err, const sb_diag *diag) {
  const char *why = diag->msg[0] != '\0' ? diag->msg : sb_strerror(err);

  if (sb__conn_accepted(conn))
    protocol_error(conn, err);
  else if (conn->state != SB__CONN_HANDSHAKE)
    return;
  else if (err == SB_EMSGSIZE)
    sb__conn_reject(conn, SB_REASON_TOO_LARGE, true, "%s", why);
  else if (err == SB_ENOMEM)
    protocol_error(conn, err);
  else
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true, "%s", why);
}

/* How an accepted connection ends when the peer closes: an exec'd stub
 * (its socket is close-on-exec: the stub is the program now), a stub that
 * did as told, or one lost. After an end was told, a reset instead of a
 * FIN says nothing more. */
static void accepted_read_end(sb_conn *conn, int err) {
  int quiet = (err == UV_EOF || err == UV_ECONNRESET) ? 0 : err;

  if (conn->dispo == SB__DISPO_EXEC && !conn->prog_exited)
    sb__conn_close(conn, SB_CLOSE_EXEC, quiet);
  else if (conn->state == SB__CONN_ENDING)
    sb__conn_close(conn, SB_CLOSE_EXITED, quiet);
  else
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, err == UV_EOF ? 0 : err);
}

/* events.read_end */
static void on_read_end(sb_conn *conn, int err) {
  if (sb__conn_accepted(conn))
    accepted_read_end(conn, err);
  else if (conn->state == SB__CONN_REJECTING)
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, 0);
  else if (conn->state != SB__CONN_HANDSHAKE)
    return;
  else if (err == UV_EOF)
    sb__conn_reject(conn, SB_REASON_PROTOCOL, false,
                    "the peer closed the connection before its hello");
  else
    sb__conn_reject(conn, SB_REASON_PROTOCOL, false,
                    "reading the connection failed before hello: %s", uv_strerror(err));
}

static const sb__conn_events events = {
    .head = on_head,
    .frame = on_frame,
    .decode_error = on_decode_error,
    .read_end = on_read_end,
    .failed = on_failed,
};

/* ---- verbs: pause, resume, and how the stub ends -------------------------------- */

int sb_conn_pause(sb_conn *conn) {
  if (conn == NULL)
    return -EINVAL;
  if (!sb__conn_accepted(conn))
    return -ENOTCONN;
  /* Once its end is told the connection reads until the stub closes. */
  if (conn->state == SB__CONN_ENDING || conn->paused)
    return 0;
  conn->paused = true;
  sb__read_pause(conn);
  return 0;
}

static int unpause(sb_conn *conn) {
  int r;
  conn->paused = false;
  r = sb__read_resume(conn);
  if (r < 0)
    sb__conn_close(conn, SB_CLOSE_PEER_LOST, r);
  return r;
}

int sb_conn_resume(sb_conn *conn) {
  if (conn == NULL)
    return -EINVAL;
  if (!sb__conn_accepted(conn))
    return -ENOTCONN;
  if (!conn->paused)
    return 0;
  return unpause(conn);
}

/* OPEN -> ENDING, told how (told: a status the stub will end with). The
 * stub closes once it has ended; read on to see that, even if the caller
 * had paused. */
static void end(sb_conn *conn, bool told, int code, int signum) {
  conn->state = SB__CONN_ENDING;
  conn->told = told;
  conn->told_code = code;
  conn->told_signal = signum;
  if (conn->paused)
    unpause(conn);
}

static int send_exit(sb_conn *conn, int code, int signum) {
  sb_msg m;
  int r;

  if (!sb__conn_accepted(conn))
    return -ENOTCONN;
  if (conn->state == SB__CONN_ENDING)
    return -EALREADY;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_EXIT;
  m.u.exit.code = code;
  m.u.exit.signal = signum;
  r = sb__conn_send_msg(conn, &m);
  if (r == 0)
    end(conn, true, code, signum);
  return r;
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
  if (conn == NULL || !conn->told)
    return false;
  if (code != NULL)
    *code = conn->told_code;
  if (signum != NULL)
    *signum = conn->told_signal;
  return true;
}

/* ---- verbs: dispositions ---------------------------------------------------------- */

int sb__dispo_check(const sb_conn *conn) {
  if (conn == NULL)
    return -EINVAL;
  if (!sb__conn_accepted(conn))
    return -ENOTCONN;
  if (conn->dispo != SB__DISPO_NONE || conn->state == SB__CONN_ENDING)
    return -EALREADY;
  return 0;
}

sb__dispo *sb__dispo_get(sb_conn *conn) {
  if (conn->dp == NULL)
    conn->dp = calloc(1, sizeof *conn->dp);
  return conn->dp;
}

void sb__conn_choose(sb_conn *conn, sb__dispo_kind kind, const sb__dispo_ops *ops) {
  conn->dispo = kind;
  conn->ops = ops;
}

int sb__conn_launch(sb_conn *conn, const sb_msg *m, sb__dispo_kind kind,
                    const sb__dispo_ops *ops) {
  int r;

  /* An exec is learnt of by the connection's end: read on whatever the
   * caller paused. */
  if (kind == SB__DISPO_EXEC)
    sb_conn_resume(conn);
  /* Chosen before the welcome left: the stub leaves its stdin alone, so
   * the program gets all of it. */
  conn->hold_stdin = conn->welcome_pending;
  if ((r = sb__conn_send_msg(conn, m)) < 0)
    return r;
  sb__conn_choose(conn, kind, ops);
  /* Nothing may follow an exec; the stub's own status is not ours to
   * know (unless the exec fails: on_exited_msg). */
  if (kind == SB__DISPO_EXEC)
    end(conn, false, 0, 0);
  return 0;
}

void sb__conn_own_handle(sb_conn *conn, uv_handle_t *handle) {
  handle->data = conn;
  conn->open_handles++;
}

/* ---- verbs: what may be written, and the welcome first
 * ------------------------------------------------------------- */

int sb__conn_send_owned(sb_conn *conn, void *frame, size_t len) {
  int r = sb__conn_welcome(conn);
  if (r < 0) {
    free(frame);
    return r;
  }
  return sb__wire_send_owned(conn, frame, len);
}

int sb__conn_send_msg(sb_conn *conn, const sb_msg *m) {
  int r = sb__conn_welcome(conn);
  return r < 0 ? r : sb__wire_send_msg(conn, m);
}

int sb__conn_writable(const sb_conn *conn, int stream) {
  if (conn == NULL || (stream != 1 && stream != 2))
    return -EINVAL;
  if (!sb__conn_accepted(conn))
    return -ENOTCONN;
  /* After exec and run the program writes; the caller cannot. */
  if (conn->state == SB__CONN_ENDING || conn->out_closed[stream] ||
      conn->dispo == SB__DISPO_EXEC || conn->dispo == SB__DISPO_RUN)
    return -EPIPE;
  return 0;
}

int sb_conn_close_stream(sb_conn *conn, int stream) {
  int r = sb__conn_writable(conn, stream);
  if (r == -EPIPE && conn->state != SB__CONN_ENDING)
    return 0; /* already closed */
  if (r < 0 || (r = sb__conn_welcome(conn)) < 0)
    return r;
  r = sb__wire_write(conn, (sb_kind)sb_stream_kind(stream), NULL, 0, NULL, NULL, NULL);
  if (r == 0)
    conn->out_closed[stream] = true;
  return r;
}

/* ---- links and accessors ---------------------------------------------------------- */

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

void sb_conn_set_callbacks(sb_conn *conn, const sb_conn_callbacks *cbs, void *data) {
  if (cbs != NULL)
    conn->cbs = *cbs;
  else
    memset(&conn->cbs, 0, sizeof conn->cbs);
  conn->data = data;
}

void sb_conn_close(sb_conn *conn) {
  if (conn == NULL)
    return;
  sb__conn_close(conn, SB_CLOSE_SERVER, 0);
}
