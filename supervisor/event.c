/* SPDX-License-Identifier: MIT */
/* event.c - what happens in a server, for a log or a UI: one callback per
 * server, the names of the event types, and each event as one JSON line.
 *
 * Nothing that can hold a token goes into an event: no environment, no
 * ticket, only what the header lists. A stub's argv is written because a log
 * of invocations is what recording tools need; the stub never puts the
 * token there (it travels in hello.token, which is wiped on arrival). */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* lib/'s private header: its JSON writer. */
#include "proto.h"

uint64_t sb__realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void sb__emit(sb_server *server, sb_event *ev) {
  if (server->on_event == NULL)
    return;
  ev->ts_ns = sb__realtime_ns();
  server->on_event(server, ev);
}

void sb__emit_child(sb_child *child, sb_event_type type, sb_event *ev) {
  ev->type = type;
  ev->child = child;
  if (ev->pid == 0)
    ev->pid = child->pid;
  ev->restarts = child->restarts;
  sb__emit(child->server, ev);
}

static const sb__named event_type_names[] = {SB_EVENT_TYPE_MAP(SB__NAMED_ROW)};

const char *sb_event_type_name(sb_event_type t) {
  const char *name = sb__name_of(event_type_names, SB__NROWS(event_type_names), (int)t);
  return name != NULL ? name : "unknown";
}

/* ---- JSON ------------------------------------------------------------------ */

static bool is_child_event(sb_event_type t) {
  return t >= SB_EVENT_SPAWN && t <= SB_EVENT_GIVE_UP;
}

/* A signal by its name ("TERM"), or its number when it has none here. */
static void add_signal(sb_jw *w, int signum) {
  const char *name = sb_signal_name(signum);
  sb_jw_key(w, "signal");
  if (name != NULL)
    sb_jw_str(w, name);
  else
    sb_jw_int(w, signum);
}

/* How a process ended: "signal" when a signal, else "status" (null when
 * unknown). */
static void add_end(sb_jw *w, int64_t status, int signum) {
  if (signum != 0) {
    add_signal(w, signum);
    return;
  }
  sb_jw_key(w, "status");
  if (status < 0)
    sb_jw_null(w);
  else
    sb_jw_int(w, status);
}

/* The stub's argv: each a string when UTF-8, else {"base64": ...}, as the
 * wire protocol spells byte strings. */
static void add_argv(sb_jw *w, const sb_call *call) {
  sb_jw_key(w, "argv");
  sb_jw_open(w, '[');
  for (size_t i = 0; i < call->argc; i++)
    sb_jw_bytes(w, call->argv[i]);
  sb_jw_close(w, ']');
}

static void add_fields(sb_jw *w, const sb_event *ev) {
  sb_event_type t = ev->type;
  sb_jw_add_str(w, "event", sb_event_type_name(t));
  /* Seconds since the epoch with microseconds, exactly. */
  sb_jw_key(w, "ts");
  sb_jw_fixed(w, ev->ts_ns, 9, 6);
  if (ev->pid > 0) {
    sb_jw_key(w, "pid");
    sb_jw_int(w, ev->pid);
  }
  if (t == SB_EVENT_EXIT || t == SB_EVENT_STUB_EXIT)
    add_end(w, ev->status, ev->signal);
  if (t == SB_EVENT_STOP)
    add_signal(w, ev->signal);
  if (is_child_event(t)) {
    sb_jw_key(w, "restarts");
    sb_jw_int(w, ev->restarts);
  }
  if (t == SB_EVENT_BACKOFF || t == SB_EVENT_ACCEPT_RESUMED) {
    sb_jw_key(w, "delay_ms");
    sb_jw_int(w, (int64_t)ev->delay_ms);
  }
  if (t == SB_EVENT_ACCEPT_PAUSED)
    sb_jw_add_str(w, "error", uv_err_name(ev->error));
  if (t == SB_EVENT_STUB_REJECT)
    sb_jw_add_str(w, "reason", sb_reason_name(ev->reason));
  if (t == SB_EVENT_STUB_EXIT)
    sb_jw_add_str(w, "close_reason", sb_close_reason_name(ev->close_reason));
  if (ev->message != NULL) {
    /* For humans, and UTF-8 as the library writes them; bytes if not. */
    sb_jw_key(w, "message");
    sb_jw_bytes(w, ev->message);
  }
  if (ev->conn != NULL && (t == SB_EVENT_STUB_CONNECT || t == SB_EVENT_STUB_EXIT))
    add_argv(w, sb_conn_call(ev->conn));
}

/* An event's line is bounded by what it can hold: a stub's argv, which came
 * in a hello of at most SB_CTL_MAX_BYTES. */
#define EVENT_MAX (2 * (size_t)SB_CTL_MAX_BYTES)

int sb_event_to_json(const sb_event *ev, char **out) {
  sb_jw w;
  size_t len;

  if (out == NULL)
    return -EINVAL;
  *out = NULL;
  if (ev == NULL)
    return -EINVAL;
  sb_jw_init(&w, 0, 256, EVENT_MAX);
  sb_jw_open(&w, '{');
  add_fields(&w, ev);
  sb_jw_close(&w, '}');
  int r = sb_jw_end(&w, out, &len);
  return r == SB_ENOMEM ? -ENOMEM : r < 0 ? -EINVAL : 0;
}
