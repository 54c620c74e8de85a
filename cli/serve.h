/* SPDX-License-Identifier: MIT */
/* serve.h - `socketbridge serve` (docs/control.md): the parts shared by
 * serve.c (the channel, requests, procs, tickets, shims, messages, the end)
 * and serve_call.c (stub calls and their dispositions). */
#ifndef SB_CLI_SERVE_H
#define SB_CLI_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "control.h"
#include "proto.h"
#include "socketbridge.h"

#define SRV_HOLD_MS 10000u                  /* a held call opens by itself after */
#define SRV_MESSAGE_MS 60000u               /* a message unanswered gets an error */
#define SRV_WRITE_HIGH (1024u * 1024u)      /* a call's queue: write_pause above */
#define SRV_WRITE_LOW (256u * 1024u)        /* write_resume at or below */
#define SRV_STUBS_MAX (64u * 1024u * 1024u) /* all calls' queues: stop reading */
#define SRV_CHAN_HIGH (4u * 1024u * 1024u)  /* channel backlog: pause the stubs */
#define SRV_CHAN_LOW (1024u * 1024u)        /* resume them */
#define SRV_ID_MAX ((uint64_t)1 << 53)      /* ids are JSON integers */

/* An intrusive list (held calls, pending messages, all calls). */
typedef struct srv_link {
  struct srv_link *prev, *next;
} srv_link;

/* What an id names: one counter for all, one map. */
typedef enum srv_kind { SRV_CALL = 1, SRV_PROC, SRV_TICKET, SRV_MESSAGE } srv_kind;

typedef struct srv_obj {
  uint64_t id;
  srv_kind kind;
  struct srv_obj *next; /* in its bucket */
} srv_obj;

/* A request's failure: the error code and its one-line message. */
typedef struct srv_err {
  const char *code;
  const char *errno_name; /* for "failed", or NULL */
  char msg[256];
} srv_err;

typedef struct serve {
  uv_loop_t loop;
  sb_server *server;
  ctl_chan *chan;
  int status; /* serve's exit status */
  bool shutting_down;
  bool shutdown_requested; /* `shutdown`: ends once its answer is queued */
  bool events;             /* `events` enabled */
  bool messages;           /* `messages` enabled */

  uint64_t next_id;
  srv_obj **buckets;
  size_t nbuckets, nobjs;

  srv_link calls;   /* every srv_call */
  srv_link held;    /* calls held, oldest first */
  srv_link pending; /* messages waiting for a reply, oldest first */
  srv_link procs;   /* live srv_procs */
  void *spawning;   /* the srv_proc of the sb_spawn running now */
  uv_timer_t hold_timer, message_timer;
  uv_signal_t signals[3];

  size_t stub_queued; /* controller bytes queued for stubs, all calls */
  bool chan_paused;   /* reading the channel stopped: stub_queued too high */
  bool stubs_paused;  /* every call paused: the channel is congested */

  char *shim_dir;    /* NULL until the first `shim` */
  char **shim_names; /* NULL-terminated */
  bool *shim_exec;   /* per name: route "exec" */
  size_t nshims;
} serve;

/* ---- serve_util.c: lists, ids, answers, request members ------------------ */

void srv_list_init(srv_link *l);
void srv_list_push(srv_link *head, srv_link *l);
void srv_list_remove(srv_link *l);

/* Gives obj a fresh id and maps it; -ENOMEM. */
int srv_obj_add(serve *s, srv_obj *obj, srv_kind kind);
/* The object of that kind with that id, or NULL. */
srv_obj *srv_obj_find(const serve *s, uint64_t id, srv_kind kind);
void srv_obj_remove(serve *s, srv_obj *obj);
/* At the end: frees what is still mapped (tickets the server freed with
 * itself) and the map. */
void srv_objs_free(serve *s);

/* What serve writes to the controller goes through lib/'s JSON writer:
 * srv_open starts {"type":type, lib/'s sb_jw_add_* and the srv_add_* below
 * add members (text as byte strings: sb_jw_add_bytes), srv_send closes
 * the object and sends it (a line that cannot be written is reported on
 * stderr and dropped). */
void srv_open(sb_jw *w, const char *type);
void srv_send(serve *s, sb_jw *w);
/* Fills err and returns -1. */
int srv_fail(srv_err *err, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "failed" with errno's name; what says what was being done. */
int srv_failed(srv_err *err, int r, const char *what);

/* Request members. Each returns 0, or -1 with err filled (bad_request
 * naming the member). opt: absent is fine (the out value is left). */
int srv_get_u64(const cJSON *req, const char *name, bool opt, uint64_t max, uint64_t *out,
                srv_err *err);
int srv_get_bool(const cJSON *req, const char *name, bool *out, srv_err *err);
int srv_get_signal(const cJSON *req, const char *name, int *out, srv_err *err);
/* A byte string (no NUL); *out malloc'd, NULL when absent and opt. */
int srv_get_bytes(const cJSON *req, const char *name, bool opt, char **out, srv_err *err);
/* An array of byte strings, NULL-terminated, malloc'd (free with sb__vec_free);
 * NULL when absent and opt. */
int srv_get_strv(const cJSON *req, const char *name, bool opt, bool nonempty, char ***out,
                 srv_err *err);
/* Adds name: JSON already written. */
void srv_add_raw(sb_jw *w, const char *name, const char *json);
/* Adds name: id, or null when id is 0 (no such object). */
void srv_add_id(sb_jw *w, const char *name, uint64_t id);

/* ---- serve_proc.c: tickets, shims, procs ---------------------------------- */

/* The id of the ticket an sb_ticket is (0 if none we know), and its proc. */
uint64_t srv_ticket_id(const sb_ticket *t, uint64_t *proc);
/* Requests: 0, or -1 with err; ok gets the answer's members. */
int srv_req_ticket(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
int srv_req_ticket_free(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
int srv_req_shim(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
int srv_req_spawn(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
int srv_req_stop(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
int srv_req_kill(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);
/* An event about a proc: notes a timeout; returns its id, or 0. */
uint64_t srv_proc_on_event(serve *s, const sb_event *ev);

/* ---- serve_call.c ---------------------------------------------------------- */

void srv_call_on_stub_connect(serve *s, sb_conn *conn);
void srv_call_on_connect(serve *s, sb_conn *conn);
/* The id of the call of conn, or 0. */
uint64_t srv_call_id(const sb_conn *conn);
/* Requests about a call; type is the request's. 0, or -1 with err. */
int srv_call_request(serve *s, const char *type, const cJSON *req, sb_jw *ok,
                     srv_err *err);
bool srv_call_request_known(const char *type);
/* A data frame from the controller for a call. */
void srv_call_data(serve *s, ctl_kind kind, uint64_t id, const char *buf, size_t len,
                   bool end);
/* The channel is congested (pause every call) or drained (resume). */
void srv_calls_pause_all(serve *s, bool paused);
/* The lists and the hold timer (closed by the caller at the end). */
void srv_calls_init(serve *s);

#endif
