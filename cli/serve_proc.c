/* SPDX-License-Identifier: MIT */
/* serve_proc.c - what `socketbridge serve` makes for its controller:
 * tickets (the env of a process it starts itself), shims (which names go to
 * it and which are left alone), and procs (supervised commands, their
 * captured output and their end). docs/control.md sections 7 and 8. */
#include "serve.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "proto.h"

/* ---- tickets ----------------------------------------------------------------- */

typedef struct srv_ticket {
  srv_obj obj;
  sb_ticket *ticket;
  bool owned;    /* made by `ticket` (else a proc's, freed with it) */
  uint64_t proc; /* the proc it belongs to, or 0 */
} srv_ticket;

uint64_t srv_ticket_id(const sb_ticket *t, uint64_t *proc) {
  const srv_ticket *st = t != NULL ? sb_ticket_data(t) : NULL;
  *proc = st != NULL ? st->proc : 0;
  return st != NULL ? st->obj.id : 0;
}

static srv_ticket *ticket_track(serve *s, sb_ticket *t, bool owned, uint64_t proc) {
  srv_ticket *st = calloc(1, sizeof *st);
  if (st == NULL || srv_obj_add(s, &st->obj, SRV_TICKET) < 0) {
    free(st);
    return NULL;
  }
  st->ticket = t;
  st->owned = owned;
  st->proc = proc;
  sb_ticket_set_data(t, st);
  return st;
}

static void ticket_forget(serve *s, srv_ticket *st) {
  srv_obj_remove(s, &st->obj);
  free(st);
}

/* PATH and SOCKETBRIDGE_SHIMS with the shim directory first: path and
 * shims are the values to extend (NULL: none). 0 or -ENOMEM. */
static int shim_vars(const serve *s, const char *path, const char *shims, char *out[2]) {
  out[0] = out[1] = NULL;
  if (asprintf(&out[0], "PATH=%s%s%s", s->shim_dir, path != NULL ? ":" : "",
               path != NULL ? path : "") < 0 ||
      asprintf(&out[1], SB_ENV_SHIMS "=%s%s%s", s->shim_dir, shims != NULL ? ":" : "",
               shims != NULL ? shims : "") < 0) {
    free(out[0]);
    out[0] = NULL;
    return -ENOMEM;
  }
  return 0;
}

/* ticket env (or none), then the shim variables when there is a directory. */
static void add_env(sb_jw *w, const serve *s, char *const *base) {
  char *vars[2];
  sb_jw_key(w, "env");
  sb_jw_open(w, '[');
  for (size_t i = 0; base != NULL && base[i] != NULL; i++)
    sb_jw_bytes(w, base[i]);
  if (s->shim_dir != NULL &&
      shim_vars(s, getenv("PATH"), getenv(SB_ENV_SHIMS), vars) == 0) {
    sb_jw_bytes(w, vars[0]);
    sb_jw_bytes(w, vars[1]);
    free(vars[0]);
    free(vars[1]);
  }
  sb_jw_close(w, ']');
}

int srv_req_ticket(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  sb_ticket *t;
  srv_ticket *st;
  int r = sb_ticket_new(s->server, &t);
  (void)req;
  if (r < 0)
    return srv_failed(err, r, "ticket");
  if ((st = ticket_track(s, t, true, 0)) == NULL) {
    sb_ticket_free(t);
    return srv_fail(err, "failed", "out of memory");
  }
  sb_jw_add_int(ok, "ticket", (int64_t)st->obj.id);
  add_env(ok, s, sb_ticket_env(t));
  return 0;
}

int srv_req_ticket_free(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  uint64_t id = 0;
  srv_ticket *st;
  (void)ok;
  if (srv_get_u64(req, "ticket", false, SRV_ID_MAX, &id, err) < 0)
    return -1;
  st = (srv_ticket *)srv_obj_find(s, id, SRV_TICKET);
  if (st == NULL || !st->owned)
    return srv_fail(err, "no_such_ticket", "no ticket %llu of the controller's",
                    (unsigned long long)id);
  sb_ticket_free(st->ticket);
  ticket_forget(s, st);
  return 0;
}

