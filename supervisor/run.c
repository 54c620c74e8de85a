/* SPDX-License-Identifier: MIT */
/* run.c - sb_run: one command to its end, on a loop of its own, with what
 * it wrote. The simple case of the library, made of its parts: a server
 * (with a bridge only when the caller answers stub calls), one sb_spawn, a
 * capture into bounded buffers, and the loop run until all of it is
 * closed. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct sb__run {
  sb_server *server;
  sb_run_result *result;
  size_t max;    /* bytes kept per stream */
  size_t cap[2]; /* allocated for out, err (the NUL included) */
} sb__run;

/* Appends what fits under the bound; the rest is dropped and said so. The
 * buffer grows by doubling, so a long output costs few copies. */
static void keep(sb__run *run, char **data, size_t *len, size_t *cap, bool *truncated,
                 const char *buf, size_t n) {
  size_t take = n < run->max - *len ? n : run->max - *len;

  if (take < n)
    *truncated = true;
  if (take == 0)
    return;
  if (*len + take + 1 > *cap) {
    size_t want = *cap * 2 > *len + take + 1 ? *cap * 2 : *len + take + 1;
    char *p;
    if (want > run->max + 1)
      want = run->max + 1;
    p = realloc(*data, want);
    if (p == NULL) {
      *truncated = true; /* out of memory: the bytes are lost, and said so */
      return;
    }
    *data = p;
    *cap = want;
  }
  memcpy(*data + *len, buf, take);
  *len += take;
  (*data)[*len] = '\0';
}

static void on_output(sb_child *child, int stream, const char *buf, size_t len,
                      uint64_t ts_ns) {
  sb__run *run = sb_child_data(child);
  sb_run_result *res = run->result;
  (void)ts_ns;
  if (stream == 1)
    keep(run, &res->out, &res->out_len, &run->cap[0], &res->out_truncated, buf, len);
  else
    keep(run, &res->err, &res->err_len, &run->cap[1], &res->err_truncated, buf, len);
}

static void on_exit_cb(sb_child *child, int64_t status, int signum) {
  sb__run *run = sb_child_data(child);
  run->result->status = status;
  run->result->signal = signum;
  run->result->timed_out = child->timed_out;
  run->result->restarts = child->restarts;
  /* Done: uv_run returns once the server has closed. */
  sb_server_close(run->server, NULL);
}

/* Empty strings to grow, so a result with capture never holds NULL. */
static int capture_start(sb__run *run) {
  run->result->out = calloc(1, 1);
  run->result->err = calloc(1, 1);
  run->cap[0] = run->cap[1] = 1;
  return run->result->out != NULL && run->result->err != NULL ? 0 : -ENOMEM;
}

static int start(sb__run *run, uv_loop_t *loop, char *const *argv,
                 const sb_run_options *opts) {
  sb_server_options so = opts->server;
  sb_spawn_options sp = opts->spawn;
  sb_child *child;
  int r;

  if (so.on_connect == NULL)
    so.transport = SB_TRANSPORT_NONE;
  r = sb_server_new(loop, &so, &run->server);
  if (r < 0)
    return r;
  sp.file = argv[0];
  sp.args = argv;
  sp.on_exit = on_exit_cb;
  sp.on_output = NULL;
  sp.data = run;
  if (opts->capture) {
    sp.stdio[1] = sp.stdio[2] = (sb_stdio){.mode = SB_STDIO_CAPTURE};
    sp.on_output = on_output;
    r = capture_start(run);
  }
  if (r == 0)
    r = sb_spawn(run->server, &sp, &child);
  if (r < 0)
    sb_server_close(run->server, NULL);
  return r;
}

int sb_run(char *const *argv, const sb_run_options *opts, sb_run_result *result) {
  static const sb_run_options defaults;
  sb__run run = {0};
  uv_loop_t loop;
  int r, rc;

  if (result != NULL)
    memset(result, 0, sizeof *result);
  if (argv == NULL || argv[0] == NULL || result == NULL)
    return -EINVAL;
  if (opts == NULL)
    opts = &defaults;
  run.result = result;
  run.max = opts->max_output != 0 ? opts->max_output : SB_RUN_MAX_OUTPUT;

  r = uv_loop_init(&loop);
  if (r < 0)
    return r;
  r = start(&run, &loop, argv, opts);
  /* Also after a failed start: what was opened closes on the loop. */
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop);
  if (r == 0 && rc != 0)
    r = rc; /* a handle of the caller's (sb_server_loop) left open */
  if (r < 0)
    sb_run_result_free(result);
  return r;
}

void sb_run_result_free(sb_run_result *result) {
  if (result == NULL)
    return;
  free(result->out);
  free(result->err);
  result->out = result->err = NULL;
}
