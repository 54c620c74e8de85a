/* SPDX-License-Identifier: MIT */
/* conn_info.c - what the caller may ask of a connection: the call the stub
 * made, and the objects it belongs to. Reads only; conn.c owns the state. */
#include "sb_internal.h"

#include <string.h>

void *sb_conn_data(const sb_conn *conn) {
  return conn->data;
}

const sb_call *sb_conn_call(const sb_conn *conn) {
  return &conn->call;
}

const char *sb_conn_getenv(const sb_conn *conn, const char *name) {
  size_t i, len;
  if (conn == NULL || name == NULL)
    return NULL;
  len = strlen(name);
  if (len == 0 || strchr(name, '=') != NULL)
    return NULL;
  for (i = 0; i < conn->call.envc; i++) {
    const char *e = conn->call.env[i];
    if (strncmp(e, name, len) == 0 && e[len] == '=')
      return e + len + 1;
  }
  return NULL;
}

sb_ticket *sb_conn_ticket(const sb_conn *conn) {
  return conn->ticket;
}

sb_child *sb_conn_child(const sb_conn *conn) {
  return conn->child;
}

sb_server *sb_conn_server(const sb_conn *conn) {
  return conn->server;
}
