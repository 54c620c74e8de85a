/* SPDX-License-Identifier: MIT */
/* serve.c - `socketbridge serve`: the supervisor driven by a controller over
 * the control channel (docs/control.md). This file: the command line, the
 * dispatch of requests, side-band messages, events, status and the end.
 * Calls are serve_call.c's; tickets, shims and procs serve_proc.c's; ids
 * and request members serve_util.c's; the framing control.c's. */
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

#include "proto.h"

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
  sb_jw w;
  char *json;
  size_t len;
  sb_jw_init(&w, 0, 256, 4096);
  sb_jw_open(&w, '{');
  sb_jw_add_bytes(&w, "type", "error");
  sb_jw_add_bytes(&w, "error", code);
  sb_jw_add_bytes(&w, "message", text);
  sb_jw_close(&w, '}');
  sb_jw_end(&w, &json, &len);
  sb_message_reply(msg,
                   json != NULL ? json : "{\"type\":\"error\",\"error\":\"failed\"}");
  free(json);
}

static srv_message *pending_head(serve *s) {
  if (s->pending.next == &s->pending)
    return NULL;
  return (srv_message *)(void *)((char *)s->pending.next -
                                 offsetof(srv_message, pending));
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
    uv_timer_start(&s->message_timer, on_message_timer, SRV_MESSAGE_MS - (now - m->at),
                   0);
}

static void on_message(sb_server *server, sb_message *msg) {
  serve *s = sb_server_data(server);
  srv_message *m;
  char text[160];
  uint64_t proc = 0, ticket = srv_ticket_id(sb_message_ticket(msg), &proc);
  sb_jw o;

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
  srv_open(&o, "message");
  sb_jw_add_int(&o, "message", (int64_t)m->obj.id);
  srv_add_raw(&o, "body", sb_message_json(msg));
  sb_jw_add_int(&o, "pid", sb_message_pid(msg));
  srv_add_id(&o, "ticket", ticket);
  srv_add_id(&o, "proc", proc);
  srv_send(s, &o);
}

static int req_reply(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
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

static int req_messages(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  (void)ok;
  return req_switch(&s->messages, req, err);
}

static int req_events(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  (void)ok;
  return req_switch(&s->events, req, err);
}

static int req_status(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  char *json;
  int r = sb_server_status_json(s->server, &json);
  (void)req;
  if (r < 0)
    return srv_failed(err, r, "status");
  srv_add_raw(ok, "status", json);
  free(json);
  return 0;
}

/* ---- events ------------------------------------------------------------------------ */

static void on_event(sb_server *server, const sb_event *ev) {
  serve *s = sb_server_data(server);
  uint64_t proc = srv_proc_on_event(s, ev), call;
  char *json;
  sb_jw o;

  if (ev->type == SB_EVENT_STUB_CONNECT)
    srv_call_on_stub_connect(s, ev->conn);
  if (!s->events || sb_event_to_json(ev, &json) < 0)
    return;
  srv_open(&o, "event");
  srv_add_raw(&o, "event", json);
  free(json);
  if ((call = srv_call_id(ev->conn)) != 0)
    sb_jw_add_int(&o, "call", (int64_t)call);
  if (proc != 0)
    sb_jw_add_int(&o, "proc", (int64_t)proc);
  srv_send(s, &o);
}

static void on_connect(sb_server *server, sb_conn *conn) {
  srv_call_on_connect(sb_server_data(server), conn);
}

/* ---- requests --------------------------------------------------------------------- */

static void shutdown_serve(serve *s, int status);

static int req_shutdown(serve *s, const cJSON *req, sb_jw *ok, srv_err *err) {
  (void)req;
  (void)ok;
  (void)err;
  s->shutdown_requested = true; /* after the answer goes out */
  return 0;
}

typedef int (*req_fn)(serve *s, const cJSON *req, sb_jw *ok, srv_err *err);

static const struct {
  const char *type;
  req_fn fn;
} requests[] = {
    {"ticket", srv_req_ticket}, {"ticket_free", srv_req_ticket_free},
    {"shim", srv_req_shim},     {"spawn", srv_req_spawn},
    {"stop", srv_req_stop},     {"kill", srv_req_kill},
    {"messages", req_messages}, {"reply", req_reply},
    {"events", req_events},     {"status", req_status},
    {"shutdown", req_shutdown},
};

/* id 0: null (the request had no valid one). */
static void answer_error(serve *s, uint64_t id, const srv_err *err) {
  sb_jw o;
  srv_open(&o, "error");
  srv_add_id(&o, "id", id);
  sb_jw_add_bytes(&o, "error", err->code);
  sb_jw_add_bytes(&o, "message", err->msg);
  if (err->errno_name != NULL)
    sb_jw_add_bytes(&o, "errno", err->errno_name);
  srv_send(s, &o);
}

/* Runs one request; fills ok or err. */
static int run_request(serve *s, const cJSON *req, const char *type, sb_jw *ok,
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
  cJSON *req = NULL;
  const cJSON *type;
  sb_jw ok;
  uint64_t idv = 0;
  sb_diag diag;
  char *text;
  size_t text_len;

  memset(&diag, 0, sizeof diag);
  /* lib/'s reader holds the request to the protocol's grammar (UTF-8, no
   * \u0000: docs/protocol.md section 2) before cJSON builds its tree. */
  sb_jr j = {(const uint8_t *)buf, len, &diag};
  sb_jr_index none = {NULL, 0, {0}, {0}};
  if (sb_jr_document(&j, &none) < 0) {
    srv_fail(&err, "bad_request", "%s", diag.msg);
    answer_error(s, 0, &err);
    return;
  }
  req = cJSON_ParseWithLength(buf, len);
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
    answer_error(s, idv, &err);
    cJSON_Delete(req);
    return;
  }
  srv_open(&ok, "ok");
  sb_jw_add_int(&ok, "id", (int64_t)idv);
  if (run_request(s, req, type->valuestring, &ok, &err) < 0) {
    sb_jw_end(&ok, &text, &text_len); /* dropped: the error goes instead */
    free(text);
    answer_error(s, idv, &err);
  } else {
    srv_send(s, &ok);
  }
  cJSON_Delete(req);
  if (s->shutdown_requested)
    shutdown_serve(s, 0);
}

/* ---- the channel's events -----------------------------------------------------------
 */

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
    sb_jw o;
    srv_open(&o, "error");
    srv_add_id(&o, "id", 0);
    sb_jw_add_bytes(&o, "error", "bad_frame");
    sb_jw_add_bytes(&o, "message", why);
    srv_send(s, &o);
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

/* ---- the end ------------------------------------------------------------------------
 */

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
  sb_jw o;
  srv_open(&o, "ready");
  sb_jw_add_int(&o, "version", 1);
  sb_jw_add_bytes(&o, "socketbridge", sb_version_string());
  sb_jw_add_int(&o, "pid", getpid());
  if (transport == SB_TRANSPORT_TCP) {
    sb_jw_add_bytes(&o, "transport", "tcp");
    sb_jw_add_bytes(&o, "host", sb_server_address(s->server));
    sb_jw_add_int(&o, "port", sb_server_port(s->server));
  } else {
    sb_jw_add_bytes(&o, "transport", "unix");
    sb_jw_add_bytes(&o, "socket", sb_server_address(s->server));
  }
  sb_jw_add_bytes(&o, "stub", sb_server_stub_path(s->server));
  srv_send(s, &o);
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
  sb__vec_free(s.shim_names);
  free(s.shim_exec);
  srv_objs_free(&s);
  free(stub);
  return s.status;
}
