/* SPDX-License-Identifier: MIT */
/* conn_write.c - the caller's writes to the stub's stdout and stderr: what
 * conn.c allows (sb__conn_writable), the welcome first if it is still due,
 * then frames (wire.c). The caller's buffer is never copied, unless it asks
 * for a copy. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

/* What both write calls check, in this order, before anything is queued. */
static int check_write(const sb_conn *conn, int stream, const void *buf, size_t len) {
  int r = sb__conn_writable(conn, stream);
  if (r == 0 && buf == NULL && len > 0)
    r = -EINVAL;
  return r;
}

int sb_conn_write(sb_conn *conn, int stream, const void *buf, size_t len, sb_write_cb cb,
                  void *data) {
  int r = check_write(conn, stream, buf, len);
  if (r < 0 || (r = sb__conn_welcome(conn)) < 0)
    return r;
  if (len == 0)
    return sb__wire_nothing(conn, cb, data);
  return sb__wire_write(conn, (sb_kind)sb_stream_kind(stream), buf, len, cb, data, NULL);
}

int sb_conn_write_copy(sb_conn *conn, int stream, const void *buf, size_t len) {
  void *copy;
  int r = check_write(conn, stream, buf, len);
  if (r < 0 || len == 0 || (r = sb__conn_welcome(conn)) < 0)
    return r;
  copy = malloc(len);
  if (copy == NULL)
    return -ENOMEM;
  memcpy(copy, buf, len);
  return sb__wire_write(conn, (sb_kind)sb_stream_kind(stream), copy, len, NULL, NULL,
                        copy);
}

/* The caller's own bytes, not libuv's write_queue_size: that one counts
 * frame headers too, and drops what the kernel took at once, before the
 * write's callback (the caller's cue to write more) has run. */
size_t sb_conn_queued(const sb_conn *conn) {
  return conn != NULL ? conn->queued : 0;
}
