/* SPDX-License-Identifier: MIT */
/* serve_call.c - the stub calls of `socketbridge serve` (docs/control.md
 * section 6): each announced to the controller, held until its first answer
 * (so an exec or run gets the stdin whole), its stdin streamed up, the
 * controller's writes and dispositions applied, with flow control both
 * ways. A call lives from the stub's connect to its on_close. */
#include "serve.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

typedef struct srv_call {
  srv_obj obj;
  serve *s;
  sb_conn *conn;
  srv_link all;     /* in s->calls */
  srv_link held;    /* in s->held while held */
  uint64_t held_at; /* uv_now() when held */
  bool announced;   /* `call` was sent: `call_end` will be */
  bool is_held;
  bool decided;      /* exit, respond, delegate, exec or run was given */
  bool no_writes;    /* later stdout/stderr data is dropped */
  bool ctl_paused;   /* the controller paused its stdin */
  bool write_paused; /* write_pause sent */
  bool prog_end[2];  /* the program's stdout, stderr ended (sent) */
  size_t queued;     /* controller bytes queued for this stub */
} srv_call;

/* A copy of controller bytes on their way to a stub. */
typedef struct srv_write {
  srv_call *call;
  size_t len;
  char buf[];
} srv_write;

static srv_call *call_of(const sb_conn *conn) {
  return sb_conn_data(conn);
}

uint64_t srv_call_id(const sb_conn *conn) {
  srv_call *c = conn != NULL ? call_of(conn) : NULL;
  return c != NULL ? c->obj.id : 0;
}

static void msg_for(sb_jw *o, const srv_call *c, const char *type) {
  srv_open(o, type);
  sb_jw_add_int(o, "call", (int64_t)c->obj.id);
}

static void add_status(sb_jw *o, int64_t code, int signum) {
  const char *name = signum > 0 ? sb_signal_name(signum) : NULL;
  if (signum > 0 && name != NULL)
    sb_jw_add_bytes(o, "signal", name);
  else
    sb_jw_add_int(o, "code", signum > 0 ? 128 + signum : code);
}

/* ---- opening a held call -------------------------------------------------- */

static void unhold(srv_call *c) {
  if (!c->is_held)
    return;
  c->is_held = false;
  srv_list_remove(&c->held);
}

static void open_call(srv_call *c) {
  unhold(c);
  sb_conn_open(c->conn);
}

static srv_call *held_head(serve *s) {
  if (s->held.next == &s->held)
    return NULL;
  return (srv_call *)(void *)((char *)s->held.next - offsetof(srv_call, held));
}

/* Opens the calls held SRV_HOLD_MS, then waits for the next oldest. */
static void on_hold_timer(uv_timer_t *t) {
  serve *s = t->data;
  uint64_t now = uv_now(&s->loop);
  srv_call *c;
  while ((c = held_head(s)) != NULL && now - c->held_at >= SRV_HOLD_MS)
    open_call(c);
  if (c != NULL)
    uv_timer_start(&s->hold_timer, on_hold_timer, SRV_HOLD_MS - (now - c->held_at), 0);
}

void srv_calls_init(serve *s) {
  srv_list_init(&s->calls);
  srv_list_init(&s->held);
  uv_timer_init(&s->loop, &s->hold_timer);
  s->hold_timer.data = s;
}

static void hold(srv_call *c) {
  serve *s = c->s;
  if (sb_conn_hold(c->conn) < 0)
    return;
  c->is_held = true;
  c->held_at = uv_now(&s->loop);
  srv_list_push(&s->held, &c->held);
  if (!uv_is_active((uv_handle_t *)&s->hold_timer))
    uv_timer_start(&s->hold_timer, on_hold_timer, SRV_HOLD_MS, 0);
}

/* ---- the stub's side: stdin, program output, the end ------------------------ */

static void on_stdin(sb_conn *conn, const char *buf, size_t len) {
  srv_call *c = call_of(conn);
  serve *s = c->s;
  ctl_chan_send_data(s->chan, CTL_STDIN, c->obj.id, buf, len);
  if (ctl_chan_congested(s->chan))
    srv_calls_pause_all(s, true);
}

