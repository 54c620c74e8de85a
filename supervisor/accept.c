/* SPDX-License-Identifier: MIT */
/* accept.c - taking connections off the listening socket.
 *
 * The server accepts by itself (a uv_poll_t on the listening fd and
 * accept4) rather than through uv_listen, because of what libuv does when
 * accept fails with EMFILE: it closes a reserved fd, accepts every waiting
 * connection and closes it at once, and tells nobody. Stubs would be
 * dropped silently just when the supervisor is under pressure.
 *
 * Here an accept that fails for want of fds or memory is reported (an
 * ACCEPT_PAUSED event; stats.accept_errors) and pauses accepting. The
 * waiting peers stay in the kernel's backlog, and are taken as soon as an
 * fd is freed (a connection of ours closes) or at the next retry tick, with
 * an ACCEPT_RESUMED event. Nothing is dropped: a stub waits for its welcome
 * a little longer, and the loop serves everything else meanwhile.
 *
 * Accepting is also held, silently, while peers without a valid token hold
 * all the memory they may (conn.c, SB__UNAUTH_BYTES): the next ones wait in
 * the backlog until a handshake ends. */
#include "sb_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Connections taken per wakeup, so a burst does not starve other handles;
 * the poll is level-triggered, so the rest are taken on the next turn. */
#define SB__ACCEPT_BATCH 64
/* While paused, how often to try again when no fd of ours is freed. */
#define SB__ACCEPT_RETRY_MS 100u

static void on_readable(uv_poll_t *poll, int status, int events);
static void on_retry(uv_timer_t *timer);

/* Errors of the machine, not of one connection: accepting again at once
 * would fail the same way. */
static bool out_of_resources(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static void emit_accept(sb_server *server, sb_event_type type, int err,
                        uint64_t paused_ms) {
  char msg[128];
  sb_event ev;

  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.error = err;
  ev.delay_ms = paused_ms;
  if (type == SB_EVENT_ACCEPT_PAUSED)
    snprintf(msg, sizeof msg, "cannot accept: %s; connections wait in the backlog",
             strerror(-err));
  else
    snprintf(msg, sizeof msg, "accepting again after %llu ms",
             (unsigned long long)paused_ms);
  ev.message = msg;
  sb__emit(server, &ev);
}

static void pause_accepting(sb_server *server, int err) {
  if (server->accept_paused)
    return;
  server->accept_paused = true;
  server->paused_at_ms = uv_now(server->loop);
  uv_poll_stop(&server->accept_poll);
  uv_timer_start(&server->accept_retry, on_retry, SB__ACCEPT_RETRY_MS,
                 SB__ACCEPT_RETRY_MS);
  emit_accept(server, SB_EVENT_ACCEPT_PAUSED, -err, 0);
}

static void resume_accepting(sb_server *server) {
  server->accept_paused = false;
  uv_timer_stop(&server->accept_retry);
  /* Cannot fail on a handle that polled before: the fd is the same. */
  if (!server->accept_held)
    uv_poll_start(&server->accept_poll, UV_READABLE, on_readable);
  emit_accept(server, SB_EVENT_ACCEPT_RESUMED, 0,
              uv_now(server->loop) - server->paused_at_ms);
}

/* Hands an accepted fd to a new connection, which owns it from then on. */
static void take(sb_server *server, int fd) {
  sb_conn *conn;
  if (sb__conn_adopt_fd(server, fd, &conn) < 0) {
    /* No memory for the connection: this peer sees its bridge closed (its
     * stub exits 125) rather than waiting forever. */
    server->stats.accept_errors++;
    close(fd);
  }
}

/* Whether one more unauthenticated connection fits; if not, accepting is
 * held until sb__accept_unhold. */
static bool room_for_one(sb_server *server) {
  if (sb__unauth_room(server, SB__CONN_COST))
    return true;
  if (!server->accept_held) {
    server->accept_held = true;
    uv_poll_stop(&server->accept_poll);
  }
  return false;
}

void sb__accept_unhold(sb_server *server) {
  if (!server->accept_held)
    return;
  server->accept_held = false;
  if (!server->accept_paused && !server->closing && server->listener_handles > 0)
    uv_poll_start(&server->accept_poll, UV_READABLE, on_readable);
}

/* Accepts up to a batch. Returns the error that stopped it: 0 (nothing
 * more waiting, the batch is done, or held) or an errno out_of_resources()
 * holds. */
static int accept_some(sb_server *server) {
  for (int i = 0; i < SB__ACCEPT_BATCH && !server->closing; i++) {
    if (!room_for_one(server))
      return 0;
    int fd = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) {
      if (server->accept_paused)
        resume_accepting(server);
      take(server, fd);
      continue;
    }
    int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      return 0;
    if (err == EINTR)
      continue;
    server->stats.accept_errors++;
    if (out_of_resources(err))
      return err;
    /* ECONNABORTED, EPROTO, EPERM (a firewall)...: that connection is
     * gone, the next one may be fine. */
  }
  return 0;
}

static void on_readable(uv_poll_t *poll, int status, int events) {
  sb_server *server = poll->data;
  (void)events;
  /* A poll error on a listening socket is not expected; accept4 below
   * reports whatever is wrong. */
  (void)status;
  int err = accept_some(server);
  if (err != 0)
    pause_accepting(server, err);
}

/* A retry: at the tick while paused, or at once after a kick. */
static void on_retry(uv_timer_t *timer) {
  sb_server *server = timer->data;
  if (!server->accept_paused || server->closing)
    return;
  int err = accept_some(server);
  if (err == 0 && server->accept_paused)
    resume_accepting(server); /* nothing was waiting: poll again */
}

void sb__accept_kick(sb_server *server) {
  /* From the next loop turn, not from inside the caller's close callback. */
  if (server->accept_paused && !server->closing)
    uv_timer_start(&server->accept_retry, on_retry, 0, SB__ACCEPT_RETRY_MS);
}

int sb__accept_start(sb_server *server, int fd) {
  int r = uv_poll_init_socket(server->loop, &server->accept_poll, fd);
  if (r < 0)
    return r;
  uv_timer_init(server->loop, &server->accept_retry);
  server->accept_poll.data = server;
  server->accept_retry.data = server;
  server->listen_fd = fd;
  server->listener_handles = 2;
  return uv_poll_start(&server->accept_poll, UV_READABLE, on_readable);
}

void sb__accept_stop(sb_server *server, uv_close_cb cb) {
  if (server->listener_handles == 0)
    return;
  uv_close((uv_handle_t *)&server->accept_poll, cb);
  uv_close((uv_handle_t *)&server->accept_retry, cb);
}
