/* serve.c - `socketbridge serve`: the supervisor driven by a controller over
 * the control channel (docs/control.md). This file: the command line, the
 * ids, requests and their answers, tickets, shims, procs, side-band
 * messages, events, status and the end. Calls are serve_call.c's; the
 * framing is control.c's. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#include "../../lib/sb_internal.h"

/* ---- lists and ids ----------------------------------------------------------- */

void srv_list_init(srv_link *l) {
  l->prev = l->next = l;
}

void srv_list_push(srv_link *head, srv_link *l) {
  l->prev = head->prev;
  l->next = head;
  head->prev->next = l;
  head->prev = l;
}

void srv_list_remove(srv_link *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  l->prev = l->next = l;
}

static size_t bucket_of(const serve *s, uint64_t id) {
  return (size_t)(id * 0x9e3779b97f4a7c15u >> 20) & (s->nbuckets - 1);
}

static int grow(serve *s) {
  size_t n = s->nbuckets != 0 ? s->nbuckets * 2 : 256, old = s->nbuckets;
  srv_obj **b = calloc(n, sizeof *b), **ob = s->buckets;
  if (b == NULL)
    return -ENOMEM;
  s->buckets = b;
  s->nbuckets = n;
  for (size_t i = 0; i < old; i++) {
    srv_obj *o = ob[i], *next;
    for (; o != NULL; o = next) {
      next = o->next;
      o->next = b[bucket_of(s, o->id)];
      b[bucket_of(s, o->id)] = o;
    }
  }
  free(ob);
  return 0;
}

int srv_obj_add(serve *s, srv_obj *obj, srv_kind kind) {
  if (s->nobjs >= s->nbuckets && grow(s) < 0)
    return -ENOMEM;
  obj->id = s->next_id++;
  obj->kind = kind;
  obj->next = s->buckets[bucket_of(s, obj->id)];
  s->buckets[bucket_of(s, obj->id)] = obj;
  s->nobjs++;
  return 0;
}

srv_obj *srv_obj_find(const serve *s, uint64_t id, srv_kind kind) {
  if (s->nbuckets == 0)
    return NULL;
  for (srv_obj *o = s->buckets[bucket_of(s, id)]; o != NULL; o = o->next)
    if (o->id == id)
      return o->kind == kind ? o : NULL;
  return NULL;
}

void srv_obj_remove(serve *s, srv_obj *obj) {
  srv_obj **p = &s->buckets[bucket_of(s, obj->id)];
  while (*p != NULL && *p != obj)
    p = &(*p)->next;
  if (*p == obj) {
    *p = obj->next;
    s->nobjs--;
  }
}

/* ---- answers and request members ----------------------------------------------- */

void srv_send(serve *s, cJSON *o) {
  char *text = o != NULL ? cJSON_PrintUnformatted(o) : NULL;
  if (text != NULL)
    ctl_chan_send_json(s->chan, text, strlen(text));
  else
    cli_error("serve: out of memory: a message to the controller was lost");
  free(text);
  cJSON_Delete(o);
}

int srv_fail(srv_err *err, const char *code, const char *fmt, ...) {
  va_list ap;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->msg, sizeof err->msg, fmt, ap);
  va_end(ap);
  return -1;
}

int srv_failed(srv_err *err, int r, const char *what) {
  err->errno_name = sb_err_name(r);
  return srv_fail(err, "failed", "%s: %s", what, sb_strerror(r));
}

int srv_get_u64(const cJSON *req, const char *name, bool opt, uint64_t max, uint64_t *out,
                srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  if (v == NULL && opt)
    return 0;
  if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
      v->valuedouble != (double)(uint64_t)v->valuedouble)
    return srv_fail(err, "bad_request", "%s: expected an integer 0..%llu", name,
                    (unsigned long long)max);
  *out = (uint64_t)v->valuedouble;
  return 0;
}

int srv_get_bool(const cJSON *req, const char *name, bool *out, srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  if (v == NULL)
    return 0;
  if (!cJSON_IsBool(v))
    return srv_fail(err, "bad_request", "%s: expected true or false", name);
  *out = cJSON_IsTrue(v);
  return 0;
}

