/* SPDX-License-Identifier: MIT */
/* server.c - the server object: options, accessors, statistics, the pool of
 * write requests, and the orderly close of everything the server owns. */
#include "sb_internal.h"

#include <dlfcn.h>

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SB_LIB_TO_BINDIR
#define SB_LIB_TO_BINDIR "../bin"
#endif
#ifndef SB_STUB_INSTALL_PATH
#define SB_STUB_INSTALL_PATH "/usr/local/bin/socketbridge-stub"
#endif

void *sb__page_alloc(size_t size) {
  void *p = NULL;
  return posix_memalign(&p, 4096, size) == 0 ? p : NULL;
}

char *sb__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

char *sb__strdupf(const char *fmt, ...) {
  va_list ap;
  char *p = NULL;
  va_start(ap, fmt);
  if (vasprintf(&p, fmt, ap) < 0)
    p = NULL;
  va_end(ap);
  return p;
}

/* The stub installed with this library, found from where the library (or,
 * linked statically, the program) itself lives: an install moved or made
 * with `cmake --install --prefix P` still finds P/bin/socketbridge-stub.
 * NULL when there is none there. */
static char *stub_beside_library(void) {
  Dl_info info;
  const char *slash;
  char *path, *real;

  if (dladdr((void *)&sb_server_new, &info) == 0 || info.dli_fname == NULL ||
      info.dli_fname[0] != '/')
    return NULL;
  slash = strrchr(info.dli_fname, '/');
  path = sb__strdupf("%.*s/%s/socketbridge-stub", (int)(slash - info.dli_fname),
                     info.dli_fname, SB_LIB_TO_BINDIR);
  if (path == NULL)
    return NULL;
  real = access(path, X_OK) == 0 ? realpath(path, NULL) : NULL;
  free(path);
  return real;
}

/* The stub path children are given: the caller's, else the supervisor's own
 * $SOCKETBRIDGE_STUB when absolute, else the one installed beside this
 * library, else the first socketbridge-stub on PATH (a program linked with
 * the static library, installed anywhere), else the configured install
 * path. A relative path is made absolute now, since children may run
 * anywhere. */
static int resolve_stub_path(const char *given, char **out) {
  const char *p = given;
  char cwd[4096], found[PATH_MAX];

  if (p == NULL || p[0] == '\0') {
    const char *env = getenv(SB_ENV_STUB);
    if (env != NULL && env[0] == '/')
      p = env;
    else if ((*out = stub_beside_library()) != NULL)
      return 0;
    else if (sb_path_find("socketbridge-stub", getenv("PATH"), NULL, NULL, found,
                          sizeof found) == 0)
      p = found;
    else
      p = SB_STUB_INSTALL_PATH;
  }
  if (p[0] == '/') {
    *out = sb__strdup(p);
  } else {
    if (getcwd(cwd, sizeof cwd) == NULL)
      return -errno;
    *out = sb__strdupf("%s/%s", cwd, p);
  }
  return *out != NULL ? 0 : -ENOMEM;
}

int sb_default_stub_path(char *buf, size_t size) {
  char *path;
  size_t n;
  int r;

  if (buf == NULL)
    return -EINVAL;
  r = resolve_stub_path(NULL, &path);
  if (r < 0)
    return r;
  n = strlen(path);
  r = n < size ? 0 : -ENAMETOOLONG;
  if (r == 0)
    memcpy(buf, path, n + 1);
  free(path);
  return r;
}

/* A stub that dies while we write to it would otherwise kill the whole
 * supervisor with SIGPIPE: libuv writes with writev(2), which has no
 * MSG_NOSIGNAL. A caller who installed a handler keeps it. Children are not
 * affected: uv_spawn resets every signal to its default in the child. */
static void ignore_sigpipe(void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) != 0)
    return;
  if ((sa.sa_flags & SA_SIGINFO) || sa.sa_handler != SIG_DFL)
    return;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);
}

void sb__server_free(sb_server *server) {
  sb__write_req *req;
  while ((req = server->free_reqs) != NULL) {
    server->free_reqs = req->next_free;
    free(req);
  }
  sb_allowlist_free(&server->allow);
  free(server->hs_rbuf);
  free(server->address);
  free(server->sock_dir);
  free(server->stub_path);
  free(server);
}