static void on_program_output(sb_conn *conn, int stream, const char *buf, size_t len) {
  srv_call *c = call_of(conn);
  if (c->prog_end[stream - 1])
    return;
  c->prog_end[stream - 1] = len == 0;
  ctl_chan_send_data(c->s->chan, stream == 1 ? CTL_STDOUT : CTL_STDERR, c->obj.id, buf,
                     len);
  if (ctl_chan_congested(c->s->chan))
    srv_calls_pause_all(c->s, true);
}

static void on_program_exit(sb_conn *conn, int64_t code, int signum) {
  srv_call *c = call_of(conn);
  sb_jw o;
  msg_for(&o, c, "program_exit");
  /* Every byte came before: the streams end here if the relay did not say
   * so (delegate). */
  for (int i = 0; i < 2; i++)
    if (!c->prog_end[i]) {
      c->prog_end[i] = true;
      ctl_chan_send_data(c->s->chan, i == 0 ? CTL_STDOUT : CTL_STDERR, c->obj.id, "", 0);
    }
  add_status(&o, code, signum);
  srv_send(c->s, &o);
}

static void on_close(sb_conn *conn, sb_close_reason reason, int err) {
  srv_call *c = call_of(conn);
  serve *s = c->s;
  int code, signum;
  (void)err;

  if (c->announced) {
    sb_jw o;
    msg_for(&o, c, "call_end");
    sb_jw_add_bytes(&o, "reason", sb_close_reason_name(reason));
    if (sb_conn_told(conn, &code, &signum))
      add_status(&o, code, signum);
    srv_send(s, &o);
  }
  unhold(c);
  srv_list_remove(&c->all);
  srv_obj_remove(s, &c->obj);
  free(c);
}

static const sb_conn_callbacks call_cbs = {
    .on_stdin = on_stdin,
    .on_close = on_close,
    .on_program_output = on_program_output,
    .on_program_exit = on_program_exit,
};

/* ---- a call arrives ---------------------------------------------------------- */

/* At STUB_CONNECT, before on_connect: the call exists, so the event can name
 * it. */
void srv_call_on_stub_connect(serve *s, sb_conn *conn) {
  srv_call *c = calloc(1, sizeof *c);
  if (c == NULL || srv_obj_add(s, &c->obj, SRV_CALL) < 0) {
    free(c);
    sb_conn_close(conn); /* no memory: the stub exits 125 */
    return;
  }
  c->s = s;
  c->conn = conn;
  srv_list_push(&s->calls, &c->all);
  sb_conn_set_callbacks(conn, &call_cbs, c);
  if (s->stubs_paused)
    sb_conn_pause(conn);
}

static void announce(srv_call *c) {
  const sb_call *call = sb_conn_call(c->conn);
  uint64_t proc = 0, ticket = srv_ticket_id(sb_conn_ticket(c->conn), &proc);
  sb_jw o;

  msg_for(&o, c, "call");
  sb_jw_add_bytes_v(&o, "argv", call->argv, call->argc);
  sb_jw_add_bytes_v(&o, "env", call->env, call->envc);
  sb_jw_add_bytes(&o, "cwd", call->cwd); /* bytes; NULL: null */
  sb_jw_add_bytes(&o, "exe", call->exe);
  sb_jw_add_int(&o, "pid", call->pid);
  sb_jw_add_int(&o, "ppid", call->ppid);
  sb_jw_key(&o, "tty");
  sb_jw_open(&o, '{');
  sb_jw_add_bool(&o, "stdin", (call->tty & SB_TTY_STDIN) != 0);
  sb_jw_add_bool(&o, "stdout", (call->tty & SB_TTY_STDOUT) != 0);
  sb_jw_add_bool(&o, "stderr", (call->tty & SB_TTY_STDERR) != 0);
  sb_jw_close(&o, '}');
  srv_add_id(&o, "ticket", ticket);
  srv_add_id(&o, "proc", proc);
  c->announced = true;
  srv_send(c->s, &o);
}

