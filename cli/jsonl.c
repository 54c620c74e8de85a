/* SPDX-License-Identifier: MIT */
/* jsonl.c - the one writer of a JSON Lines output (--events, --record).
 *
 * The loop never waits on the file: lines go to a bounded queue, and libuv
 * drains it, through a uv_pipe (non-blocking) for a pipe, a FIFO or a
 * terminal, or with uv_fs_write on its threadpool for anything else (a
 * regular file, /dev/null). One write is in flight at a time, so lines
 * arrive whole and in order.
 *
 * A reader that stalls costs at most CLI_JSONL_MAX_BYTES: past that, lines
 * are dropped and counted, stderr says so once, and the output gets one
 * {"dropped":N} line in their place as soon as there is room
 * again (or at the end). At the end, what is queued gets CLI_JSONL_FLUSH_MS
 * to be written; what is not is counted on stderr. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How the line that counts dropped lines begins (no event or record does). */
#define NOTE_PREFIX "{\"dropped\":"

/* Lines as bytes: len of cap used, holding `lines` lines. */
typedef struct jl_buf {
  char *p;
  size_t len, cap, lines;
} jl_buf;

struct cli_jsonl {
  uv_loop_t *loop;
  const char *option, *path; /* for messages (not owned) */
  int fd;                    /* owned, until the pipe owns it */
  bool stream;               /* uv_pipe; else uv_fs_write */
  uv_pipe_t pipe;
  uv_fs_t fs;
  uv_write_t wr;
  uv_timer_t flush; /* the bound on the flush at the end */
  jl_buf queue;     /* whole lines waiting */
  jl_buf busy;      /* the lines in flight, written up to busy_off */
  size_t busy_off;
  bool writing;
  uint64_t dropped; /* lines dropped and not yet said in the output */
  bool said_full;   /* the stderr line about the bound was written */
  int failed;       /* the write error, said once; nothing is written after */
  bool closing, closed;
  unsigned handles; /* open uv handles; w is freed when the last one closes */
};

static void pump(cli_jsonl *w);

/* Appends a line (and its newline) to b; false when out of memory. */
static bool append(jl_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap > 0 ? b->cap : 4096;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *q = realloc(b->p, cap);
    if (q == NULL)
      return false;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->p[b->len + n] = '\n';
  b->len += n + 1;
  b->lines++;
  return true;
}

static bool has_room(const cli_jsonl *w, size_t n) {
  return w->queue.len + w->busy.len + n + 1 <= CLI_JSONL_MAX_BYTES;
}

/* The line that stands for the lines dropped, once there is room for it
 * (at the end, room or not: it is the last line). */
static void say_dropped(cli_jsonl *w) {
  char note[96];
  int n;
  if (w->dropped == 0 || w->failed != 0)
    return;
  n = snprintf(note, sizeof note, NOTE_PREFIX "%llu}", (unsigned long long)w->dropped);
  if ((w->closing || has_room(w, (size_t)n)) && append(&w->queue, note, (size_t)n))
    w->dropped = 0;
}

static void drop(cli_jsonl *w) {
  w->dropped++;
  if (w->said_full || w->failed != 0)
    return;
  w->said_full = true;
  cli_error("%s: %s: the reader is %u MiB behind; lines are dropped from here and "
            "counted in a {\"dropped\": N} line",
            w->option, w->path, CLI_JSONL_MAX_BYTES >> 20);
}

void cli_jsonl_write(cli_jsonl *w, const char *json) {
  size_t n = strlen(json);
  if (w == NULL || w->closing)
    return;
  if (w->failed != 0) {
    w->dropped++; /* said with the error, and counted at the end */
    return;
  }
  say_dropped(w);
  /* While a count is pending, every line waits behind it: none is written
   * out of its place. */
  if (w->dropped > 0 || !has_room(w, n) || !append(&w->queue, json, n)) {
    drop(w);
    return;
  }
  pump(w);
}

static void fail(cli_jsonl *w, int err) {
  if (w->failed != 0)
    return;
  w->failed = err;
  cli_error("%s: %s: %s", w->option, w->path, uv_strerror(err));
  w->dropped += w->queue.lines + w->busy.lines;
  w->queue.len = w->queue.lines = 0;
  w->busy.len = w->busy.lines = w->busy_off = 0;
}

static void on_handle_closed(uv_handle_t *h) {
  cli_jsonl *w = h->data;
  if (--w->handles > 0)
    return;
  free(w->queue.p);
  free(w->busy.p);
  free(w);
}

/* Closes the handles (pump() calls it once nothing is in flight); the last
 * close frees w. */
static void shut(cli_jsonl *w) {
  if (w->closed)
    return;
  w->closed = true;
  if (w->failed != 0 && w->dropped > 0)
    cli_error("%s: %s: %llu lines were not written", w->option, w->path,
              (unsigned long long)w->dropped);
  uv_close((uv_handle_t *)&w->flush, on_handle_closed);
  if (w->stream) {
    uv_close((uv_handle_t *)&w->pipe, on_handle_closed);
  } else {
    close(w->fd);
    w->fd = -1;
  }
}

static void wrote(cli_jsonl *w, int status, size_t n) {
  w->writing = false;
  if (status < 0) {
    fail(w, status);
  } else {
    w->busy_off += n;
    if (w->busy_off == w->busy.len)
      w->busy.len = w->busy.lines = w->busy_off = 0;
    say_dropped(w);
  }
  pump(w);
}

