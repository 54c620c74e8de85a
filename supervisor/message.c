/* SPDX-License-Identifier: MIT */
/* message.c - side-band messages, server side: a peer whose first frame is
 * `send` instead of `hello` (docs/protocol.md section 7) gets the same
 * checks as a stub (conn.c's sb__conn_check_peer), then one reply, and its
 * connection closes. ping and status are answered here; other types go to
 * the server's on_message, else get a no_handler error. Also the status
 * object, which `serve` hands its controller too. The client, sb_send, is
 * send.c's. */
#include "sb_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"

struct sb_message {
  sb_conn *conn; /* the sender's connection; NULL once it is gone */
  char *json;    /* the message, compact */
  char *type;
  int64_t pid;
  int version; /* chosen in the check: the reply's */
};

static void message_free(sb_message *msg) {
  if (msg->conn != NULL)
    sb__conn_set_message(msg->conn, NULL);
  free(msg->json);
  free(msg->type);
  free(msg);
}

void sb__message_detach(sb_message *msg) {
  msg->conn = NULL;
}

const char *sb_message_json(const sb_message *msg) {
  return msg->json;
}

const char *sb_message_type(const sb_message *msg) {
  return msg->type;
}

int64_t sb_message_pid(const sb_message *msg) {
  return msg->pid;
}

sb_ticket *sb_message_ticket(const sb_message *msg) {
  return msg->conn != NULL ? msg->conn->ticket : NULL;
}

/* ---- replying --------------------------------------------------------------- */

/* {"type":"error","error":code,"message":text}, into w. */
static void put_error(sb_jw *w, const char *code, const char *text) {
  sb_jw_open(w, '{');
  sb_jw_key(w, "type");
  sb_jw_str(w, "error");
  sb_jw_key(w, "error");
  sb_jw_str(w, code);
  sb_jw_key(w, "message");
  sb_jw_str(w, text);
  sb_jw_close(w, '}');
}

/* {"type":"reply","version":V,"message":...} into a frame, header
 * included: body is checked JSON (NULL: the error object). */
static int reply_text(const sb_message *msg, const char *body, const char *code,
                      const char *text, uint8_t **frame, size_t *len) {
  sb_jw w;
  sb_jw_init(&w, SB_FRAME_HEADER, 256, msg->conn->server->max_bytes);
  sb_jw_open(&w, '{');
  sb_jw_key(&w, "type");
  sb_jw_str(&w, "reply");
  sb_jw_key(&w, "version");
  sb_jw_int(&w, msg->version);
  sb_jw_key(&w, "message");
  if (body != NULL)
    sb_jw_json(&w, (const uint8_t *)body, strlen(body));
  else
    put_error(&w, code, text);
  sb_jw_close(&w, '}');
  int r = sb_jw_end(&w, (char **)frame, len);
  if (r == 0)
    sb_frame_header(*frame, SB_KIND_CONTROL, (uint32_t)(*len - SB_FRAME_HEADER));
  return r;
}

/* The reply frame; a body too large for max_bytes becomes a too_large
 * error. */
static int reply_frame(const sb_message *msg, const char *body, const char *code,
                       const char *text, uint8_t **frame, size_t *len) {
  char big[96];
  int r = reply_text(msg, body, code, text, frame, len);
  if (r != SB_EMSGSIZE)
    return r;
  snprintf(big, sizeof big, "the reply is over the frame bound (%u bytes)",
           (unsigned)msg->conn->server->max_bytes);
  return reply_text(msg, NULL, "too_large", big, frame, len);
}

/* Sends the reply (body, or the error code and text when body is NULL);
 * frees msg. */
static int reply(sb_message *msg, const char *body, const char *code, const char *text) {
  sb_conn *conn = msg->conn;
  uint8_t *frame = NULL;
  size_t len = 0;
  int r;

  if (conn == NULL || conn->state != SB__CONN_OPEN) {
    message_free(msg);
    return -ENOTCONN;
  }
  r = reply_frame(msg, body, code, text, &frame, &len);
  message_free(msg);
  if (r < 0)
    return r;
  if ((r = sb__conn_send_owned(conn, frame, len)) < 0)
    return r;
  /* Nothing follows the reply: FIN after it, and read on until the sender
   * closes its end, which conn.c sees as a connection that ended as told. */
  sb__conn_replied(conn);
  return 0;
}

/* True when json is one JSON object. */
static bool is_object(const char *json) {
  sb_jr j = {(const uint8_t *)json, strlen(json), NULL};
  sb_jr_index none = {NULL, 0, {0}, {0}};
  return sb_jr_document(&j, &none) == 0;
}

