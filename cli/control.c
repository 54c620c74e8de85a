/* SPDX-License-Identifier: MIT */
/* control.c - the control channel's framing (docs/control.md section 2):
 * reads frames from the controller with lib/'s incremental decoder, hands
 * out whole JSON frames and pieces of data frames with their id, and writes
 * frames back through libuv, counting what the controller has not taken. */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define CTL_READ_BUF (64u * 1024u)

typedef union ctl_stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_pipe_t pipe;
} ctl_stream;

struct ctl_chan {
  ctl_chan_cbs cbs;
  void *data;
  ctl_stream in, out; /* out unused when the channel is one socket */
  uv_stream_t *wr;    /* &out.stream, or &in.stream */
  int open_handles;
  sb_decoder dec;
  char *rbuf;
  bool reading, ended, write_failed, closing, handles_closing;
  /* The data frame being received. */
  size_t id_have; /* id bytes received */
  uint64_t id;
  size_t frame_bytes; /* payload bytes received */
  size_t queued, high, low;
  bool congested;
  unsigned writes; /* in flight */
  void (*close_cb)(void *data);
};

typedef struct ctl_write {
  uv_write_t req;
  ctl_chan *ch;
  size_t len;
  uint8_t buf[]; /* header, id, payload */
} ctl_write;

static void maybe_close(ctl_chan *ch);

/* ---- reading --------------------------------------------------------------- */

static void end_reading(ctl_chan *ch, int err, const char *why) {
  if (ch->ended)
    return;
  ch->ended = true;
  if (ch->reading)
    uv_read_stop(&ch->in.stream);
  ch->reading = false;
  ch->cbs.on_end(ch, err, why);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ctl_chan *ch = h->data;
  (void)suggested;
  *buf = uv_buf_init(ch->rbuf, CTL_READ_BUF);
}

/* A piece of a data frame: the id first, then the bytes. */
static bool on_data_piece(ctl_chan *ch, const sb_frame *f) {
  const uint8_t *p = f->data;
  size_t n = f->len;
  char why[96];

  if (f->kind != (sb_kind)CTL_STDOUT && f->kind != (sb_kind)CTL_STDERR) {
    snprintf(why, sizeof why, "a frame of kind %d, which a controller does not send",
             (int)f->kind);
    end_reading(ch, -EBADMSG, why);
    return false;
  }
  ch->frame_bytes += n;
  while (ch->id_have < CTL_ID_BYTES && n > 0) {
    ch->id = ch->id << 8 | *p++;
    ch->id_have++;
    n--;
  }
  if (f->end && ch->id_have < CTL_ID_BYTES) {
    end_reading(ch, -EBADMSG, "a data frame shorter than its 8-byte id");
    return false;
  }
  if (n > 0)
    ch->cbs.on_data(ch, (ctl_kind)f->kind, ch->id, (const char *)p, n, false);
  else if (f->end && ch->frame_bytes == CTL_ID_BYTES)
    ch->cbs.on_data(ch, (ctl_kind)f->kind, ch->id, "", 0, true);
  if (f->end) {
    ch->id = 0;
    ch->id_have = 0;
    ch->frame_bytes = 0;
  }
  return !ch->ended;
}

static void process(ctl_chan *ch, const uint8_t *p, size_t n) {
  sb_frame f;
  sb_diag diag;
  int r;

  memset(&diag, 0, sizeof diag);
  while (!ch->ended && (r = sb_decoder_next(&ch->dec, &p, &n, &f, &diag)) > 0) {
    if (f.kind == SB_KIND_CONTROL) {
      ch->cbs.on_json(ch, (const char *)f.data, f.len);
      continue;
    }
    if (!on_data_piece(ch, &f))
      return;
  }
  if (!ch->ended && r < 0)
    end_reading(ch, r, diag.msg[0] != '\0' ? diag.msg : sb_strerror(r));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  ctl_chan *ch = s->data;
  if (nread > 0)
    process(ch, (const uint8_t *)buf->base, (size_t)nread);
  else if (nread == UV_EOF)
    end_reading(ch, sb_decoder_idle(&ch->dec) ? 0 : -EBADMSG,
                sb_decoder_idle(&ch->dec) ? "" : "the channel ended inside a frame");
  else if (nread < 0)
    end_reading(ch, (int)nread, uv_strerror((int)nread));
}

void ctl_chan_pause(ctl_chan *ch) {
  if (ch->reading)
    uv_read_stop(&ch->in.stream);
  ch->reading = false;
}

void ctl_chan_resume(ctl_chan *ch) {
  if (ch->reading || ch->ended || ch->closing)
    return;
  if (uv_read_start(&ch->in.stream, on_alloc, on_read) == 0)
    ch->reading = true;
}