int srv_get_signal(const cJSON *req, const char *name, int *out, srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  int sig = 0;
  if (cJSON_IsString(v))
    sig = sb_signal_from_name(v->valuestring);
  else if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble < 65)
    sig = (int)v->valuedouble;
  if (sig <= 0 || sb_signal_name(sig) == NULL)
    return srv_fail(err, "bad_request", "%s: expected a signal name (\"TERM\")", name);
  *out = sig;
  return 0;
}

int srv_get_bytes(const cJSON *req, const char *name, bool opt, char **out, srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  sb_diag diag;
  int r;
  *out = NULL;
  if (v == NULL && opt)
    return 0;
  memset(&diag, 0, sizeof diag);
  r = sb__json_bytes_get(v, name, out, &diag);
  if (r == SB_ENOMEM)
    return srv_fail(err, "failed", "out of memory");
  if (r < 0)
    return srv_fail(err, "bad_request", "%s", diag.msg);
  return 0;
}

void srv_strv_free(char **v) {
  for (size_t i = 0; v != NULL && v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

int srv_get_strv(const cJSON *req, const char *name, bool opt, bool nonempty, char ***out,
                 srv_err *err) {
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, name);
  char path[64];
  size_t n, i;
  sb_diag diag;

  *out = NULL;
  if (a == NULL && opt)
    return 0;
  if (!cJSON_IsArray(a) || (nonempty && cJSON_GetArraySize(a) == 0))
    return srv_fail(err, "bad_request", "%s: expected %sarray of byte strings",
                    name, nonempty ? "a non-empty " : "an ");
  n = (size_t)cJSON_GetArraySize(a);
  *out = calloc(n + 1, sizeof **out);
  if (*out == NULL)
    return srv_fail(err, "failed", "out of memory");
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%.40s[%zu]", name, i);
    memset(&diag, 0, sizeof diag);
    if (sb__json_bytes_get(cJSON_GetArrayItem(a, (int)i), path, &(*out)[i], &diag) < 0) {
      srv_strv_free(*out);
      *out = NULL;
      return srv_fail(err, "bad_request", "%s", diag.msg[0] ? diag.msg : "out of memory");
    }
  }
  return 0;
}

cJSON *srv_bytes_json(const char *s) {
  return sb__json_bytes_new(s);
}

/* ---- tickets ----------------------------------------------------------------- */

