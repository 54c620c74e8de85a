/* SPDX-License-Identifier: MIT */
/* answer_file.c - a respond whose stdout is a file (stdout_file): streamed
 * from the file to the call, never held whole, so an answer may be any
 * size and each call costs CLI_FILE_SLOTS chunks at most, however slowly
 * its stub reads.
 *
 * The file is read with uv_fs_read on libuv's threadpool (the loop never
 * waits on a disk), at explicit offsets from a descriptor of its own
 * (dup'd from the one the rules hold, so a reload that frees those rules
 * does not pull it away). A chunk is read only when a slot is free, and a
 * slot is freed when its write to the stub has finished: the stub's pace
 * is the read's. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLI_FILE_CHUNK (64u * 1024u) /* bytes per read and per write */
#define CLI_FILE_SLOTS 4             /* chunks per call, read or in flight */

struct cli_stream {
  sb_conn *conn; /* NULL once the call is gone */
  cli_call *call;
  uv_loop_t *loop;
  int fd;
  uint64_t off; /* the next read's offset */
  int code, signum;
  char *err; /* stderr, until it is sent */
  size_t err_len;
  uv_fs_t req;
  bool reading, done;
  uv_timer_t delay;
  bool timer_open;
  unsigned first, used; /* the ring of slots: used slots from first */
  size_t len[CLI_FILE_SLOTS];
  char buf[CLI_FILE_SLOTS][CLI_FILE_CHUNK];
};

static void read_more(cli_stream *s);

/* Frees s once the call is gone and nothing of libuv's points to it. */
static void maybe_free(cli_stream *s) {
  if (s->conn != NULL || s->reading || s->used > 0 || s->timer_open)
    return;
  close(s->fd);
  free(s->err);
  free(s);
}

static void on_timer_closed(uv_handle_t *h) {
  cli_stream *s = h->data;
  s->timer_open = false;
  maybe_free(s);
}

/* The end of the answer: what the rule says, after the bytes queued. */
static void end(cli_stream *s) {
  s->done = true;
  if (s->signum != 0)
    sb_conn_kill(s->conn, s->signum);
  else
    sb_conn_exit(s->conn, s->code);
}

static void on_written(sb_conn *conn, int status, void *data) {
  cli_stream *s = data;
  (void)conn;
  if (status == 0 && s->call != NULL)
    cli_rec_bytes(&s->call->io[1], s->buf[s->first], s->len[s->first]);
  s->first = (s->first + 1) % CLI_FILE_SLOTS;
  s->used--;
  read_more(s);
  maybe_free(s);
}

static void on_read(uv_fs_t *req) {
  cli_stream *s = req->data;
  ssize_t n = req->result;
  unsigned slot = (s->first + s->used) % CLI_FILE_SLOTS;

  uv_fs_req_cleanup(req);
  s->reading = false;
  if (s->conn == NULL || s->done) {
    maybe_free(s);
    return;
  }
  if (n <= 0) {
    if (n < 0) { /* the answer is cut short: the call fails, and says why */
      char msg[160], line[200];
      snprintf(msg, sizeof msg, "stdout_file: %s", uv_strerror((int)n));
      snprintf(line, sizeof line, "socketbridge: %s\n", msg);
      sb_conn_write_copy(s->conn, 2, line, strlen(line));
      if (s->call->error == NULL)
        s->call->error = strdup(msg);
      s->code = 125;
      s->signum = 0;
    }
    end(s);
    return;
  }
  s->len[slot] = (size_t)n;
  s->off += (uint64_t)n;
  s->used++;
  if (sb_conn_write(s->conn, 1, s->buf[slot], (size_t)n, on_written, s) < 0) {
    s->used--;      /* the stub's stdout is closed, or it was told its end */
    s->done = true; /* (by a signal it got): nothing more to send */
    return;
  }
  read_more(s);
}

static void read_more(cli_stream *s) {
  if (s->conn == NULL || s->done || s->reading || s->used == CLI_FILE_SLOTS)
    return;
  unsigned slot = (s->first + s->used) % CLI_FILE_SLOTS;
  uv_buf_t b = uv_buf_init(s->buf[slot], CLI_FILE_CHUNK);
  int r = uv_fs_read(s->loop, &s->req, s->fd, &b, 1, (int64_t)s->off, on_read);
  if (r < 0) {
    s->req.result = r; /* as if the read had failed */
    s->reading = true;
    on_read(&s->req);
    return;
  }
  s->reading = true;
}

/* The answer begins: stderr at once, stdout chunk by chunk. */
static void begin(cli_stream *s) {
  if (s->err_len > 0 && sb_conn_write_copy(s->conn, 2, s->err, s->err_len) == 0)
    cli_rec_bytes(&s->call->io[2], s->err, s->err_len);
  free(s->err);
  s->err = NULL;
  read_more(s);
}

static void on_delay(uv_timer_t *t) {
  cli_stream *s = t->data;
  uv_close((uv_handle_t *)&s->delay, on_timer_closed);
  if (s->conn != NULL)
    begin(s);
}

int cli_stream_start(cli_call *c, sb_conn *conn, const rule_respond *rr) {
  cli_stream *s = malloc(sizeof *s);
  if (s == NULL)
    return -ENOMEM;
  memset(s, 0, offsetof(cli_stream, len));
  s->fd = fcntl(rr->out_fd, F_DUPFD_CLOEXEC, 3);
  /* stderr is copied: the rules may be reloaded before the delay ends. */
  s->err = rr->err_len > 0 ? malloc(rr->err_len) : NULL;
  if (s->fd < 0 || (rr->err_len > 0 && s->err == NULL)) {
    int err = s->fd < 0 ? -errno : -ENOMEM;
    if (s->fd >= 0)
      close(s->fd);
    free(s);
    return err;
  }
  if (rr->err_len > 0)
    memcpy(s->err, rr->err, rr->err_len);
  s->err_len = rr->err_len;
  s->conn = conn;
  s->call = c;
  s->loop = sb_server_loop(sb_conn_server(conn));
  s->code = rr->code;
  s->signum = rr->signal;
  s->req.data = s;
  c->stream = s;
  if (rr->delay_ms == 0) {
    begin(s);
    return 0;
  }
  uv_timer_init(s->loop, &s->delay);
  s->delay.data = s;
  s->timer_open = true;
  uv_timer_start(&s->delay, on_delay, rr->delay_ms, 0);
  return 0;
}

void cli_stream_detach(cli_stream *s) {
  s->conn = NULL;
  s->call = NULL;
  if (s->timer_open && !uv_is_closing((uv_handle_t *)&s->delay))
    uv_close((uv_handle_t *)&s->delay, on_timer_closed);
  maybe_free(s);
}