/* Whether argv[0]'s basename is a shim routed "exec"; *name is it. */
static bool routed_exec(const serve *s, const sb_call *call, const char **name) {
  const char *base;
  if (call->argc == 0)
    return false;
  base = strrchr(call->argv[0], '/');
  base = base != NULL ? base + 1 : call->argv[0];
  for (size_t i = 0; i < s->nshims; i++)
    if (s->shim_exec[i] && strcmp(s->shim_names[i], base) == 0) {
      *name = base;
      return true;
    }
  return false;
}

void srv_call_on_connect(serve *s, sb_conn *conn) {
  srv_call *c = call_of(conn);
  const sb_call *call = sb_conn_call(conn);
  const char *name;

  if (c == NULL)
    return;
  if (routed_exec(s, call, &name)) {
    /* Left alone: the real program, found past the shims. */
    char **argv = malloc((call->argc + 1) * sizeof *argv);
    if (argv == NULL) {
      sb_conn_close(conn);
      return;
    }
    memcpy(argv, call->argv, (call->argc + 1) * sizeof *argv);
    argv[0] = (char *)name;
    if (sb_conn_exec(conn, &(sb_program){.argv = argv}) < 0)
      sb_conn_exit(conn, 127);
    free(argv);
    return;
  }
  hold(c);
  announce(c);
}

/* ---- flow control -------------------------------------------------------------- */

void srv_calls_pause_all(serve *s, bool paused) {
  if (s->stubs_paused == paused)
    return;
  s->stubs_paused = paused;
  for (srv_link *l = s->calls.next; l != &s->calls; l = l->next) {
    srv_call *c = (srv_call *)(void *)((char *)l - offsetof(srv_call, all));
    if (paused)
      sb_conn_pause(c->conn);
    else if (!c->ctl_paused)
      sb_conn_resume(c->conn);
  }
}

static void on_written(sb_conn *conn, int status, void *data) {
  srv_write *w = data;
  srv_call *c = w->call;
  serve *s = c->s;
  (void)conn;
  (void)status;

  c->queued -= w->len;
  s->stub_queued -= w->len;
  free(w);
  if (c->write_paused && c->queued <= SRV_WRITE_LOW) {
    c->write_paused = false;
    sb_jw o;
    msg_for(&o, c, "write_resume");
    srv_send(s, &o);
  }
  if (s->chan_paused && s->stub_queued <= SRV_STUBS_MAX / 2) {
    s->chan_paused = false;
    ctl_chan_resume(s->chan);
  }
}

static void write_to_stub(srv_call *c, int stream, const char *buf, size_t len) {
  serve *s = c->s;
  srv_write *w = malloc(sizeof *w + len);
  if (w == NULL) {
    sb_conn_close(c->conn);
    return;
  }
  w->call = c;
  w->len = len;
  memcpy(w->buf, buf, len);
  if (sb_conn_write(c->conn, stream, w->buf, len, on_written, w) < 0) {
    free(w);
    return; /* the stream was closed, or the call is ending: dropped */
  }
  c->queued += len;
  s->stub_queued += len;
  if (!c->write_paused && c->queued > SRV_WRITE_HIGH) {
    c->write_paused = true;
    sb_jw o;
    msg_for(&o, c, "write_pause");
    srv_send(s, &o);
  }
  if (!s->chan_paused && s->stub_queued > SRV_STUBS_MAX) {
    s->chan_paused = true;
    ctl_chan_pause(s->chan);
  }
}

void srv_call_data(serve *s, ctl_kind kind, uint64_t id, const char *buf, size_t len,
                   bool end) {
  srv_obj *obj = srv_obj_find(s, id, SRV_CALL);
  srv_call *c = (srv_call *)obj;
  int stream = kind == CTL_STDOUT ? 1 : 2;

  if (c == NULL) {
    if (id == 0 || id >= s->next_id) {
      sb_jw o;
      srv_open(&o, "error");
      srv_add_id(&o, "id", 0);
      sb_jw_add_bytes(&o, "error", "no_such_call");
      sb_jw_add_bytes(&o, "message", "data for a call that was never issued");
      srv_send(s, &o);
    }
    return; /* a call that ended: its end raced with these bytes */
  }
  if (c->no_writes)
    return;
  if (c->is_held)
    open_call(c);
  if (end)
    sb_conn_close_stream(c->conn, stream);
  else
    write_to_stub(c, stream, buf, len);
}

