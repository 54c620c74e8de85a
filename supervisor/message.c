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

#include <cjson/cJSON.h>

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

/* {"type":"error","error":code,"message":text}, compact; NULL without memory. */
static char *error_json(const char *code, const char *text) {
  cJSON *o = cJSON_CreateObject();
  char *s = NULL;
  if (o != NULL && cJSON_AddStringToObject(o, "type", "error") != NULL &&
      cJSON_AddStringToObject(o, "error", code) != NULL &&
      cJSON_AddStringToObject(o, "message", text) != NULL)
    s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

/* The reply frame, header included; a body too large for max_bytes becomes
 * a too_large error. */
static int reply_frame(const sb_message *msg, cJSON *body, uint8_t **frame, size_t *len) {
  uint32_t max = msg->conn->server->max_bytes;
  cJSON *root = cJSON_CreateObject();
  char *text = NULL;
  size_t n;
  int r = SB_ENOMEM;

  if (root == NULL || cJSON_AddStringToObject(root, "type", "reply") == NULL ||
      cJSON_AddNumberToObject(root, "version", msg->version) == NULL)
    goto out;
  cJSON_AddItemToObject(root, "message", body);
  text = cJSON_PrintUnformatted(root);
  cJSON_DetachItemFromObject(root, "message");
  if (text == NULL)
    goto out;
  n = strlen(text);
  if (n + 1 > max) {
    char big[96];
    snprintf(big, sizeof big, "the reply is over the frame bound (%u bytes)",
             (unsigned)max);
    free(text);
    text = error_json("too_large", big);
    if (text == NULL)
      goto out;
    /* Re-wrapped by hand: the error object is small and known. */
    char *wrapped = sb__strdupf("{\"type\":\"reply\",\"version\":%d,\"message\":%s}",
                                msg->version, text);
    free(text);
    text = wrapped;
    if (text == NULL)
      goto out;
    n = strlen(text);
  }
  *frame = malloc(SB_FRAME_HEADER + n);
  if (*frame == NULL)
    goto out;
  sb_frame_header(*frame, SB_KIND_CONTROL, (uint32_t)n);
  memcpy(*frame + SB_FRAME_HEADER, text, n);
  *len = SB_FRAME_HEADER + n;
  r = 0;
out:
  free(text);
  cJSON_Delete(root);
  return r;
}

int sb_message_reply(sb_message *msg, const char *json) {
  cJSON *body;
  sb_conn *conn;
  uint8_t *frame = NULL;
  size_t len = 0;
  int r;

  if (msg == NULL)
    return -EINVAL;
  body = json != NULL ? cJSON_Parse(json) : NULL;
  if (!cJSON_IsObject(body)) {
    cJSON_Delete(body);
    message_free(msg);
    return -EINVAL;
  }
  conn = msg->conn;
  if (conn == NULL || conn->state != SB__CONN_OPEN) {
    cJSON_Delete(body);
    message_free(msg);
    return -ENOTCONN;
  }
  r = reply_frame(msg, body, &frame, &len);
  cJSON_Delete(body);
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

static int reply_error(sb_message *msg, const char *code, const char *text) {
  char *json = error_json(code, text);
  int r;
  if (json == NULL) {
    if (msg->conn != NULL)
      sb__conn_close(msg->conn, SB_CLOSE_PROTOCOL, -ENOMEM);
    message_free(msg);
    return -ENOMEM;
  }
  r = sb_message_reply(msg, json);
  free(json);
  return r;
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

static cJSON *child_json(const sb_child *child) {
  cJSON *o = cJSON_CreateObject(), *argv;
  if (o == NULL)
    return NULL;
  cJSON_AddNumberToObject(o, "pid", child->pid);
  argv = cJSON_AddArrayToObject(o, "argv");
  for (size_t i = 0; argv != NULL && child->args != NULL && child->args[i] != NULL; i++)
    cJSON_AddItemToArray(argv, sb__json_bytes_new(child->args[i]));
  cJSON_AddStringToObject(o, "state", child_state_name(child));
  cJSON_AddNumberToObject(o, "restarts", child->restarts);
  return o;
}

static void add_u64(cJSON *o, const char *name, uint64_t v) {
  cJSON_AddNumberToObject(o, name, (double)v);
}

static cJSON *connections_json(const sb_server *server) {
  const sb_server_stats *st = &server->stats;
  cJSON *o = cJSON_CreateObject(), *rej;
  if (o == NULL)
    return NULL;
  add_u64(o, "accepted", st->accepted);
  add_u64(o, "welcomed", st->welcomed);
  add_u64(o, "open", st->open);
  add_u64(o, "lost", st->lost);
  add_u64(o, "accept_errors", st->accept_errors);
  add_u64(o, "messages", st->messages);
  rej = cJSON_AddObjectToObject(o, "rejected");
  for (int r = SB_REASON_BAD_TOKEN; rej != NULL && r <= SB_REASON_PROTOCOL; r++)
    add_u64(rej, sb_reason_name((sb_reason)r), st->rejected[r]);
  return o;
}

int sb_server_status_json(const sb_server *server, char **out) {
  cJSON *o, *children, *calls;
  const sb__link *l;
  uint64_t open = 0;

  if (server == NULL || out == NULL)
    return -EINVAL;
  *out = NULL;
  o = cJSON_CreateObject();
  if (o == NULL)
    return -ENOMEM;
  cJSON_AddStringToObject(o, "type", "status");
  cJSON_AddStringToObject(o, "version", sb_version_string());
  cJSON_AddNumberToObject(o, "protocol", SB_PROTOCOL_VERSION);
  cJSON_AddNumberToObject(o, "pid", getpid());
  add_u64(o, "uptime_ms", (uv_hrtime() - server->started_ns) / 1000000u);
  children = cJSON_AddArrayToObject(o, "children");
  for (l = server->children.next; children != NULL && l != &server->children;
       l = l->next) {
    const sb_child *c = sb__container_of(l, sb_child, link);
    if (c->state != SB__CHILD_ENDED)
      cJSON_AddItemToArray(children, child_json(c));
  }
  for (l = server->conns.next; l != &server->conns; l = l->next) {
    const sb_conn *c = sb__container_of(l, sb_conn, link);
    if (c->welcomed && c->state != SB__CONN_CLOSING)
      open++;
  }
  calls = cJSON_AddObjectToObject(o, "calls");
  if (calls != NULL) {
    add_u64(calls, "open", open);
    add_u64(calls, "served", server->stats.welcomed - open);
  }
  cJSON_AddItemToObject(o, "connections", connections_json(server));
  *out = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return *out != NULL ? 0 : -ENOMEM;
}

/* ---- the first frame: send -------------------------------------------------- */

/* An integer member in lo..hi, or def when absent (def < lo: required). */
static bool get_int(const cJSON *root, const char *name, int64_t lo, int64_t hi,
                    int64_t def, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, name);
  if (v == NULL && def >= lo) {
    *out = def;
    return true;
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int64_t)v->valuedouble ||
      v->valuedouble < (double)lo || v->valuedouble > (double)hi)
    return false;
  *out = (int64_t)v->valuedouble;
  return true;
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

/* Accepts the checked sender: no longer a handshake, not a call. */
static void accept_sender(sb_conn *conn, const cJSON *message, int64_t pid, int version) {
  sb_server *server = conn->server;
  const cJSON *type = cJSON_GetObjectItemCaseSensitive(message, "type");
  sb_message *msg = calloc(1, sizeof *msg);

  sb__conn_accept_sender(conn, version);
  server->stats.messages++;
  /* Nothing more is read from the sender until it has its reply. */
  sb_conn_pause(conn);
  if (msg != NULL) {
    msg->json = cJSON_PrintUnformatted(message);
    msg->type = sb__strdup(type->valuestring);
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
  const cJSON *type, *token, *message, *mtype;
  int64_t version, min_version, pid;
  cJSON *root;
  int hi;

  if (f->kind != SB_KIND_CONTROL || sb__json_precheck(f->data, f->len, NULL) < 0)
    return false;
  root = cJSON_ParseWithLength((const char *)f->data, f->len);
  type = cJSON_GetObjectItemCaseSensitive(root, "type");
  if (!cJSON_IsString(type) || strcmp(type->valuestring, "send") != 0) {
    cJSON_Delete(root);
    return false;
  }
  token = cJSON_GetObjectItemCaseSensitive(root, "token");
  message = cJSON_GetObjectItemCaseSensitive(root, "message");
  mtype = cJSON_GetObjectItemCaseSensitive(message, "type");
  if (!get_int(root, "version", 1, 65535, 0, &version) ||
      !get_int(root, "min_version", 1, version, version, &min_version) ||
      !get_int(root, "pid", 1, INT32_MAX, 0, &pid) || !cJSON_IsString(token)) {
    sb__conn_reject(
        conn, SB_REASON_PROTOCOL, true,
        "bad send: version, min_version, pid or token missing or out of range");
  } else if (!cJSON_IsObject(message) || !cJSON_IsString(mtype)) {
    sb__conn_reject(conn, SB_REASON_PROTOCOL, true,
                    "bad send: message: expected a JSON object with a string \"type\"");
  } else if ((hi = sb__conn_check_peer(conn, (int)version, (int)min_version,
                                       token->valuestring)) > 0) {
    accept_sender(conn, message, pid, hi);
  }
  if (cJSON_IsString(token))
    explicit_bzero(token->valuestring, strlen(token->valuestring));
  cJSON_Delete(root);
  return true;
}