int sb_server_new(uv_loop_t *loop, const sb_server_options *opts, sb_server **out) {
  sb_server *server;
  sb_diag diag;
  int r;

  if (out != NULL)
    *out = NULL;
  if (loop == NULL || opts == NULL || out == NULL)
    return -EINVAL;
  if (opts->transport != SB_TRANSPORT_TCP && opts->transport != SB_TRANSPORT_UNIX &&
      opts->transport != SB_TRANSPORT_NONE)
    return -EINVAL;
  if (opts->on_connect == NULL && opts->transport != SB_TRANSPORT_NONE)
    return -EINVAL;
  if (opts->socket_path != NULL && opts->transport != SB_TRANSPORT_UNIX)
    return -EINVAL;
  if (opts->max_bytes != 0 &&
      (opts->max_bytes < SB_MIN_MAX_BYTES || opts->max_bytes > SB_MAX_MAX_BYTES))
    return -EINVAL;

  server = calloc(1, sizeof *server);
  if (server == NULL)
    return -ENOMEM;
  server->loop = loop;
  server->listen_fd = -1;
  server->sock_dir_lock = -1;
  server->transport = opts->transport;
  server->max_bytes = opts->max_bytes != 0 ? opts->max_bytes : SB_DEFAULT_MAX_BYTES;
  server->max_connections = opts->max_connections; /* 0: no bound */
  server->handshake_timeout_ms = opts->handshake_timeout_ms != 0
                                     ? opts->handshake_timeout_ms
                                     : SB__DEFAULT_HANDSHAKE_MS;
  server->on_connect = opts->on_connect;
  server->on_reject = opts->on_reject;
  server->on_event = opts->on_event;
  server->data = opts->data;
  server->on_message = opts->on_message;
  server->started_ns = uv_hrtime();
  sb__list_init(&server->tickets);
  sb__list_init(&server->conns);
  sb__list_init(&server->children);

  if (opts->allowlist != NULL && opts->transport == SB_TRANSPORT_TCP) {
    r = sb_allowlist_parse(opts->allowlist, &server->allow, &diag);
    if (r < 0)
      goto error;
    server->have_allow = true;
  }
  r = resolve_stub_path(opts->stub_path, &server->stub_path);
  if (r < 0)
    goto error;

  /* Without a bridge, nothing listens: the server only supervises. */
  r = opts->transport != SB_TRANSPORT_NONE ? sb__listener_start(server, opts) : 0;
  if (r < 0)
    goto error;

  ignore_sigpipe();
  *out = server;
  return 0;

error:
  if (!server->free_on_close)
    sb__server_free(server);
  return r;
}

void sb_server_close(sb_server *server, sb_server_close_cb cb) {
  sb__link *l, *next;

  if (server == NULL || server->closing)
    return;
  server->closing = true;
  server->close_cb = cb;

  sb__listener_close(server);
  for (l = server->conns.next; l != &server->conns; l = l->next)
    sb__conn_close(sb__container_of(l, sb_conn, link), SB_CLOSE_SERVER, 0);
  sb__children_kill_all(server);
  /* Tickets of children go when their child's exit is reported; the others
   * go now, so no stub can be admitted with them any more. */
  for (l = server->tickets.next; l != &server->tickets; l = next) {
    sb_ticket *t = sb__container_of(l, sb_ticket, link);
    next = l->next;
    if (t->child == NULL)
      sb_ticket_free(t);
  }
  sb__server_maybe_finish(server);
}

void sb__server_maybe_finish(sb_server *server) {
  if (!server->closing || server->finished)
    return;
  if (server->listener_handles > 0 || !sb__list_empty(&server->conns) ||
      !sb__list_empty(&server->children))
    return;
  if (!sb__children_close(server))
    return;
  server->finished = true;
  sb__tickets_free_all(server);
  if (server->close_cb != NULL)
    server->close_cb(server);
  sb__server_free(server);
}

sb__write_req *sb__req_get(sb_server *server) {
  sb__write_req *req = server->free_reqs;
  if (req != NULL) {
    server->free_reqs = req->next_free;
    server->nfree_reqs--;
  } else {
    req = malloc(sizeof *req);
    if (req == NULL)
      return NULL;
  }
  req->conn = NULL;
  req->cb = NULL;
  req->data = NULL;
  req->owned = NULL;
  req->frames = NULL;
  req->bytes = 0;
  req->next_free = NULL;
  return req;
}

void sb__req_put(sb_server *server, sb__write_req *req) {
  free(req->owned);
  free(req->frames);
  req->owned = req->frames = NULL;
  if (server->nfree_reqs >= SB__WRITE_POOL_MAX) {
    free(req);
    return;
  }
  req->next_free = server->free_reqs;
  server->free_reqs = req;
  server->nfree_reqs++;
}

void *sb_server_data(const sb_server *server) {
  return server->data;
}

uv_loop_t *sb_server_loop(const sb_server *server) {
  return server->loop;
}

uint16_t sb_server_port(const sb_server *server) {
  return server->port;
}

const char *sb_server_address(const sb_server *server) {
  return server->address;
}

const char *sb_server_stub_path(const sb_server *server) {
  return server->stub_path;
}

void sb_server_stats_get(const sb_server *server, sb_server_stats *out) {
  *out = server->stats;
}
