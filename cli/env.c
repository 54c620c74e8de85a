/* SPDX-License-Identifier: MIT */
/* env.c - -i and -u, as env(1): the environment socketbridge hands on to
 * COMMAND, less what they take out. --env, the shims' PATH and the bridge's
 * variables are added after, by run.c and the library. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

/* Whether "NAME=VALUE" e is one of the -u names. */
static bool unset_by(const cli_options *o, const char *e) {
  size_t len = strcspn(e, "=");
  for (size_t i = 0; i < o->nunset; i++)
    if (strlen(o->unset[i]) == len && memcmp(o->unset[i], e, len) == 0)
      return true;
  return false;
}

int cli_env_edit(const cli_options *o, char *const *added, char ***out) {
  size_t n = 0, m = 0, k = 0;
  char **env;

  *out = NULL;
  if (!o->ignore_env && o->nunset == 0)
    return 0;
  while (environ[n] != NULL)
    n++;
  while (added[m] != NULL)
    m++;
  env = calloc(n + m + 1, sizeof *env);
  if (env == NULL)
    return -1;
  for (size_t i = 0; i < n && !o->ignore_env; i++)
    if (!unset_by(o, environ[i]))
      env[k++] = environ[i];
  memcpy(env + k, added, m * sizeof *env);
  *out = env;
  return 0;
}