/* ---- requests about a call ------------------------------------------------------ */

/* Bytes for respond's stdout/stderr: a string, or {"base64"} (may hold NULs). */
static int get_blob(const cJSON *req, const char *name, char **out, size_t *len,
                    srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(v, "base64");
  ptrdiff_t n;

  *out = NULL;
  *len = 0;
  if (v == NULL)
    return 0;
  if (cJSON_IsString(v)) {
    *len = strlen(v->valuestring);
    *out = malloc(*len + 1);
    if (*out != NULL)
      memcpy(*out, v->valuestring, *len);
    return *out != NULL ? 0 : srv_fail(err, "failed", "out of memory");
  }
  if (!cJSON_IsString(b))
    return srv_fail(err, "bad_request", "%s: expected a string or {\"base64\": ...}",
                    name);
  *out = malloc(strlen(b->valuestring) / 4 * 3 + 1);
  if (*out == NULL)
    return srv_fail(err, "failed", "out of memory");
  n = sb__b64_decode(b->valuestring, strlen(b->valuestring), (uint8_t *)*out);
  if (n < 0) {
    free(*out);
    *out = NULL;
    return srv_fail(err, "bad_request", "%s.base64: not padded RFC 4648 base64", name);
  }
  *len = (size_t)n;
  return 0;
}

/* The end a request asks for: code (default def_code) or signal. */
static int get_end(const cJSON *req, int *code, int *signum, srv_err *err) {
  uint64_t v = (uint64_t)*code;
  *signum = 0;
  if (cJSON_GetObjectItemCaseSensitive(req, "signal") != NULL)
    return srv_get_signal(req, "signal", signum, err);
  if (srv_get_u64(req, "code", true, 255, &v, err) < 0)
    return -1;
  *code = (int)v;
  return 0;
}

typedef struct srv_prog {
  sb_program p;
  char **argv, **set, **unset;
  char *path, *cwd;
} srv_prog;

static void prog_free(srv_prog *g) {
  sb__vec_free(g->argv);
  sb__vec_free(g->set);
  sb__vec_free(g->unset);
  free(g->path);
  free(g->cwd);
}

static int get_prog(const cJSON *req, srv_prog *g, srv_err *err) {
  memset(g, 0, sizeof *g);
  if (srv_get_strv(req, "argv", false, true, &g->argv, err) < 0 ||
      srv_get_bytes(req, "path", true, &g->path, err) < 0 ||
      srv_get_bytes(req, "cwd", true, &g->cwd, err) < 0 ||
      srv_get_strv(req, "env", true, false, &g->set, err) < 0 ||
      srv_get_strv(req, "unset", true, false, &g->unset, err) < 0 ||
      srv_get_bool(req, "tee", &g->p.tee, err) < 0)
    return -1;
  for (size_t i = 0; g->set != NULL && g->set[i] != NULL; i++)
    if (strchr(g->set[i], '=') == NULL || g->set[i][0] == '=')
      return srv_fail(err, "bad_request", "env[%zu]: expected NAME=VALUE", i);
  if (g->argv[0][0] == '\0')
    return srv_fail(err, "bad_request", "argv[0]: empty");
  g->p.argv = g->argv;
  g->p.path = g->path;
  g->p.cwd = g->cwd;
  g->p.set = g->set;
  g->p.unset = g->unset;
  return 0;
}

/* The library's answer to a disposition, as the request's. */
static int dispo_result(srv_call *c, int r, const char *what, srv_err *err) {
  if (r == -EALREADY)
    return srv_fail(err, "already", "call %llu was already answered",
                    (unsigned long long)c->obj.id);
  if (r == -ENOTCONN)
    return srv_fail(err, "no_such_call", "call %llu is ending",
                    (unsigned long long)c->obj.id);
  if (r < 0)
    return srv_failed(err, r, what);
  return 0;
}