/* ---- shims ------------------------------------------------------------------- */

static bool shim_name_ok(const char *n) {
  return n[0] != '\0' && strchr(n, '/') == NULL && strcmp(n, ".") != 0 &&
         strcmp(n, "..") != 0;
}

/* Adds name (or changes its route); 0 or -ENOMEM. */
static int shim_route(serve *s, const char *name, bool exec) {
  size_t i;
  for (i = 0; i < s->nshims; i++)
    if (strcmp(s->shim_names[i], name) == 0) {
      s->shim_exec[i] = exec;
      return 0;
    }
  char **names = realloc(s->shim_names, (s->nshims + 2) * sizeof *names);
  if (names == NULL)
    return -ENOMEM;
  s->shim_names = names;
  bool *ex = realloc(s->shim_exec, (s->nshims + 1) * sizeof *ex);
  if (ex == NULL)
    return -ENOMEM;
  s->shim_exec = ex;
  if ((names[s->nshims] = strdup(name)) == NULL)
    return -ENOMEM;
  ex[s->nshims++] = exec;
  names[s->nshims] = NULL;
  return 0;
}

int srv_req_shim(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  const cJSON *route = cJSON_GetObjectItemCaseSensitive(req, "route");
  const char *stub = sb_server_stub_path(s->server);
  char **names = NULL;
  bool exec = false;
  int r = -1;

  if (srv_get_strv(req, "names", false, true, &names, err) < 0)
    return -1;
  if (route != NULL &&
      (!cJSON_IsString(route) || (strcmp(route->valuestring, "exec") != 0 &&
                                  strcmp(route->valuestring, "controller") != 0))) {
    srv_fail(err, "bad_request", "route: expected \"controller\" or \"exec\"");
    goto out;
  }
  exec = route != NULL && strcmp(route->valuestring, "exec") == 0;
  for (size_t i = 0; names[i] != NULL; i++)
    if (!shim_name_ok(names[i])) {
      srv_fail(err, "bad_request", "names[%zu]: not a file name", i);
      goto out;
    }
  if (s->shim_dir == NULL) {
    /* The shims' own ticket, named in the directory (shim.c), so they reach
     * this serve even under a nested supervisor; the server frees it. */
    sb_ticket *t;
    int r2 = sb_ticket_new(s->server, &t);
    if (r2 < 0) {
      srv_failed(err, r2, "shim");
      goto out;
    }
    ticket_track(s, t, false, 0);
    s->shim_dir = cli_shim_dir_new(names, stub, t);
    if (s->shim_dir == NULL) {
      srv_fail(err, "failed", "cannot create the shim directory (see serve's stderr)");
      goto out;
    }
  } else if (cli_shim_make(s->shim_dir, names, stub) < 0) {
    srv_fail(err, "failed", "cannot create the shims (see serve's stderr)");
    goto out;
  }
  for (size_t i = 0; names[i] != NULL; i++)
    if (shim_route(s, names[i], exec) < 0) {
      srv_fail(err, "failed", "out of memory");
      goto out;
    }
  sb_jw_add_bytes(ok, "dir", s->shim_dir);
  add_env(ok, s, NULL);
  r = 0;
out:
  sb__vec_free(names);
  return r;
}

/* ---- procs ------------------------------------------------------------------- */

typedef struct srv_proc {
  srv_obj obj;
  serve *s;
  sb_child *child;
  srv_ticket *ticket;
  srv_link link;   /* in s->procs */
  bool capture[2]; /* stdout, stderr captured: their ends are sent */
  bool timed_out;
} srv_proc;

typedef struct spawn_req {
  char **argv, **env, *cwd, *paths[3];
  char *shim_vars[2];
  char **full_env; /* env plus the shim variables, borrowed strings */
  char *data;      /* stdin {"data"} */
  size_t data_len;
} spawn_req;

