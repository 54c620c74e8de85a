/* SPDX-License-Identifier: MIT */
/* serve_util.c - `socketbridge serve`'s small machinery: the lists, one
 * map from id to object (one counter for calls, procs, tickets and
 * messages), the answers, and reading a request's members. */
#include "serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "proto.h"

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

void srv_objs_free(serve *s) {
  for (size_t i = 0; i < s->nbuckets; i++) {
    srv_obj *o = s->buckets[i], *next;
    for (; o != NULL; o = next) {
      next = o->next;
      free(o); /* each object's srv_obj is its first member */
    }
  }
  free(s->buckets);
  s->buckets = NULL;
  s->nbuckets = s->nobjs = 0;
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

/* A line to the controller holds at most a call's argv and env (a hello of
 * at most SB_CTL_MAX_BYTES) or an event or status of them. */
#define SRV_LINE_MAX (2 * (size_t)SB_CTL_MAX_BYTES)

void srv_open(sb_jw *w, const char *type) {
  sb_jw_init(w, 0, 256, SRV_LINE_MAX);
  sb_jw_open(w, '{');
  sb_jw_add_bytes(w, "type", type);
}

void srv_send(serve *s, sb_jw *w) {
  char *text;
  size_t len;
  sb_jw_close(w, '}');
  int r = sb_jw_end(w, &text, &len);
  if (r == 0)
    ctl_chan_send_json(s->chan, text, len);
  else
    cli_error("serve: a message to the controller was lost: %s", sb_strerror(r));
  free(text);
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

static int bad_bytes(const char *path, sb_diag *diag) {
  return sb_diag_set(diag, SB_EBADMSG, "%s: expected a string or {\"base64\": ...}",
                     path);
}

/* A byte string in a request (the protocol's spelling: a string, or
 * {"base64": "..."} of bytes without a NUL) into a fresh C string. The
 * request was checked by lib/'s reader before cJSON built it, so a string
 * holds no \u0000. */
static int bytes_get(const cJSON *item, const char *path, char **out, sb_diag *diag) {
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(item, "base64");
  *out = NULL;
  if (cJSON_IsString(item)) {
    *out = strdup(item->valuestring);
    return *out != NULL ? 0 : SB_ENOMEM;
  }
  if (!cJSON_IsObject(item) || !cJSON_IsString(b))
    return bad_bytes(path, diag);
  size_t len = strlen(b->valuestring);
  char *s = malloc(len / 4 * 3 + 1);
  if (s == NULL)
    return SB_ENOMEM;
  ptrdiff_t n = sb__b64_decode(b->valuestring, len, (uint8_t *)s);
  if (n < 0 || memchr(s, '\0', (size_t)n) != NULL) {
    free(s);
    return sb_diag_set(diag, SB_EBADMSG, "%s.base64: %s", path,
                       n < 0 ? "not padded RFC 4648 base64"
                             : "decodes to bytes with a NUL");
  }
  s[n] = '\0';
  *out = s;
  return 0;
}

int srv_get_bytes(const cJSON *req, const char *name, bool opt, char **out,
                  srv_err *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, name);
  sb_diag diag;
  int r;
  *out = NULL;
  if (v == NULL && opt)
    return 0;
  memset(&diag, 0, sizeof diag);
  r = bytes_get(v, name, out, &diag);
  if (r == SB_ENOMEM)
    return srv_fail(err, "failed", "out of memory");
  if (r < 0)
    return srv_fail(err, "bad_request", "%s", diag.msg);
  return 0;
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
    return srv_fail(err, "bad_request", "%s: expected %sarray of byte strings", name,
                    nonempty ? "a non-empty " : "an ");
  n = (size_t)cJSON_GetArraySize(a);
  *out = calloc(n + 1, sizeof **out);
  if (*out == NULL)
    return srv_fail(err, "failed", "out of memory");
  for (i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%.40s[%zu]", name, i);
    memset(&diag, 0, sizeof diag);
    if (bytes_get(cJSON_GetArrayItem(a, (int)i), path, &(*out)[i], &diag) < 0) {
      sb__vec_free(*out);
      *out = NULL;
      return srv_fail(err, "bad_request", "%s", diag.msg[0] ? diag.msg : "out of memory");
    }
  }
  return 0;
}

void srv_add_raw(sb_jw *w, const char *name, const char *json) {
  sb_jw_key(w, name);
  sb_jw_raw(w, json, strlen(json));
}

void srv_add_id(sb_jw *w, const char *name, uint64_t id) {
  sb_jw_key(w, name);
  if (id != 0)
    sb_jw_int(w, (int64_t)id);
  else
    sb_jw_null(w);
}