static void on_stream_written(uv_write_t *req, int status) {
  cli_jsonl *w = req->data;
  if (w->closed)
    return; /* cancelled by shut(): what it dropped was counted */
  /* uv_write writes everything, or fails. */
  wrote(w, status, w->busy.len - w->busy_off);
}

static void on_fs_written(uv_fs_t *req) {
  cli_jsonl *w = req->data;
  ssize_t r = req->result;
  uv_fs_req_cleanup(req);
  /* write(2) of a non-empty buffer that returns 0 would loop forever. */
  wrote(w, r < 0 ? (int)r : r == 0 ? UV_EIO : 0, r > 0 ? (size_t)r : 0);
}

/* Starts the next write: the rest of the busy lines, else the queue. */
static void pump(cli_jsonl *w) {
  if (w->writing || w->closed)
    return;
  if (w->busy.len == 0 && w->queue.len > 0) {
    jl_buf t = w->busy; /* the queue is written; the old buffer queues */
    w->busy = w->queue;
    w->queue = t;
    w->queue.len = w->queue.lines = 0;
    w->busy_off = 0;
  }
  if (w->busy.len == 0) {
    if (w->closing)
      shut(w);
    return;
  }
  uv_buf_t b =
      uv_buf_init(w->busy.p + w->busy_off, (unsigned)(w->busy.len - w->busy_off));
  int r = w->stream ? uv_write(&w->wr, (uv_stream_t *)&w->pipe, &b, 1, on_stream_written)
                    : uv_fs_write(w->loop, &w->fs, w->fd, &b, 1, -1, on_fs_written);
  if (r < 0) {
    fail(w, r);
    pump(w);
    return;
  }
  w->writing = true;
}

int cli_jsonl_new(uv_loop_t *loop, const char *option, const char *path, int fd,
                  cli_jsonl **out) {
  cli_jsonl *w = calloc(1, sizeof *w);
  int r;
  if (w == NULL) {
    close(fd);
    cli_error("%s: out of memory", option);
    return -1;
  }
  *w = (cli_jsonl){.loop = loop, .option = option, .path = path, .fd = fd};
  w->wr.data = w->fs.data = w->flush.data = w->pipe.data = w;
  uv_timer_init(loop, &w->flush);
  w->handles = 1;
  /* Pipes, FIFOs and terminals can stall; outputs.c opened them non-blocking
   * and as our own open file, so the pipe may keep them so. */
  uv_handle_type t = uv_guess_handle(fd);
  if (t == UV_NAMED_PIPE || t == UV_TTY) {
    uv_pipe_init(loop, &w->pipe, 0);
    w->pipe.data = w;
    w->handles++;
    w->stream = true;
    if ((r = uv_pipe_open(&w->pipe, fd)) < 0) {
      cli_error("%s: %s: %s", option, path, uv_strerror(r));
      close(fd);
      w->fd = -1;
      w->closed = true;
      uv_close((uv_handle_t *)&w->pipe, on_handle_closed);
      uv_close((uv_handle_t *)&w->flush, on_handle_closed);
      return -1;
    }
  }
  *out = w;
  return 0;
}

/* The lines that bytes [from, to) of b stand for, its last line complete:
 * 1 each, N for a {"dropped":N} line; a line cut at from counts, as its
 * reader never sees it whole. */
static uint64_t lines_in(const jl_buf *b, size_t from) {
  uint64_t n = 0;
  size_t start = from;
  while (start > 0 && b->p[start - 1] != '\n')
    start--;
  for (size_t i = start; i < b->len;) {
    const char *nl = memchr(b->p + i, '\n', b->len - i);
    size_t end = nl != NULL ? (size_t)(nl - b->p) : b->len;
    if (strncmp(b->p + i, NOTE_PREFIX, sizeof NOTE_PREFIX - 1) == 0)
      n += strtoull(b->p + i + sizeof NOTE_PREFIX - 1, NULL, 10);
    else
      n++;
    i = end + 1;
  }
  return n;
}

static void on_flush_over(uv_timer_t *t) {
  cli_jsonl *w = t->data;
  /* uv_write may have written part of the busy bytes: only the rest counts. */
  size_t left = w->stream ? uv_stream_get_write_queue_size((uv_stream_t *)&w->pipe)
                          : w->busy.len - w->busy_off;
  uint64_t lost = w->dropped + lines_in(&w->queue, 0);
  if (w->busy.len > 0 && left > 0)
    lost += lines_in(&w->busy, w->busy.len - left);
  if (w->failed == 0)
    cli_error("%s: %s: the reader took nothing for %u ms at the end; %llu lines were "
              "not written",
              w->option, w->path, CLI_JSONL_FLUSH_MS, (unsigned long long)lost);
  w->queue.len = w->queue.lines = w->dropped = 0;
  if (w->stream || !w->writing)
    shut(w); /* a uv_write in flight is cancelled */
  else
    w->busy.len = w->busy_off = w->busy.lines = 0; /* shut() once it returns */
}

void cli_jsonl_close(cli_jsonl *w) {
  if (w == NULL || w->closing)
    return;
  w->closing = true;
  say_dropped(w);
  uv_timer_start(&w->flush, on_flush_over, CLI_JSONL_FLUSH_MS, 0);
  pump(w);
}