typedef struct srv_ticket {
  srv_obj obj;
  sb_ticket *ticket;
  bool owned;     /* made by `ticket` (else a proc's, freed with it) */
  uint64_t proc;  /* the proc it belongs to, or 0 */
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
static cJSON *env_json(const serve *s, char *const *base) {
  cJSON *a = cJSON_CreateArray();
  char *vars[2];
  for (size_t i = 0; base != NULL && base[i] != NULL; i++)
    cJSON_AddItemToArray(a, srv_bytes_json(base[i]));
  if (s->shim_dir != NULL && shim_vars(s, getenv("PATH"), getenv(SB_ENV_SHIMS), vars) == 0) {
    cJSON_AddItemToArray(a, srv_bytes_json(vars[0]));
    cJSON_AddItemToArray(a, srv_bytes_json(vars[1]));
    free(vars[0]);
    free(vars[1]);
  }
  return a;
}

static int req_ticket(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
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
  cJSON_AddNumberToObject(ok, "ticket", (double)st->obj.id);
  cJSON_AddItemToObject(ok, "env", env_json(s, sb_ticket_env(t)));
  return 0;
}

static int req_ticket_free(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
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

static int req_shim(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  const cJSON *route = cJSON_GetObjectItemCaseSensitive(req, "route");
  const char *stub = sb_server_stub_path(s->server);
  char **names = NULL;
  bool exec = false;
  int r = -1;

  if (srv_get_strv(req, "names", false, true, &names, err) < 0)
    return -1;
  if (route != NULL && (!cJSON_IsString(route) || (strcmp(route->valuestring, "exec") != 0 &&
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
    s->shim_dir = cli_shim_dir_new(names, stub);
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
  cJSON_AddStringToObject(ok, "dir", s->shim_dir);
  cJSON_AddItemToObject(ok, "env", env_json(s, NULL));
  r = 0;
out:
  srv_strv_free(names);
  return r;
}

/* ---- procs ------------------------------------------------------------------- */

typedef struct srv_proc {
  srv_obj obj;
  serve *s;
  sb_child *child;
  srv_ticket *ticket;
  srv_link link; /* in s->procs */
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
  srv_strv_free(q->argv);
  srv_strv_free(q->env);
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
  cJSON *o = cJSON_CreateObject();
  const char *name = signum > 0 ? sb_signal_name(signum) : NULL;

  for (int i = 0; i < 2; i++)
    if (p->capture[i])
      ctl_chan_send_data(s->chan, i == 0 ? CTL_PROC_STDOUT : CTL_PROC_STDERR, p->obj.id, "",
                         0);
  cJSON_AddStringToObject(o, "type", "proc_end");
  cJSON_AddNumberToObject(o, "proc", (double)p->obj.id);
  if (name != NULL)
    cJSON_AddStringToObject(o, "signal", name);
  else
    cJSON_AddNumberToObject(o, "code", signum > 0 ? 128 + signum : (double)status);
  cJSON_AddBoolToObject(o, "timed_out", p->timed_out);
  srv_send(s, o);
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
  const char *path = replace ? NULL : getenv("PATH");
  const char *sh = replace ? NULL : getenv(SB_ENV_SHIMS);
  size_t n = 0;

  if (!shims || s->shim_dir == NULL)
    return 0;
  for (; q->env != NULL && q->env[n] != NULL; n++) {
    if (strncmp(q->env[n], "PATH=", 5) == 0)
      path = q->env[n] + 5;
    else if (strncmp(q->env[n], SB_ENV_SHIMS "=", sizeof SB_ENV_SHIMS) == 0)
      sh = q->env[n] + sizeof SB_ENV_SHIMS;
  }
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
    return srv_fail(err, "bad_request", "restart: expected \"no\", \"on-failure\" or \"always\"");
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

static int req_spawn(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
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
  cJSON_AddNumberToObject(ok, "proc", (double)p->obj.id);
  cJSON_AddNumberToObject(ok, "pid", sb_child_pid(p->child));
  if (p->ticket != NULL)
    cJSON_AddNumberToObject(ok, "ticket", (double)p->ticket->obj.id);
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

static int req_stop(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  srv_proc *p = proc_of(s, req, err);
  (void)ok;
  if (p == NULL)
    return -1;
  sb_child_stop(p->child);
  return 0;
}

static int req_kill(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  srv_proc *p = proc_of(s, req, err);
  int sig = 0, r;
  (void)ok;
  if (p == NULL || srv_get_signal(req, "signal", &sig, err) < 0)
    return -1;
  r = sb_child_kill(p->child, sig);
  return r < 0 ? srv_failed(err, r, "kill") : 0;
}

/* ---- side-band messages ---------------------------------------------------------- */

typedef struct srv_message {
  srv_obj obj;
  sb_message *msg;
  srv_link pending; /* in s->pending, oldest first */
  uint64_t at;      /* uv_now() when it came */
} srv_message;

static void message_done(serve *s, srv_message *m) {
  srv_list_remove(&m->pending);
  srv_obj_remove(s, &m->obj);
  free(m);
}

static void reply_error(sb_message *msg, const char *code, const char *text) {
  cJSON *o = cJSON_CreateObject();
  char *json;
  cJSON_AddStringToObject(o, "type", "error");
  cJSON_AddStringToObject(o, "error", code);
  cJSON_AddStringToObject(o, "message", text);
  json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  sb_message_reply(msg, json != NULL ? json : "{\"type\":\"error\",\"error\":\"failed\"}");
  free(json);
}

static srv_message *pending_head(serve *s) {
  if (s->pending.next == &s->pending)
    return NULL;
  return (srv_message *)(void *)((char *)s->pending.next - offsetof(srv_message, pending));
}

static void on_message_timer(uv_timer_t *t) {
  serve *s = t->data;
  uint64_t now = uv_now(&s->loop);
  srv_message *m;
  while ((m = pending_head(s)) != NULL && now - m->at >= SRV_MESSAGE_MS) {
    reply_error(m->msg, "no_handler", "the controller did not answer in time");
    message_done(s, m);
  }
  if (m != NULL)
    uv_timer_start(&s->message_timer, on_message_timer, SRV_MESSAGE_MS - (now - m->at), 0);
}

static void on_message(sb_server *server, sb_message *msg) {
  serve *s = sb_server_data(server);
  srv_message *m;
  char text[160];
  uint64_t proc = 0, ticket = srv_ticket_id(sb_message_ticket(msg), &proc);
  cJSON *o;

  if (!s->messages || s->shutting_down) {
    snprintf(text, sizeof text, "no handler for messages of type \"%.100s\"",
             sb_message_type(msg));
    reply_error(msg, "no_handler", text);
    return;
  }
  m = calloc(1, sizeof *m);
  if (m == NULL || srv_obj_add(s, &m->obj, SRV_MESSAGE) < 0) {
    free(m);
    reply_error(msg, "failed", "out of memory");
    return;
  }
  m->msg = msg;
  m->at = uv_now(&s->loop);
  srv_list_push(&s->pending, &m->pending);
  if (!uv_is_active((uv_handle_t *)&s->message_timer))
    uv_timer_start(&s->message_timer, on_message_timer, SRV_MESSAGE_MS, 0);
  o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "message");
  cJSON_AddNumberToObject(o, "message", (double)m->obj.id);
  cJSON_AddRawToObject(o, "body", sb_message_json(msg));
  cJSON_AddNumberToObject(o, "pid", (double)sb_message_pid(msg));
  if (ticket != 0)
    cJSON_AddNumberToObject(o, "ticket", (double)ticket);
  else
    cJSON_AddNullToObject(o, "ticket");
  if (proc != 0)
    cJSON_AddNumberToObject(o, "proc", (double)proc);
  else
    cJSON_AddNullToObject(o, "proc");
  srv_send(s, o);
}

static int req_reply(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  const cJSON *body = cJSON_GetObjectItemCaseSensitive(req, "body");
  uint64_t id = 0;
  srv_message *m;
  char *json;
  (void)ok;

  if (srv_get_u64(req, "message", false, SRV_ID_MAX, &id, err) < 0)
    return -1;
  if (!cJSON_IsObject(body))
    return srv_fail(err, "bad_request", "body: expected a JSON object");
  m = (srv_message *)srv_obj_find(s, id, SRV_MESSAGE);
  if (m == NULL)
    return srv_fail(err, "no_such_message", "no message %llu waiting for a reply",
                    (unsigned long long)id);
  json = cJSON_PrintUnformatted(body);
  if (json == NULL)
    return srv_fail(err, "failed", "out of memory");
  sb_message_reply(m->msg, json); /* a sender gone meanwhile is not our error */
  free(json);
  message_done(s, m);
  return 0;
}

static int req_switch(bool *flag, const cJSON *req, srv_err *err) {
  if (cJSON_GetObjectItemCaseSensitive(req, "enable") == NULL)
    return srv_fail(err, "bad_request", "enable: expected true or false");
  return srv_get_bool(req, "enable", flag, err);
}

static int req_messages(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  (void)ok;
  return req_switch(&s->messages, req, err);
}

static int req_events(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  (void)ok;
  return req_switch(&s->events, req, err);
}

static int req_status(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  char *json;
  int r = sb_server_status_json(s->server, &json);
  (void)req;
  if (r < 0)
    return srv_failed(err, r, "status");
  cJSON_AddRawToObject(ok, "status", json);
  free(json);
  return 0;
}

/* ---- events ------------------------------------------------------------------------ */

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

static void on_event(sb_server *server, const sb_event *ev) {
  serve *s = sb_server_data(server);
  srv_proc *p = proc_of_child(s, ev->child);
  uint64_t call;
  char *json;
  cJSON *o;

  if (ev->type == SB_EVENT_STUB_CONNECT)
    srv_call_on_stub_connect(s, ev->conn);
  if (ev->type == SB_EVENT_TIMEOUT && p != NULL)
    p->timed_out = true;
  if (!s->events || sb_event_to_json(ev, &json) < 0)
    return;
  o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "event");
  cJSON_AddRawToObject(o, "event", json);
  free(json);
  if ((call = srv_call_id(ev->conn)) != 0)
    cJSON_AddNumberToObject(o, "call", (double)call);
  if (p != NULL)
    cJSON_AddNumberToObject(o, "proc", (double)p->obj.id);
  srv_send(s, o);
}

static void on_connect(sb_server *server, sb_conn *conn) {
  srv_call_on_connect(sb_server_data(server), conn);
}

/* ---- requests --------------------------------------------------------------------- */

static void shutdown_serve(serve *s, int status);

static int req_shutdown(serve *s, const cJSON *req, cJSON *ok, srv_err *err) {
  (void)req;
  (void)ok;
  (void)err;
  s->shutdown_requested = true; /* after the answer goes out */
  return 0;
}

typedef int (*req_fn)(serve *s, const cJSON *req, cJSON *ok, srv_err *err);

static const struct {
  const char *type;
  req_fn fn;
} requests[] = {
    {"ticket", req_ticket},     {"ticket_free", req_ticket_free}, {"shim", req_shim},
    {"spawn", req_spawn},       {"stop", req_stop},               {"kill", req_kill},
    {"messages", req_messages}, {"reply", req_reply},             {"events", req_events},
    {"status", req_status},     {"shutdown", req_shutdown},
};

static void answer_error(serve *s, const cJSON *id, const srv_err *err) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "error");
  cJSON_AddItemToObject(o, "id", id != NULL ? cJSON_Duplicate(id, false) : cJSON_CreateNull());
  cJSON_AddStringToObject(o, "error", err->code);
  cJSON_AddStringToObject(o, "message", err->msg);
  if (err->errno_name != NULL)
    cJSON_AddStringToObject(o, "errno", err->errno_name);
  srv_send(s, o);
}

/* Runs one request; fills ok or err. */
static int run_request(serve *s, const cJSON *req, const char *type, cJSON *ok,
                       srv_err *err) {
  if (s->shutting_down)
    return srv_fail(err, "failed", "serve is shutting down");
  for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++)
    if (strcmp(requests[i].type, type) == 0)
      return requests[i].fn(s, req, ok, err);
  if (srv_call_request_known(type))
    return srv_call_request(s, type, req, ok, err);
  return srv_fail(err, "unknown_type", "unknown request type \"%.64s\"", type);
}

static void on_json(ctl_chan *ch, const char *buf, size_t len) {
  serve *s = ctl_chan_data(ch);
  srv_err err = {.code = "bad_request"};
  cJSON *req = NULL, *ok;
  const cJSON *id = NULL, *type;
  uint64_t idv = 0;
  sb_diag diag;

  memset(&diag, 0, sizeof diag);
  if (sb__json_precheck((const uint8_t *)buf, len, &diag) < 0) {
    srv_fail(&err, "bad_request", "%s", diag.msg);
    answer_error(s, NULL, &err);
    return;
  }
  req = cJSON_ParseWithLength(buf, len);
  id = cJSON_GetObjectItemCaseSensitive(req, "id");
  type = cJSON_GetObjectItemCaseSensitive(req, "type");
  if (!cJSON_IsObject(req))
    srv_fail(&err, "bad_request", "not a JSON object");
  else if (srv_get_u64(req, "id", false, SRV_ID_MAX - 1, &idv, &err) < 0 || idv == 0)
    srv_fail(&err, "bad_request", "id: expected an integer 1..2^53-1");
  else if (!cJSON_IsString(type))
    srv_fail(&err, "bad_request", "type: expected a string");
  else
    err.code = NULL;
  if (err.code != NULL) {
    answer_error(s, idv != 0 ? id : NULL, &err);
    cJSON_Delete(req);
    return;
  }
  ok = cJSON_CreateObject();
  cJSON_AddStringToObject(ok, "type", "ok");
  cJSON_AddNumberToObject(ok, "id", (double)idv);
  if (run_request(s, req, type->valuestring, ok, &err) < 0) {
    cJSON_Delete(ok);
    answer_error(s, id, &err);
  } else {
    srv_send(s, ok);
  }
  cJSON_Delete(req);
  if (s->shutdown_requested)
    shutdown_serve(s, 0);
}

/* ---- the channel's events ----------------------------------------------------------- */

static void on_data(ctl_chan *ch, ctl_kind kind, uint64_t id, const char *buf, size_t len,
                    bool end) {
  srv_call_data(ctl_chan_data(ch), kind, id, buf, len, end);
}

static void on_end(ctl_chan *ch, int err, const char *why) {
  serve *s = ctl_chan_data(ch);
  if (err == 0) {
    shutdown_serve(s, 0);
    return;
  }
  if (err == -EBADMSG || err == -EMSGSIZE) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", "error");
    cJSON_AddNullToObject(o, "id");
    cJSON_AddStringToObject(o, "error", "bad_frame");
    cJSON_AddStringToObject(o, "message", why);
    srv_send(s, o);
  }
  cli_error("serve: control channel: %s", why);
  shutdown_serve(s, CLI_EXIT_FAILURE);
}

static void on_drain(ctl_chan *ch) {
  srv_calls_pause_all(ctl_chan_data(ch), false);
}

static void on_write_error(ctl_chan *ch, int err) {
  serve *s = ctl_chan_data(ch);
  cli_error("serve: control channel: writing failed: %s", sb_strerror(err));
  shutdown_serve(s, CLI_EXIT_FAILURE);
}

static const ctl_chan_cbs chan_cbs = {
    .on_json = on_json,
    .on_data = on_data,
    .on_end = on_end,
    .on_drain = on_drain,
    .on_write_error = on_write_error,
};

/* ---- the end ------------------------------------------------------------------------ */

static void on_server_closed(sb_server *server) {
  serve *s = sb_server_data(server);
  ctl_chan_close(s->chan, NULL);
}

/* Everything ends: pending messages get an error, calls are closed (their
 * call_end still goes out), procs are killed (their proc_end too), then the
 * channel closes once what is queued on it is written. */
static void shutdown_serve(serve *s, int status) {
  srv_message *m;
  if (s->shutting_down)
    return;
  s->shutting_down = true;
  s->status = status;
  while ((m = pending_head(s)) != NULL) {
    reply_error(m->msg, "no_handler", "the controller has gone");
    message_done(s, m);
  }
  ctl_chan_pause(s->chan);
  for (size_t i = 0; i < 3; i++)
    uv_close((uv_handle_t *)&s->signals[i], NULL);
  uv_close((uv_handle_t *)&s->hold_timer, NULL);
  uv_close((uv_handle_t *)&s->message_timer, NULL);
  sb_server_close(s->server, on_server_closed);
}

static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  shutdown_serve(h->data, 0);
}

