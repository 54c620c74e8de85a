/* SPDX-License-Identifier: MIT */
/* wire.c - frames out: every write is one uv_write whose buffers alternate
 * frame headers (in the pooled request) and pieces of the caller's buffer,
 * which is never copied; control messages are encoded into a frame the
 * request owns. What may be written, and when, is conn.c's to decide; a
 * write that fails is reported to it (conn->ev->failed) before the
 * write's own callback runs. */
#include "sb_internal.h"

#include <limits.h>
#include <stdlib.h>

static void on_write_done(uv_write_t *w, int status) {
  sb__write_req *req = sb__container_of(w, sb__write_req, req);
  sb_conn *conn = req->conn;
  sb_write_cb cb = req->cb;
  void *data = req->data;

  conn->queued -= req->bytes;
  sb__req_put(conn->server, req);
  /* A failed write means the stub is gone before it got everything. Close
   * before the callback, so the caller sees the connection closing. */
  if (status < 0)
    conn->ev->failed(conn, SB_CLOSE_PEER_LOST, status);
  if (cb != NULL)
    cb(conn, status, data);
}

static int submit(sb_conn *conn, sb__write_req *req, const uv_buf_t *bufs,
                  unsigned nbufs) {
  int r;
  req->conn = conn;
  r = uv_write(&req->req, &conn->io.stream, bufs, nbufs, on_write_done);
  if (r < 0)
    sb__req_put(conn->server, req);
  else
    conn->queued += req->bytes;
  return r;
}

/* More than one frame: libuv copies the buffer array, but the headers must
 * live until the write ends, so both go in req->frames. */
static int submit_frames(sb_conn *conn, sb__write_req *req, sb_kind kind,
                         const uint8_t *buf, size_t len, size_t chunk) {
  size_t nframes = (len - 1) / chunk + 1, i, off;
  uv_buf_t *bufs;
  uint8_t *hdrs;

  if (nframes > UINT_MAX / 2) {
    sb__req_put(conn->server, req);
    return -EINVAL;
  }
  req->frames = malloc(nframes * (2 * sizeof(uv_buf_t) + SB_FRAME_HEADER));
  if (req->frames == NULL) {
    sb__req_put(conn->server, req);
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

int sb__wire_write(sb_conn *conn, sb_kind kind, const void *buf, size_t len,
                   sb_write_cb cb, void *data, void *owned) {
  size_t chunk = conn->server->max_bytes - 1;
  sb__write_req *req = sb__req_get(conn->server);
  uv_buf_t two[2];

  if (req == NULL) {
    free(owned);
    return -ENOMEM;
  }
  req->cb = cb;
  req->data = data;
  req->owned = owned;
  req->bytes = len;
  if (len > chunk)
    return submit_frames(conn, req, kind, buf, len, chunk);
  sb_frame_header(req->hdr, kind, (uint32_t)len);
  two[0] = uv_buf_init((char *)req->hdr, SB_FRAME_HEADER);
  two[1] = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);
  return submit(conn, req, two, len > 0 ? 2 : 1);
}

int sb__wire_nothing(sb_conn *conn, sb_write_cb cb, void *data) {
  sb__write_req *req = sb__req_get(conn->server);
  uv_buf_t buf;
  if (req == NULL)
    return -ENOMEM;
  req->cb = cb;
  req->data = data;
  buf = uv_buf_init((char *)req->hdr, 0);
  return submit(conn, req, &buf, 1);
}

int sb__wire_send_owned(sb_conn *conn, void *frame, size_t len) {
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

int sb__wire_send_msg(sb_conn *conn, const sb_msg *m) {
  uint8_t *frame = NULL;
  size_t len = 0;
  /* exec and run carry a command line: SB_CTL_MAX_BYTES bounds them. */
  uint32_t bound = conn->server->max_bytes > SB_CTL_MAX_BYTES ? conn->server->max_bytes
                                                              : SB_CTL_MAX_BYTES;
  int r = sb_msg_encode(m, bound, &frame, &len);
  if (r < 0)
    return r;
  return sb__wire_send_owned(conn, frame, len);
}
