/* SPDX-License-Identifier: MIT */
/* event.c - what happens in a server, for a log or a UI: one callback per
 * server, the names of the event types, and each event as one JSON line.
 *
 * Nothing that can hold a token goes into an event: no environment, no
 * ticket, only what the header lists. A stub's argv is written because a log
 * of invocations is what recording tools need; the stub never puts the
 * token there (it travels in hello.token, which is wiped on arrival). */
#include "sb_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

/* lib/'s private header (same file name as ours, other directory): the byte
 * string to JSON helper the wire protocol uses. */
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

const char *sb_event_type_name(sb_event_type t) {
  switch (t) {
  case SB_EVENT_SPAWN:
    return "spawn";
  case SB_EVENT_EXIT:
    return "exit";
  case SB_EVENT_STOP:
    return "stop";
  case SB_EVENT_TIMEOUT:
    return "timeout";
  case SB_EVENT_BACKOFF:
    return "backoff";
  case SB_EVENT_RESTART:
    return "restart";
  case SB_EVENT_GIVE_UP:
    return "give_up";
  case SB_EVENT_STUB_CONNECT:
    return "stub_connect";
  case SB_EVENT_STUB_REJECT:
    return "stub_reject";
  case SB_EVENT_STUB_EXIT:
    return "stub_exit";
  case SB_EVENT_ACCEPT_PAUSED:
    return "accept_paused";
  case SB_EVENT_ACCEPT_RESUMED:
    return "accept_resumed";
  }
  return "unknown";
}

/* ---- JSON ------------------------------------------------------------------ */

static bool is_child_event(sb_event_type t) {
  return t >= SB_EVENT_SPAWN && t <= SB_EVENT_GIVE_UP;
}

/* A signal by its name ("TERM"), or its number when it has none here. */
static bool add_signal(cJSON *o, int signum) {
  const char *name = sb_signal_name(signum);
  if (name != NULL)
    return cJSON_AddStringToObject(o, "signal", name) != NULL;
  return cJSON_AddNumberToObject(o, "signal", signum) != NULL;
}

/* How a process ended: "signal" when a signal, else "status" (null when
 * unknown). */
static bool add_end(cJSON *o, int64_t status, int signum) {
  if (signum != 0)
    return add_signal(o, signum);
  if (status < 0)
    return cJSON_AddNullToObject(o, "status") != NULL;
  return cJSON_AddNumberToObject(o, "status", (double)status) != NULL;
}

static bool add_raw_u64(cJSON *o, const char *name, uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%" PRIu64, v);
  return cJSON_AddRawToObject(o, name, buf) != NULL;
}

/* Seconds since the epoch with microseconds, written exactly (a double
 * built from the nanoseconds would print rounding noise). */
static bool add_ts(cJSON *o, uint64_t ts_ns) {
  char buf[40];
  snprintf(buf, sizeof buf, "%" PRIu64 ".%06" PRIu64, ts_ns / 1000000000u,
           ts_ns % 1000000000u / 1000u);
  return cJSON_AddRawToObject(o, "ts", buf) != NULL;
}

/* The stub's argv: each a string when UTF-8, else {"base64": ...}, as the
 * wire protocol spells byte strings. */
static bool add_argv(cJSON *o, const sb_call *call) {
  cJSON *arr = cJSON_AddArrayToObject(o, "argv");
  if (arr == NULL)
    return false;
  for (size_t i = 0; i < call->argc; i++) {
    cJSON *item = sb__json_bytes_new(call->argv[i]);
    if (item == NULL)
      return false;
    cJSON_AddItemToArray(arr, item);
  }
  return true;
}

static bool add_fields(cJSON *o, const sb_event *ev) {
  sb_event_type t = ev->type;
  bool ok = cJSON_AddStringToObject(o, "event", sb_event_type_name(t)) != NULL &&
            add_ts(o, ev->ts_ns);
  if (ok && ev->pid > 0)
    ok = cJSON_AddNumberToObject(o, "pid", (double)ev->pid) != NULL;
  if (ok && (t == SB_EVENT_EXIT || t == SB_EVENT_STUB_EXIT))
    ok = add_end(o, ev->status, ev->signal);
  if (ok && t == SB_EVENT_STOP)
    ok = add_signal(o, ev->signal);
  if (ok && is_child_event(t))
    ok = cJSON_AddNumberToObject(o, "restarts", ev->restarts) != NULL;
  if (ok && (t == SB_EVENT_BACKOFF || t == SB_EVENT_ACCEPT_RESUMED))
    ok = add_raw_u64(o, "delay_ms", ev->delay_ms);
  if (ok && t == SB_EVENT_ACCEPT_PAUSED)
    ok = cJSON_AddStringToObject(o, "error", uv_err_name(ev->error)) != NULL;
  if (ok && t == SB_EVENT_STUB_REJECT)
    ok = cJSON_AddStringToObject(o, "reason", sb_reason_name(ev->reason)) != NULL;
  if (ok && t == SB_EVENT_STUB_EXIT)
    ok = cJSON_AddStringToObject(o, "close_reason",
                                 sb_close_reason_name(ev->close_reason)) != NULL;
  if (ok && ev->message != NULL)
    ok = cJSON_AddStringToObject(o, "message", ev->message) != NULL;
  if (ok && ev->conn != NULL && (t == SB_EVENT_STUB_CONNECT || t == SB_EVENT_STUB_EXIT))
    ok = add_argv(o, sb_conn_call(ev->conn));
  return ok;
}

int sb_event_to_json(const sb_event *ev, char **out) {
  cJSON *o;
  char *json = NULL;

  if (out == NULL)
    return -EINVAL;
  *out = NULL;
  if (ev == NULL)
    return -EINVAL;
  o = cJSON_CreateObject();
  if (o == NULL)
    return -ENOMEM;
  if (add_fields(o, ev))
    json = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  if (json == NULL)
    return -ENOMEM;
  /* cJSON allocates with malloc unless hooks were set; hand back memory
   * the caller can free(). */
  *out = strdup(json);
  cJSON_free(json);
  return *out != NULL ? 0 : -ENOMEM;
}