int sb_message_reply(sb_message *msg, const char *json) {
  if (msg == NULL)
    return -EINVAL;
  if (json == NULL || !is_object(json)) {
    message_free(msg);
    return -EINVAL;
  }
  return reply(msg, json, NULL, NULL);
}

static int reply_error(sb_message *msg, const char *code, const char *text) {
  return reply(msg, NULL, code, text);
}

/* ---- status ------------------------------------------------------------------ */

static const char *child_state_name(const sb_child *child) {
  switch (child->state) {
  case SB__CHILD_RUNNING:
  case SB__CHILD_REAPED:
    return "running";
  case SB__CHILD_BACKOFF:
    return "backoff";
  default:
    return "ending";
  }
}

static void add_child(sb_jw *w, const sb_child *child) {
  sb_jw_open(w, '{');
  sb_jw_add_int(w, "pid", child->pid);
  sb_jw_key(w, "argv");
  sb_jw_open(w, '[');
  for (size_t i = 0; child->args != NULL && child->args[i] != NULL; i++)
    sb_jw_bytes(w, child->args[i]);
  sb_jw_close(w, ']');
  sb_jw_add_str(w, "state", child_state_name(child));
  sb_jw_add_int(w, "restarts", child->restarts);
  sb_jw_close(w, '}');
}

static void add_connections(sb_jw *w, const sb_server *server) {
  const sb_server_stats *st = &server->stats;
  sb_jw_key(w, "connections");
  sb_jw_open(w, '{');
  sb_jw_add_int(w, "accepted", (int64_t)st->accepted);
  sb_jw_add_int(w, "welcomed", (int64_t)st->welcomed);
  sb_jw_add_int(w, "open", (int64_t)st->open);
  sb_jw_add_int(w, "lost", (int64_t)st->lost);
  sb_jw_add_int(w, "accept_errors", (int64_t)st->accept_errors);
  sb_jw_add_int(w, "messages", (int64_t)st->messages);
  sb_jw_key(w, "rejected");
  sb_jw_open(w, '{');
  for (int r = SB_REASON_BAD_TOKEN; r <= SB_REASON_PROTOCOL; r++)
    sb_jw_add_int(w, sb_reason_name((sb_reason)r), (int64_t)st->rejected[r]);
  sb_jw_close(w, '}');
  sb_jw_close(w, '}');
}

/* A status may list many children with long argvs: bounded all the same. */
#define STATUS_MAX ((size_t)SB_CTL_MAX_BYTES)

int sb_server_status_json(const sb_server *server, char **out) {
  const sb__link *l;
  uint64_t open = 0;
  size_t len;
  sb_jw w;

  if (server == NULL || out == NULL)
    return -EINVAL;
  *out = NULL;
  sb_jw_init(&w, 0, 512, STATUS_MAX);
  sb_jw_open(&w, '{');
  sb_jw_add_str(&w, "type", "status");
  sb_jw_add_str(&w, "version", sb_version_string());
  sb_jw_add_int(&w, "protocol", SB_PROTOCOL_VERSION);
  sb_jw_add_int(&w, "pid", getpid());
  sb_jw_add_int(&w, "uptime_ms", (int64_t)((uv_hrtime() - server->started_ns) / 1000000u));
  sb_jw_key(&w, "children");
  sb_jw_open(&w, '[');
  for (l = server->children.next; l != &server->children; l = l->next) {
    const sb_child *c = sb__container_of(l, sb_child, link);
    if (c->state != SB__CHILD_ENDED)
      add_child(&w, c);
  }
  sb_jw_close(&w, ']');
  for (l = server->conns.next; l != &server->conns; l = l->next) {
    const sb_conn *c = sb__container_of(l, sb_conn, link);
    if (c->welcomed && c->state != SB__CONN_CLOSING)
      open++;
  }
  sb_jw_key(&w, "calls");
  sb_jw_open(&w, '{');
  sb_jw_add_int(&w, "open", (int64_t)open);
  sb_jw_add_int(&w, "served", (int64_t)(server->stats.welcomed - open));
  sb_jw_close(&w, '}');
  add_connections(&w, server);
  sb_jw_close(&w, '}');
  return sb_jw_end(&w, out, &len) == 0 ? 0 : -ENOMEM;
}

/* ---- the first frame: send -------------------------------------------------- */

/* The members of a send (docs/protocol.md section 7). */
static const char *const send_names[] = {"type", "version", "min_version",
                                         "pid",  "token",   "message"};
enum { S_TYPE, S_VERSION, S_MIN_VERSION, S_PID, S_TOKEN, S_MESSAGE };

/* Member k's value, or SIZE_MAX when absent. */
static size_t at(const sb_jr_index *ix, int k) {
  return ix->count[k] > 0 ? ix->at[k] : SIZE_MAX;
}