static void spawn_req_free(spawn_req *q) {
  sb__vec_free(q->argv);
  sb__vec_free(q->env);
  free(q->cwd);
  for (int i = 0; i < 3; i++)
    free(q->paths[i]);
  free(q->shim_vars[0]);
  free(q->shim_vars[1]);
  free(q->full_env);
  free(q->data);
}

static void on_proc_output(sb_child *child, int stream, const char *buf, size_t len,
                           uint64_t ts_ns) {
  srv_proc *p = sb_child_data(child);
  (void)ts_ns;
  if (len > 0)
    ctl_chan_send_data(p->s->chan, stream == 1 ? CTL_PROC_STDOUT : CTL_PROC_STDERR,
                       p->obj.id, buf, len);
}

static void on_proc_exit(sb_child *child, int64_t status, int signum) {
  srv_proc *p = sb_child_data(child);
  serve *s = p->s;
  const char *name = signum > 0 ? sb_signal_name(signum) : NULL;
  sb_jw o;

  for (int i = 0; i < 2; i++)
    if (p->capture[i])
      ctl_chan_send_data(s->chan, i == 0 ? CTL_PROC_STDOUT : CTL_PROC_STDERR, p->obj.id,
                         "", 0);
  srv_open(&o, "proc_end");
  sb_jw_add_int(&o, "proc", (int64_t)p->obj.id);
  if (name != NULL)
    sb_jw_add_bytes(&o, "signal", name);
  else
    sb_jw_add_int(&o, "code", signum > 0 ? 128 + signum : status);
  sb_jw_add_bool(&o, "timed_out", p->timed_out);
  srv_send(s, &o);
  srv_list_remove(&p->link);
  if (p->ticket != NULL)
    ticket_forget(s, p->ticket); /* the library revokes the ticket itself */
  srv_obj_remove(s, &p->obj);
  free(p);
}

/* stdout/stderr: "capture" (default), "null", "inherit" (stderr), {"file"}. */
static int get_out(const cJSON *req, int i, spawn_req *q, sb_stdio *io, srv_err *err) {
  static const char *const names[] = {"stdin", "stdout", "stderr"};
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, names[i]);
  const char *word = cJSON_IsString(v) ? v->valuestring : NULL;

  if (cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "file") != NULL) {
    if (srv_get_bytes(v, "file", false, &q->paths[i], err) < 0)
      return -1;
    *io = (sb_stdio){.mode = SB_STDIO_FILE, .path = q->paths[i]};
  } else if (i == 0 && cJSON_IsObject(v) && cJSON_GetObjectItemCaseSensitive(v, "data")) {
    srv_err e2;
    if (srv_get_bytes(v, "data", false, &q->data, &e2) == 0) {
      q->data_len = strlen(q->data);
    } else {
      /* {"base64"} data may hold NULs: decoded by length. */
      const cJSON *b = cJSON_GetObjectItemCaseSensitive(
          cJSON_GetObjectItemCaseSensitive(v, "data"), "base64");
      ptrdiff_t n = -1;
      if (cJSON_IsString(b) && (q->data = malloc(strlen(b->valuestring) + 1)) != NULL)
        n = sb__b64_decode(b->valuestring, strlen(b->valuestring), (uint8_t *)q->data);
      if (n < 0)
        return srv_fail(err, "bad_request", "stdin.data: expected a byte string");
      q->data_len = (size_t)n;
    }
    *io = (sb_stdio){.mode = SB_STDIO_BUFFER, .data = q->data, .len = q->data_len};
  } else if (v == NULL) {
    *io = (sb_stdio){.mode = i == 0 ? SB_STDIO_NULL : SB_STDIO_CAPTURE};
  } else if (word != NULL && strcmp(word, "null") == 0) {
    *io = (sb_stdio){.mode = SB_STDIO_NULL};
  } else if (word != NULL && i > 0 && strcmp(word, "capture") == 0) {
    *io = (sb_stdio){.mode = SB_STDIO_CAPTURE};
  } else if (word != NULL && i == 2 && strcmp(word, "inherit") == 0) {
    *io = (sb_stdio){.mode = SB_STDIO_INHERIT};
  } else {
    return srv_fail(err, "bad_request", "%s: not a choice here", names[i]);
  }
  return 0;
}

