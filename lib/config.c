/* SPDX-License-Identifier: MIT */
/* config.c - the SOCKETBRIDGE_* variables, read and checked. */
#include "proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/un.h>

extern char **environ;

static int bad_value(sb_diag *diag, const char *name, const char *value,
                     const char *what) {
  char quoted[96];
  sb__quote(quoted, sizeof quoted, value);
  return sb_diag_set(diag, SB_EINVAL, "%s: %s is %s", name, quoted, what);
}

static int read_token(const char *v, sb_config *c, sb_diag *diag) {
  /* Whatever is wrong with it, the value itself is never repeated. */
  if (!sb_token_valid(v))
    return sb_diag_set(diag, SB_EINVAL, "%s: not %d lowercase hex digits", SB_ENV_TOKEN,
                       SB_TOKEN_HEX);
  memcpy(c->token, v, SB_TOKEN_HEX + 1);
  return 0;
}

static int read_host(const char *v, sb_config *c, sb_diag *diag) {
  uint8_t addr[16];
  if (strlen(v) >= sizeof c->host ||
      (inet_pton(AF_INET, v, addr) != 1 && inet_pton(AF_INET6, v, addr) != 1))
    return bad_value(diag, SB_ENV_HOST, v, "not an IPv4 or IPv6 address");
  strcpy(c->host, v);
  return 0;
}

static int read_port(const char *v, sb_config *c, sb_diag *diag) {
  uint64_t port;
  if (!sb__parse_uint(v, 65535, &port) || port == 0)
    return bad_value(diag, SB_ENV_PORT, v, "not a port number (1..65535)");
  c->port = (uint16_t)port;
  return 0;
}

static int read_socket(const char *v, sb_config *c, sb_diag *diag) {
  if (v[0] != '/' && !(v[0] == '@' && v[1] != '\0'))
    return bad_value(diag, SB_ENV_SOCKET, v, "not an absolute path or @name");
  size_t n = strlen(v);
  if (n >= sizeof c->socket_path)
    return sb_diag_set(diag, SB_EINVAL,
                       "%s: path is %zu bytes, over the %zu a Unix socket address holds",
                       SB_ENV_SOCKET, n, sizeof c->socket_path - 1);
  memcpy(c->socket_path, v, n + 1);
  return 0;
}

static int read_max_bytes(const char *v, sb_config *c, sb_diag *diag) {
  uint64_t n;
  if (!sb__parse_uint(v, SB_MAX_MAX_BYTES, &n) || n < SB_MIN_MAX_BYTES)
    return bad_value(diag, SB_ENV_MAX_BYTES, v,
                     "not a number of bytes in 4096..268435456");
  c->max_bytes = (uint32_t)n;
  return 0;
}

static const struct {
  const char *name;
  int (*read)(const char *value, sb_config *c, sb_diag *diag);
  bool empty_ok;
} sb_vars[] = {
    {SB_ENV_TOKEN, read_token, false},         {SB_ENV_SOCKET, read_socket, false},
    {SB_ENV_HOST, read_host, false},           {SB_ENV_PORT, read_port, false},
    {SB_ENV_MAX_BYTES, read_max_bytes, false},
};

int sb_config_from_env(char *const *envp, sb_config *out, sb_diag *diag) {
  memset(out, 0, sizeof *out);
  strcpy(out->host, "127.0.0.1");
  out->max_bytes = SB_DEFAULT_MAX_BYTES;
  if (envp == NULL)
    envp = environ;

  for (size_t i = 0; i < sizeof sb_vars / sizeof sb_vars[0]; i++) {
    const char *v = sb__env_value(envp, sb_vars[i].name);
    int r = 0;
    if (v == NULL)
      continue;
    if (*v == '\0' && !sb_vars[i].empty_ok)
      r = sb_diag_set(diag, SB_EINVAL, "%s: set but empty", sb_vars[i].name);
    else
      r = sb_vars[i].read(v, out, diag);
    if (r < 0) {
      sb_config_free(out);
      return r;
    }
  }
  return 0;
}

int sb_unix_address(const char *name, struct sockaddr_un *sa, uint32_t *len) {
  size_t n = strlen(name);
  if (n == 0 || strcmp(name, "@") == 0)
    return SB_EINVAL;
  if (n >= sizeof sa->sun_path)
    return -ENAMETOOLONG;
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  if (name[0] == '@') {
    /* Abstract: no file, and every byte of the length is the name. */
    memcpy(sa->sun_path + 1, name + 1, n - 1);
    *len = (uint32_t)(offsetof(struct sockaddr_un, sun_path) + n);
  } else {
    memcpy(sa->sun_path, name, n + 1);
    *len = (uint32_t)sizeof *sa;
  }
  return 0;
}

int sb_config_require(const sb_config *cfg, sb_diag *diag) {
  if (cfg->token[0] == '\0')
    return sb_diag_set(diag, SB_ENOENT, "%s is not set", SB_ENV_TOKEN);
  if (cfg->socket_path[0] == '\0' && cfg->port == 0)
    return sb_diag_set(diag, SB_ENOENT, "neither %s nor %s is set", SB_ENV_SOCKET,
                       SB_ENV_PORT);
  return 0;
}

void sb_config_free(sb_config *cfg) {
  /* The token is a secret: do not leave it behind in freed memory. */
  explicit_bzero(cfg->token, sizeof cfg->token);
}
