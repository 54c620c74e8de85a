/* SPDX-License-Identifier: MIT */
/* env.c - environments as vectors of "NAME=VALUE" strings: the value of a
 * name, which entries a name covers, and an environment less some names
 * plus some settings.
 *
 * The stub, the supervisor, the command and the preload library
 * (preload/exec.c, which runs inside every program of a recorded build) all
 * use these, so everything here but sb__env_apply is libc-only and
 * allocation-free, and nothing keeps state. */
#include "proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The length of the name an entry ("NAME=VALUE", or a bare "NAME", which
 * execve(2) allows) gives. Not strchrnul: the stub imports what it calls. */
static size_t name_len(const char *e) {
  size_t n = 0;
  while (e[n] != '\0' && e[n] != '=')
    n++;
  return n;
}

/* The length of name when it is one a "NAME=VALUE" entry can have (not
 * empty, no '='), else 0. */
static size_t valid_name(const char *name) {
  size_t n = name_len(name);
  return name[n] == '\0' ? n : 0;
}

/* Whether entry sets name (len bytes, valid). The first byte decides for
 * almost every entry: every stub scans its whole environment several
 * times before it connects. */
static bool sets(const char *entry, const char *name, size_t len) {
  return entry[0] == name[0] && strncmp(entry, name, len) == 0 && entry[len] == '=';
}

bool sb__env_has_value(const char *entry) {
  return entry[name_len(entry)] == '=';
}

bool sb__env_is(const char *entry, const char *name) {
  size_t n;
  return entry[0] == name[0] && (n = valid_name(name)) > 0 && sets(entry, name, n);
}

const char *sb__env_value_n(char *const *env, size_t n, const char *name, int which) {
  const char *found = NULL;
  size_t len = valid_name(name);
  for (size_t i = 0; len > 0 && env != NULL && i < n && env[i] != NULL; i++) {
    if (!sets(env[i], name, len))
      continue;
    found = env[i] + len + 1;
    if (which == SB__ENV_FIRST)
      break;
  }
  return found;
}

const char *sb__env_value(char *const *env, const char *name) {
  return sb__env_value_n(env, SIZE_MAX, name, SB__ENV_FIRST);
}

/* The variables a ticket decides (socketbridge.h lists them). */
static const char *const bridge_vars[] = {SB_ENV_TOKEN,  SB_ENV_PORT,      SB_ENV_HOST,
                                          SB_ENV_SOCKET, SB_ENV_MAX_BYTES, SB_ENV_STUB};

const char *sb__bridge_var(const char *name, size_t len) {
  /* They share a prefix, which rejects almost every name at once. */
  static const char prefix[] = "SOCKETBRIDGE_";
  if (len < sizeof prefix - 1 || memcmp(name, prefix, sizeof prefix - 1) != 0)
    return NULL;
  for (size_t i = 0; i < sizeof bridge_vars / sizeof bridge_vars[0]; i++)
    if (strncmp(bridge_vars[i], name, len) == 0 && bridge_vars[i][len] == '\0')
      return bridge_vars[i];
  return NULL;
}

/* Whether entry e names the same variable as one of list's entries (each
 * "NAME=VALUE" or a bare "NAME"). */
static bool named_in(const char *e, char *const *list) {
  size_t len = name_len(e);
  for (; list != NULL && *list != NULL; list++)
    if (name_len(*list) == len && memcmp(*list, e, len) == 0)
      return true;
  return false;
}

static size_t count(char *const *v) {
  size_t n = 0;
  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

int sb__env_apply(char *const *base, char *const *unset, char *const *set, char ***out) {
  size_t nbase = count(base), nset = count(set), n = 0;
  char **env = malloc((nbase + nset + 1) * sizeof *env);
  *out = NULL;
  if (env == NULL)
    return SB_ENOMEM;
  for (size_t i = 0; i < nbase; i++)
    if (!named_in(base[i], unset) && !named_in(base[i], set))
      env[n++] = base[i];
  /* A name set twice: the last wins, and only it is kept. */
  for (size_t i = 0; i < nset; i++)
    if (!named_in(set[i], set + i + 1))
      env[n++] = set[i];
  env[n] = NULL;
  *out = env;
  return 0;
}
