/* SPDX-License-Identifier: MIT */
/* ticket.c - tokens a server admits, and the environment that carries one
 * to a child. A token lives in exactly two places: its ticket, and the
 * environment of the child it is handed to. Both copies here are wiped
 * before their memory is freed. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

static void wipe_free(char *s) {
  if (s == NULL)
    return;
  explicit_bzero(s, strlen(s));
  free(s);
}

static int build_env(sb_ticket *t) {
  const sb_server *server = t->server;
  size_t i = 0;

  /* No bridge: nothing to reach, so the child learns nothing of one. */
  if (server->transport == SB_TRANSPORT_NONE)
    return 0;
  t->env[i++] = sb__strdupf("%s=%s", SB_ENV_TOKEN, t->token);
  if (server->transport == SB_TRANSPORT_UNIX) {
    t->env[i++] = sb__strdupf("%s=%s", SB_ENV_SOCKET, server->address);
  } else {
    t->env[i++] = sb__strdupf("%s=%s", SB_ENV_HOST, server->address);
    t->env[i++] = sb__strdupf("%s=%u", SB_ENV_PORT, (unsigned)server->port);
  }
  if (server->max_bytes != SB_DEFAULT_MAX_BYTES)
    t->env[i++] = sb__strdupf("%s=%u", SB_ENV_MAX_BYTES, (unsigned)server->max_bytes);
  t->env[i++] = sb__strdupf("%s=%s", SB_ENV_STUB, server->stub_path);
  t->env[i] = NULL;
  while (i-- > 0)
    if (t->env[i] == NULL)
      return -ENOMEM;
  return 0;
}

static void ticket_destroy(sb_ticket *t) {
  size_t i;
  for (i = 0; i < sizeof t->env / sizeof t->env[0]; i++)
    wipe_free(t->env[i]);
  explicit_bzero(t->token, sizeof t->token);
  free(t);
}

int sb__ticket_create(sb_server *server, sb_child *child, sb_ticket **out) {
  sb_ticket *t;
  int r;

  *out = NULL;
  if (server->closing)
    return -ECANCELED;
  t = calloc(1, sizeof *t);
  if (t == NULL)
    return -ENOMEM;
  t->server = server;
  t->child = child;
  r = sb_token_new(t->token);
  if (r == 0)
    r = build_env(t);
  if (r < 0) {
    ticket_destroy(t);
    return r;
  }
  sb__list_push(&server->tickets, &t->link);
  *out = t;
  return 0;
}

int sb_ticket_new(sb_server *server, sb_ticket **out) {
  if (out != NULL)
    *out = NULL;
  if (server == NULL || out == NULL)
    return -EINVAL;
  if (server->transport == SB_TRANSPORT_NONE)
    return -ENOTSUP;
  return sb__ticket_create(server, NULL, out);
}

void sb_ticket_free(sb_ticket *ticket) {
  if (ticket == NULL)
    return;
  sb__conns_forget(ticket->server, ticket, NULL);
  if (ticket->child != NULL)
    ticket->child->ticket = NULL;
  sb__list_remove(&ticket->link);
  ticket_destroy(ticket);
}

void sb__tickets_free_all(sb_server *server) {
  while (!sb__list_empty(&server->tickets))
    sb_ticket_free(sb__container_of(server->tickets.next, sb_ticket, link));
}

sb_ticket *sb__ticket_lookup(sb_server *server, const char *token) {
  sb_ticket *found = NULL;
  sb__link *l;
  /* No early exit: how long this takes says nothing about which ticket, if
   * any, matched. */
  for (l = server->tickets.next; l != &server->tickets; l = l->next) {
    sb_ticket *t = sb__container_of(l, sb_ticket, link);
    if (sb_token_equal(t->token, token))
      found = t;
  }
  return found;
}

char *const *sb_ticket_env(const sb_ticket *ticket) {
  return ticket->env;
}

void sb_ticket_set_data(sb_ticket *ticket, void *data) {
  ticket->data = data;
}

void *sb_ticket_data(const sb_ticket *ticket) {
  return ticket->data;
}