/* ---- the command ------------------------------------------------------------------- */

static int fcntl_ok(int fd) {
  return fcntl(fd, F_GETFD);
}

static int parse_args(int argc, char **argv, sb_transport *transport, int *fd) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    char *end;
    if (strcmp(a, "--transport") == 0 && v != NULL) {
      if (strcmp(v, "tcp") == 0)
        *transport = SB_TRANSPORT_TCP;
      else if (strcmp(v, "unix") == 0)
        *transport = SB_TRANSPORT_UNIX;
      else {
        cli_error("serve: --transport: \"%s\" is not tcp or unix", v);
        return -1;
      }
      i++;
    } else if (strcmp(a, "--control-fd") == 0 && v != NULL) {
      long n = strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 0 || n > 65535 || fcntl_ok((int)n) < 0) {
        cli_error("serve: --control-fd: \"%s\" is not an open file descriptor", v);
        return -1;
      }
      *fd = (int)n;
      i++;
    } else if (strcmp(a, "--transport") == 0 || strcmp(a, "--control-fd") == 0) {
      cli_error("serve: %s needs a value", a);
      return -1;
    } else {
      cli_error("serve: %s: unknown option (see socketbridge --help)", a);
      return -1;
    }
  }
  return 0;
}

static void send_ready(serve *s, sb_transport transport) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "type", "ready");
  cJSON_AddNumberToObject(o, "version", 1);
  cJSON_AddStringToObject(o, "socketbridge", sb_version_string());
  cJSON_AddNumberToObject(o, "pid", getpid());
  if (transport == SB_TRANSPORT_TCP) {
    cJSON_AddStringToObject(o, "transport", "tcp");
    cJSON_AddStringToObject(o, "host", sb_server_address(s->server));
    cJSON_AddNumberToObject(o, "port", sb_server_port(s->server));
  } else {
    cJSON_AddStringToObject(o, "transport", "unix");
    cJSON_AddStringToObject(o, "socket", sb_server_address(s->server));
  }
  cJSON_AddStringToObject(o, "stub", sb_server_stub_path(s->server));
  srv_send(s, o);
}