/* An integer member in lo..hi, or def when absent (def < lo: required). */
static bool get_int(const sb_jr *j, size_t where, int64_t lo, int64_t hi, int64_t def,
                    int64_t *out) {
  if (where == SIZE_MAX && def >= lo) {
    *out = def;
    return true;
  }
  return sb_jr_kind_at(j, where) == SB_JR_NUMBER && sb_jr_int(j, where, lo, hi, out) == 0;
}

/* True when the string at where is s. */
static bool string_is(const sb_jr *j, size_t where, const char *s) {
  char *v = NULL;
  bool is = sb_jr_kind_at(j, where) == SB_JR_STRING && sb_jr_string(j, where, &v) == 0 &&
            strcmp(v, s) == 0;
  free(v);
  return is;
}

/* What the server does with an accepted message. */
static void dispatch(sb_server *server, sb_message *msg) {
  char text[160];
  char *json;

  if (strcmp(msg->type, "ping") == 0) {
    sb_message_reply(msg, "{\"type\":\"pong\"}");
  } else if (strcmp(msg->type, "status") == 0) {
    if (sb_server_status_json(server, &json) < 0) {
      reply_error(msg, "failed", "out of memory");
      return;
    }
    sb_message_reply(msg, json);
    free(json);
  } else if (server->on_message != NULL) {
    server->on_message(server, msg);
  } else {
    snprintf(text, sizeof text, "no handler for messages of type \"%.100s\"", msg->type);
    reply_error(msg, "no_handler", text);
  }
}

/* Accepts the checked sender: no longer a handshake, not a call. The
 * message (at offset where of j, its type at type) is kept compact. */
static void accept_sender(sb_conn *conn, const sb_jr *j, size_t where, size_t type,
                          int64_t pid, int version) {
  sb_server *server = conn->server;
  sb_message *msg = calloc(1, sizeof *msg);
  size_t end = where, len;
  sb_jw w;

  sb__conn_accept_sender(conn, version);
  server->stats.messages++;
  /* Nothing more is read from the sender until it has its reply. */
  sb_conn_pause(conn);
  if (msg != NULL && sb_jr_skip(j, &end) == 0 && sb_jr_string(j, type, &msg->type) == 0) {
    sb_jw_init(&w, 0, end - where + 1, end - where + 1);
    sb_jw_json(&w, j->p + where, end - where);
    sb_jw_end(&w, &msg->json, &len);
  }
  if (msg == NULL || msg->json == NULL || msg->type == NULL) {
    if (msg != NULL)
      message_free(msg);
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, -ENOMEM);
    return;
  }
  msg->conn = conn;
  msg->pid = pid;
  msg->version = version;
  sb__conn_set_message(conn, msg);
  dispatch(server, msg);
}

bool sb__message_first_frame(sb_conn *conn, const sb_frame *f) {
  static const char *const type_name[] = {"type"};
  sb_jr j = {f->data, f->len, NULL};
  sb_jr_index ix = {send_names, 6, {0}, {0}}, mix = {type_name, 1, {0}, {0}};
  int64_t version, min_version, pid;
  char *token = NULL;
  size_t message;
  int hi;

  if (f->kind != SB_KIND_CONTROL || sb_jr_document(&j, &ix) < 0 ||
      !string_is(&j, at(&ix, S_TYPE), "send"))
    return false;
  message = at(&ix, S_MESSAGE);
  if (sb_jr_kind_at(&j, at(&ix, S_TOKEN)) == SB_JR_STRING &&
      sb_jr_string(&j, at(&ix, S_TOKEN), &token) < 0) {
    sb__conn_close(conn, SB_CLOSE_PROTOCOL, -ENOMEM);
    return true;
  }
  if (!get_int(&j, at(&ix, S_VERSION), 1, 65535, 0, &version) ||
      !get_int(&j, at(&ix, S_MIN_VERSION), 1, version, version, &min_version) ||
      !get_int(&j, at(&ix, S_PID), 1, INT32_MAX, 0, &pid) || token == NULL) {
    sb__conn_reject(
        conn, SB_REASON_PROTOCOL, true,
        "bad send: version, min_version, pid or token missing or out of range");
  } else if (sb_jr_kind_at(&j, message) != SB_JR_OBJECT ||
             sb_jr_object_index(&j, message, &mix) < 0 || mix.count[0] == 0 ||
             sb_jr_kind_at(&j, mix.at[0]) != SB_JR_STRING) {
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true,
                    "bad send: message: expected a JSON object with a string \"type\"");
  } else if ((hi = sb__conn_check_peer(conn, (int)version, (int)min_version, token)) >
             0) {
    accept_sender(conn, &j, message, mix.at[0], pid, hi);
  }
  if (token != NULL)
    explicit_bzero(token, strlen(token));
  free(token);
  return true;
}