/* The proc's env: the controller's, then PATH and SOCKETBRIDGE_SHIMS with
 * the shim directory first (extending the env's own, else serve's). */
static int spawn_env(serve *s, spawn_req *q, bool replace, bool shims) {
  const char *path = sb__env_value_n(q->env, SIZE_MAX, "PATH", SB__ENV_LAST);
  const char *sh = sb__env_value_n(q->env, SIZE_MAX, SB_ENV_SHIMS, SB__ENV_LAST);
  size_t n = 0;

  if (!shims || s->shim_dir == NULL)
    return 0;
  if (path == NULL && !replace)
    path = getenv("PATH");
  if (sh == NULL && !replace)
    sh = getenv(SB_ENV_SHIMS);
  while (q->env != NULL && q->env[n] != NULL)
    n++;
  if (shim_vars(s, path, sh, q->shim_vars) < 0 ||
      (q->full_env = calloc(n + 3, sizeof *q->full_env)) == NULL)
    return -ENOMEM;
  if (n > 0)
    memcpy(q->full_env, q->env, n * sizeof *q->full_env);
  q->full_env[n] = q->shim_vars[0];
  q->full_env[n + 1] = q->shim_vars[1];
  return 0;
}

static int get_restart(const cJSON *req, sb_restart *out, srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "restart");
  if (v == NULL)
    return 0;
  if (cJSON_IsString(v) && strcmp(v->valuestring, "no") == 0)
    *out = SB_RESTART_NO;
  else if (cJSON_IsString(v) && strcmp(v->valuestring, "on-failure") == 0)
    *out = SB_RESTART_ON_FAILURE;
  else if (cJSON_IsString(v) && strcmp(v->valuestring, "always") == 0)
    *out = SB_RESTART_ALWAYS;
  else
    return srv_fail(err, "bad_request",
                    "restart: expected \"no\", \"on-failure\" or \"always\"");
  return 0;
}

static int spawn_opts(serve *s, const cJSON *req, spawn_req *q, sb_spawn_options *o,
                      srv_err *err) {
  uint64_t timeout = 0, kill_after = 0, max_restarts = 0, bmin = 0, bmax = 0;
  bool replace = false, shims = true;

  if (srv_get_strv(req, "argv", false, true, &q->argv, err) < 0 ||
      srv_get_bytes(req, "cwd", true, &q->cwd, err) < 0 ||
      srv_get_strv(req, "env", true, false, &q->env, err) < 0 ||
      srv_get_bool(req, "env_replace", &replace, err) < 0 ||
      srv_get_bool(req, "shims", &shims, err) < 0 ||
      srv_get_u64(req, "timeout_ms", true, SRV_ID_MAX, &timeout, err) < 0 ||
      srv_get_u64(req, "kill_after_ms", true, SRV_ID_MAX, &kill_after, err) < 0 ||
      srv_get_u64(req, "max_restarts", true, 1000000, &max_restarts, err) < 0 ||
      srv_get_u64(req, "backoff_min_ms", true, SRV_ID_MAX, &bmin, err) < 0 ||
      srv_get_u64(req, "backoff_max_ms", true, SRV_ID_MAX, &bmax, err) < 0 ||
      get_restart(req, &o->restart, err) < 0)
    return -1;
  if (cJSON_GetObjectItemCaseSensitive(req, "stop_signal") != NULL &&
      srv_get_signal(req, "stop_signal", &o->stop_signal, err) < 0)
    return -1;
  for (int i = 0; i < 3; i++)
    if (get_out(req, i, q, &o->stdio[i], err) < 0)
      return -1;
  for (size_t i = 0; q->env != NULL && q->env[i] != NULL; i++)
    if (strchr(q->env[i], '=') == NULL || q->env[i][0] == '=')
      return srv_fail(err, "bad_request", "env[%zu]: expected NAME=VALUE", i);
  if (spawn_env(s, q, replace, shims) < 0)
    return srv_fail(err, "failed", "out of memory");
  o->file = q->argv[0];
  o->args = q->argv;
  o->cwd = q->cwd;
  o->env = q->full_env != NULL ? q->full_env : q->env;
  o->env_replace = replace;
  o->timeout_ms = timeout;
  o->kill_after_ms = kill_after;
  o->max_restarts = (unsigned)max_restarts;
  o->backoff_min_ms = bmin;
  o->backoff_max_ms = bmax;
  o->on_output = on_proc_output;
  o->on_exit = on_proc_exit;
  return 0;
}

