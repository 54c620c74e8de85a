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
  if (conn == NULL || name == NULL)
    return NULL;
  return sb__env_value_n(conn->call.env, conn->call.envc, name, SB__ENV_FIRST);
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
