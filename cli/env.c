/* SPDX-License-Identifier: MIT */
/* env.c - -i and -u, as env(1): the environment socketbridge hands on to
 * COMMAND, less what they take out. --env, the shims' PATH and the bridge's
 * variables are added after, by run.c and the library. */
#include "cli.h"
#include "proto.h"

extern char **environ;

int cli_env_edit(const cli_options *o, char *const *added, char ***out) {
  *out = NULL;
  if (!o->ignore_env && o->nunset == 0)
    return 0;
  /* An added name replaces ours here already; the library would keep only
   * the later one anyway. */
  return sb__env_apply(o->ignore_env ? NULL : environ, o->unset, added, out) < 0 ? -1 : 0;
}