int srv_req_spawn(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  spawn_req q;
  sb_spawn_options o;
  srv_proc *p = NULL;
  int r = -1;

  memset(&q, 0, sizeof q);
  memset(&o, 0, sizeof o);
  if (spawn_opts(s, req, &q, &o, err) < 0)
    goto out;
  p = calloc(1, sizeof *p);
  if (p == NULL || srv_obj_add(s, &p->obj, SRV_PROC) < 0) {
    free(p);
    srv_fail(err, "failed", "out of memory");
    goto out;
  }
  p->s = s;
  srv_list_init(&p->link);
  p->capture[0] = o.stdio[1].mode == SB_STDIO_CAPTURE;
  p->capture[1] = o.stdio[2].mode == SB_STDIO_CAPTURE;
  o.data = p;
  s->spawning = p;
  r = sb_spawn(s->server, &o, &p->child);
  s->spawning = NULL;
  if (r < 0) {
    srv_obj_remove(s, &p->obj);
    free(p);
    r = srv_failed(err, r, q.argv[0]);
    goto out;
  }
  srv_list_push(&s->procs, &p->link);
  p->ticket = ticket_track(s, sb_child_ticket(p->child), false, p->obj.id);
  sb_jw_add_int(ok, "proc", (int64_t)p->obj.id);
  sb_jw_add_int(ok, "pid", sb_child_pid(p->child));
  if (p->ticket != NULL)
    sb_jw_add_int(ok, "ticket", (int64_t)p->ticket->obj.id);
  r = 0;
out:
  spawn_req_free(&q);
  return r;
}

static srv_proc *proc_of(serve *s, const cJSON *req, srv_err *err) {
  uint64_t id = 0;
  srv_proc *p;
  if (srv_get_u64(req, "proc", false, SRV_ID_MAX, &id, err) < 0)
    return NULL;
  p = (srv_proc *)srv_obj_find(s, id, SRV_PROC);
  if (p == NULL)
    srv_fail(err, "no_such_proc", "no live proc %llu", (unsigned long long)id);
  return p;
}

int srv_req_stop(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  srv_proc *p = proc_of(s, req, err);
  (void)ok;
  if (p == NULL)
    return -1;
  sb_child_stop(p->child);
  return 0;
}

int srv_req_kill(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  srv_proc *p = proc_of(s, req, err);
  int sig = 0, r;
  (void)ok;
  if (p == NULL || srv_get_signal(req, "signal", &sig, err) < 0)
    return -1;
  r = sb_child_kill(p->child, sig);
  return r < 0 ? srv_failed(err, r, "kill") : 0;
}

/* The proc that child is, or NULL: a delegated program is a child too, of
 * the library's, whose data is not ours. Also while sb_spawn runs (SPAWN),
 * before the proc is listed: pending is that one. */
static srv_proc *proc_of_child(serve *s, const sb_child *child) {
  for (srv_link *l = s->procs.next; child != NULL && l != &s->procs; l = l->next) {
    srv_proc *p = (srv_proc *)(void *)((char *)l - offsetof(srv_proc, link));
    if (p->child == child)
      return p;
  }
  if (child != NULL && s->spawning != NULL && sb_child_data(child) == s->spawning)
    return s->spawning;
  return NULL;
}

uint64_t srv_proc_on_event(serve *s, const sb_event *ev) {
  srv_proc *p = proc_of_child(s, ev->child);
  if (p == NULL)
    return 0;
  if (ev->type == SB_EVENT_TIMEOUT)
    p->timed_out = true;
  return p->obj.id;
}