static int do_exit(srv_call *c, const cJSON *req, srv_err *err) {
  int code = 0, signum = 0, r;
  if (cJSON_GetObjectItemCaseSensitive(req, "code") == NULL &&
      cJSON_GetObjectItemCaseSensitive(req, "signal") == NULL)
    return srv_fail(err, "bad_request", "exit: code or signal required");
  /* A delayed respond has not told the stub yet: the library would take an
   * exit now. The first answer stands. */
  if (c->decided)
    return dispo_result(c, -EALREADY, "exit", err);
  if (get_end(req, &code, &signum, err) < 0)
    return -1;
  unhold(c);
  r = signum > 0 ? sb_conn_kill(c->conn, signum) : sb_conn_exit(c->conn, code);
  if (r == 0)
    c->decided = c->no_writes = true;
  return dispo_result(c, r, "exit", err);
}

static int do_respond(srv_call *c, const cJSON *req, srv_err *err) {
  sb_response resp = {0};
  char *out = NULL, *errb = NULL;
  uint64_t delay = 0;
  int r = -1;

  resp.code = 0;
  if (get_blob(req, "stdout", &out, &resp.out_len, err) < 0 ||
      get_blob(req, "stderr", &errb, &resp.err_len, err) < 0 ||
      get_end(req, &resp.code, &resp.signum, err) < 0 ||
      srv_get_u64(req, "delay_ms", true, SRV_ID_MAX, &delay, err) < 0)
    goto out;
  resp.out = out;
  resp.err = errb;
  resp.delay_ms = delay;
  unhold(c);
  r = sb_conn_respond(c->conn, &resp);
  if (r == 0) {
    c->decided = c->no_writes = true;
    sb_conn_open(c->conn); /* a delayed answer: stdin flows meanwhile */
  }
  r = dispo_result(c, r, "respond", err);
out:
  free(out);
  free(errb);
  return r;
}

static int do_program(srv_call *c, const char *type, const cJSON *req, srv_err *err) {
  srv_prog g;
  int r = -1;

  if (get_prog(req, &g, err) == 0) {
    if (strcmp(type, "exec") == 0)
      r = sb_conn_exec(c->conn, &g.p);
    else if (strcmp(type, "run") == 0)
      r = sb_conn_run(c->conn, &g.p);
    else if ((r = sb_conn_delegate(c->conn, &g.p)) == 0)
      sb_conn_open(c->conn); /* the stub's stdin feeds the program */
    if (r == 0) {
      c->decided = true;
      c->no_writes = strcmp(type, "delegate") != 0;
      unhold(c);
    }
    r = dispo_result(c, r, type, err);
  }
  prog_free(&g);
  return r;
}

static const char *const call_requests[] = {"open",   "exit", "respond", "delegate",
                                            "exec",   "run",  "close",   "pause",
                                            "resume", NULL};

bool srv_call_request_known(const char *type) {
  for (size_t i = 0; call_requests[i] != NULL; i++)
    if (strcmp(call_requests[i], type) == 0)
      return true;
  return false;
}

int srv_call_request(serve *s, const char *type, const cJSON *req, sb_jw *ok,
                     srv_err *err) {
  uint64_t id = 0;
  srv_call *c;
  (void)ok;

  if (srv_get_u64(req, "call", false, SRV_ID_MAX, &id, err) < 0)
    return -1;
  c = (srv_call *)srv_obj_find(s, id, SRV_CALL);
  if (c == NULL || !c->announced)
    return srv_fail(err, "no_such_call", "no open call %llu", (unsigned long long)id);
  if (strcmp(type, "open") == 0) {
    open_call(c);
  } else if (strcmp(type, "exit") == 0) {
    return do_exit(c, req, err);
  } else if (strcmp(type, "respond") == 0) {
    return do_respond(c, req, err);
  } else if (strcmp(type, "close") == 0) {
    sb_conn_close(c->conn);
  } else if (strcmp(type, "pause") == 0) {
    c->ctl_paused = true;
    sb_conn_pause(c->conn);
  } else if (strcmp(type, "resume") == 0) {
    c->ctl_paused = false;
    if (!s->stubs_paused)
      sb_conn_resume(c->conn);
  } else {
    return do_program(c, type, req, err);
  }
  return 0;
}