/* ---- writing --------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  ctl_write *w = (ctl_write *)req;
  ctl_chan *ch = w->ch;

  ch->queued -= w->len;
  ch->writes--;
  free(w);
  if (status < 0 && status != UV_ECANCELED && !ch->write_failed) {
    ch->write_failed = true;
    if (ch->cbs.on_write_error != NULL)
      ch->cbs.on_write_error(ch, status);
  }
  if (ch->congested && ch->queued <= ch->low) {
    ch->congested = false;
    if (ch->cbs.on_drain != NULL && !ch->closing)
      ch->cbs.on_drain(ch);
  }
  maybe_close(ch);
}

/* Queues one frame: header, then head (head_len bytes), then body. */
static void send_frame(ctl_chan *ch, ctl_kind kind, const void *head, size_t head_len,
                       const void *body, size_t len) {
  size_t payload = head_len + len;
  ctl_write *w;
  uv_buf_t buf;

  if (ch->write_failed || ch->closing || payload + 1 > CTL_MAX_FRAME)
    return;
  w = malloc(sizeof *w + SB_FRAME_HEADER + payload);
  if (w == NULL) {
    ch->write_failed = true;
    if (ch->cbs.on_write_error != NULL)
      ch->cbs.on_write_error(ch, -ENOMEM);
    return;
  }
  w->ch = ch;
  w->len = SB_FRAME_HEADER + payload;
  sb_frame_header(w->buf, (sb_kind)kind, (uint32_t)payload);
  memcpy(w->buf + SB_FRAME_HEADER, head, head_len);
  if (len > 0)
    memcpy(w->buf + SB_FRAME_HEADER + head_len, body, len);
  buf = uv_buf_init((char *)w->buf, (unsigned)w->len);
  if (uv_write(&w->req, ch->wr, &buf, 1, on_write) < 0) {
    free(w);
    ch->write_failed = true;
    if (ch->cbs.on_write_error != NULL)
      ch->cbs.on_write_error(ch, -EPIPE);
    return;
  }
  ch->writes++;
  ch->queued += w->len;
  if (ch->queued > ch->high)
    ch->congested = true;
}

void ctl_chan_send_json(ctl_chan *ch, const char *json, size_t len) {
  send_frame(ch, CTL_JSON, json, len, NULL, 0);
}

void ctl_chan_send_data(ctl_chan *ch, ctl_kind kind, uint64_t id, const void *buf,
                        size_t len) {
  uint8_t head[CTL_ID_BYTES];
  /* Cut to the frame bound; a reader may not assume boundaries anyway. */
  const size_t room = CTL_MAX_FRAME - 1 - CTL_ID_BYTES;
  for (int i = CTL_ID_BYTES - 1; i >= 0; i--, id >>= 8)
    head[i] = (uint8_t)(id & 0xff);
  do {
    size_t n = len < room ? len : room;
    send_frame(ch, kind, head, sizeof head, buf, n);
    buf = (const char *)buf + n;
    len -= n;
  } while (len > 0);
}

bool ctl_chan_congested(const ctl_chan *ch) {
  return ch->congested;
}

/* ---- open and close -------------------------------------------------------- */

static int open_stream(uv_loop_t *loop, ctl_stream *s, int fd, ctl_chan *ch) {
  int r = uv_pipe_init(loop, &s->pipe, 0);
  if (r < 0)
    return r;
  s->handle.data = ch;
  ch->open_handles++;
  return uv_pipe_open(&s->pipe, fd);
}

static void on_handle_closed(uv_handle_t *h) {
  ctl_chan *ch = h->data;
  if (--ch->open_handles > 0)
    return;
  void (*cb)(void *) = ch->close_cb;
  void *data = ch->data;
  sb_decoder_free(&ch->dec);
  free(ch->rbuf);
  free(ch);
  if (cb != NULL)
    cb(data);
}

static void close_handles(ctl_chan *ch) {
  int n = ch->open_handles;
  if (n == 0) {
    ch->open_handles = 1; /* on_handle_closed frees it */
    on_handle_closed(&ch->in.handle);
    return;
  }
  uv_close(&ch->in.handle, on_handle_closed);
  if (n > 1)
    uv_close(&ch->out.handle, on_handle_closed);
}

int ctl_chan_open(uv_loop_t *loop, int in_fd, int out_fd, size_t high, size_t low,
                  const ctl_chan_cbs *cbs, void *data, ctl_chan **out) {
  ctl_chan *ch = calloc(1, sizeof *ch);
  int r;

  *out = NULL;
  if (ch == NULL || (ch->rbuf = malloc(CTL_READ_BUF)) == NULL) {
    free(ch);
    return -ENOMEM;
  }
  ch->cbs = *cbs;
  ch->data = data;
  ch->high = high;
  ch->low = low;
  sb_decoder_init(&ch->dec, CTL_MAX_FRAME);
  ch->in.handle.data = ch;
  r = open_stream(loop, &ch->in, in_fd, ch);
  if (r == 0 && out_fd != in_fd)
    r = open_stream(loop, &ch->out, out_fd, ch);
  ch->wr = out_fd != in_fd ? &ch->out.stream : &ch->in.stream;
  if (r == 0)
    r = uv_read_start(&ch->in.stream, on_alloc, on_read);
  if (r < 0) {
    ch->close_cb = NULL;
    close_handles(ch);
    return r;
  }
  ch->reading = true;
  *out = ch;
  return 0;
}

void *ctl_chan_data(const ctl_chan *ch) {
  return ch->data;
}

static void maybe_close(ctl_chan *ch) {
  if (ch->closing && ch->writes == 0 && ch->open_handles > 0 && !ch->handles_closing) {
    ch->handles_closing = true;
    close_handles(ch);
  }
}

void ctl_chan_close(ctl_chan *ch, void (*cb)(void *data)) {
  if (ch->closing)
    return;
  ctl_chan_pause(ch);
  ch->ended = true;
  ch->closing = true;
  ch->close_cb = cb;
  maybe_close(ch);
}