static int start(serve *s, sb_transport transport, int fd, const char *stub) {
  static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
  int r = sb_server_new(&s->loop,
                        &(sb_server_options){.transport = transport,
                                             .stub_path = stub,
                                             .on_connect = on_connect,
                                             .on_event = on_event,
                                             .on_message = on_message,
                                             .data = s},
                        &s->server);
  if (r < 0) {
    cli_error("serve: cannot open the bridge: %s", sb_strerror(r));
    return -1;
  }
  r = ctl_chan_open(&s->loop, fd >= 0 ? fd : 0, fd >= 0 ? fd : 1, SRV_CHAN_HIGH,
                    SRV_CHAN_LOW, &chan_cbs, s, &s->chan);
  if (r < 0) {
    cli_error("serve: the control channel (%s): %s",
              fd >= 0 ? "--control-fd" : "stdin and stdout", uv_strerror(r));
    sb_server_close(s->server, NULL);
    return -1;
  }
  srv_calls_init(s);
  srv_list_init(&s->pending);
  srv_list_init(&s->procs);
  uv_timer_init(&s->loop, &s->message_timer);
  s->message_timer.data = s;
  for (size_t i = 0; i < 3; i++) {
    uv_signal_init(&s->loop, &s->signals[i]);
    s->signals[i].data = s;
    uv_signal_start(&s->signals[i], on_signal, sigs[i]);
  }
  send_ready(s, transport);
  return 0;
}

int cli_serve(int argc, char **argv) {
  sb_transport transport = SB_TRANSPORT_TCP;
  serve s;
  char *stub;
  int fd = -1, r;

  memset(&s, 0, sizeof s);
  s.next_id = 1;
  if (parse_args(argc, argv, &transport, &fd) < 0)
    return CLI_EXIT_FAILURE;
  if ((r = uv_loop_init(&s.loop)) < 0) {
    cli_error("serve: uv_loop_init: %s", uv_strerror(r));
    return CLI_EXIT_FAILURE;
  }
  stub = cli_stub_sibling();
  if (start(&s, transport, fd, stub) < 0) {
    s.status = CLI_EXIT_FAILURE;
    uv_run(&s.loop, UV_RUN_DEFAULT);
  } else {
    uv_run(&s.loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&s.loop) != 0)
    cli_error("serve: internal error: a handle was left open");
  if (s.shim_dir != NULL)
    cli_shim_dir_remove(s.shim_dir, s.shim_names);
  free(s.shim_dir);
  srv_strv_free(s.shim_names);
  free(s.shim_exec);
  free(s.buckets);
  free(stub);
  return s.status;
}
