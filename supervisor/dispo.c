/* SPDX-License-Identifier: MIT */
/* dispo.c - respond: a canned answer (stdout, stderr, exit or signal), now
 * or after a delay.
 *
 * A disposition that outlives its call keeps its state in an sb__dispo
 * owned by the connection (conn.c's sb__dispo_get); its handles are the
 * connection's (sb__conn_own_handle: closed by its close), so the
 * connection is freed only after them, and sb_server_close waits for them
 * too. The connection's state changes only through conn.c's verbs. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- respond ---------------------------------------------------------------- */

/* Queues the bytes, then the end. A stream the caller closed already is
 * skipped (-EPIPE), as a process writing to a closed fd gets nothing out. */
static int answer(sb_conn *conn, const void *out, size_t out_len, const void *err,
                  size_t err_len, int code, int signum) {
  int r = out_len > 0 ? sb_conn_write_copy(conn, 1, out, out_len) : 0;
  if ((r == 0 || r == -EPIPE) && err_len > 0)
    r = sb_conn_write_copy(conn, 2, err, err_len);
  if (r < 0 && r != -EPIPE)
    return r;
  return signum != 0 ? sb_conn_kill(conn, signum) : sb_conn_exit(conn, code);
}

static void on_delay_over(uv_timer_t *timer) {
  sb_conn *conn = timer->data;
  sb__dispo *dp = conn->dp;
  int r;

  if (conn->state != SB__CONN_OPEN)
    return; /* the caller ended it otherwise meanwhile */
  r = answer(conn, dp->out, dp->out_len, dp->err, dp->err_len, dp->code, dp->signum);
  if (r < 0)
    sb__conn_close(conn, SB_CLOSE_SERVER, r);
}

static int copy_bytes(char **dst, const void *src, size_t len) {
  free(*dst); /* an earlier attempt that failed */
  *dst = NULL;
  if (len == 0)
    return 0;
  *dst = malloc(len);
  if (*dst == NULL)
    return -ENOMEM;
  memcpy(*dst, src, len);
  return 0;
}

static int respond_later(sb_conn *conn, const sb_response *rs) {
  sb__dispo *dp = sb__dispo_get(conn);

  if (dp == NULL || copy_bytes(&dp->out, rs->out, rs->out_len) < 0 ||
      copy_bytes(&dp->err, rs->err, rs->err_len) < 0)
    return -ENOMEM;
  dp->out_len = rs->out_len;
  dp->err_len = rs->err_len;
  dp->code = rs->code;
  dp->signum = rs->signum;
  uv_timer_init(conn->server->loop, &dp->timer);
  sb__conn_own_handle(conn, (uv_handle_t *)&dp->timer);
  dp->timer_open = true;
  return uv_timer_start(&dp->timer, on_delay_over, rs->delay_ms, 0);
}

int sb_conn_respond(sb_conn *conn, const sb_response *rs) {
  int r = sb__dispo_check(conn);

  if (r < 0)
    return r;
  if (rs == NULL || (rs->out == NULL && rs->out_len > 0) ||
      (rs->err == NULL && rs->err_len > 0))
    return -EINVAL;
  if (rs->signum != 0 ? sb_signal_name(rs->signum) == NULL
                      : (rs->code < 0 || rs->code > 255))
    return -EINVAL;
  if (rs->delay_ms > 0)
    r = respond_later(conn, rs);
  else
    r = answer(conn, rs->out, rs->out_len, rs->err, rs->err_len, rs->code, rs->signum);
  if (r == 0)
    sb__conn_choose(conn, SB__DISPO_RESPOND, NULL);
  return r;
}
