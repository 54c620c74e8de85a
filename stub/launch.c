/* SPDX-License-Identifier: MIT */
/* launch.c - starting a real program: `exec` (proto 4, step 5), what it
 * shares with `run` (environment, directory, lookup), and the fallback of a
 * stub that cannot reach its supervisor (SOCKETBRIDGE_FALLBACK=exec).
 *
 * The directory is entered before the program is looked up, as `cd DIR &&
 * exec PROG` would: a relative `path`, argv[0] with a slash, and relative
 * PATH elements all mean the same file to the lookup and to the kernel.
 *
 * Nothing the stub set up for itself reaches the program: every fd it
 * opened is close-on-exec (socket, self-pipe, private re-opens of fds
 * 0/1/2), and the signals it catches or ignores go back to their default
 * (stub_signals_restore). The signal mask is never changed. */
#include "stub.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* Where the kernel says our own executable is: the lookup's recursion
 * guard (a shim finding itself under another name). */
#define STUB_SELF "/proc/self/exe"

/* ---- depth --------------------------------------------------------------- */

/* "SOCKETBRIDGE_DEPTH=N" for the programs we start: ours plus one. */
static char depth_entry[sizeof SB_ENV_DEPTH + 12];

void stub_depth_check(void) {
  const char *v = sb__env_value(environ, SB_ENV_DEPTH);
  uint64_t n = 0;
  /* Unset or empty: the first stub of a chain. */
  if (v != NULL && *v != '\0' && !sb__parse_uint(v, UINT32_MAX, &n))
    stub_fail("%s: \"%.32s\" is not a depth (a number 0..%d)", SB_ENV_DEPTH, v,
              SB_MAX_DEPTH);
  if (n >= SB_MAX_DEPTH)
    stub_fail("%u stubs deep (%s): a program started for a stub ran the stub again; "
              "stopping the chain here",
              (unsigned)n, SB_ENV_DEPTH);
  sb__snprintf(depth_entry, sizeof depth_entry, "%s=%u", SB_ENV_DEPTH, (unsigned)n + 1);
}

/* environ less unset, plus set, plus our depth. Of two `set` entries for
 * one name the last wins, as it would in a shell; the depth wins over all
 * (a rule cannot lift the bound): it is the last `set` entry. */
static char **launch_env(const sb_launch *l) {
  char **set = malloc((l->set.n + 2) * sizeof *set), **env;
  if (set == NULL)
    stub_fail("out of memory");
  for (size_t i = 0; i < l->set.n; i++)
    set[i] = l->set.v[i];
  set[l->set.n] = depth_entry;
  set[l->set.n + 1] = NULL;
  if (sb__env_apply(environ, l->unset.v, set, &env) < 0)
    stub_fail("out of memory");
  free(set);
  return env;
}

/* The program gets the path it was found at as argv[0], as from a script's
 * `exec /usr/bin/cc "$@"`: a program that finds its installation from
 * argv[0] and PATH (gcc finds cc1 so) must find itself, not the shim that
 * stood in for it earlier on PATH. The name part stays as it was. */
static void found_as_argv0(stub_prog *p, sb_launch *l) {
  char *found = strdup(p->buf);
  if (found == NULL)
    stub_fail("out of memory");
  free(l->argv.v[0]);
  l->argv.v[0] = found;
  p->file = p->name = found;
}

int stub_prog_prepare(stub_prog *p, sb_launch *l) {
  p->env = launch_env(l);
  p->name = l->path != NULL ? l->path : l->argv.v[0];
  p->file = l->path;
  p->where = l->cwd;
  if (l->cwd != NULL && chdir(l->cwd) < 0)
    return -errno;
  p->where = NULL;
  if (p->file != NULL)
    return 0;
  int r =
      sb_path_find(l->argv.v[0], sb__env_value(p->env, "PATH"),
                   sb__env_value(p->env, SB_ENV_SHIMS), STUB_SELF, p->buf, sizeof p->buf);
  if (r == 0)
    found_as_argv0(p, l);
  return r;
}

static int exit_code(int err) {
  return err == -ENOENT || err == -ENOTDIR ? STUB_EXIT_NOT_FOUND : STUB_EXIT_CANNOT_RUN;
}

int stub_prog_exit_code(const stub_prog *p, int err) {
  /* A directory that cannot be entered is not a program not found. */
  return p->where != NULL ? STUB_EXIT_CANNOT_RUN : exit_code(err);
}

void stub_prog_say(const stub_prog *p, const char *verb, int err) {
  const char *w = p->where;
  char line[1024];
  sb__snprintf(line, sizeof line, "cannot %s '%s': %s%s%s%s", verb, p->name,
               w != NULL ? "cannot enter '" : "", w != NULL ? w : "",
               w != NULL ? "': " : "", strerror(-err));
  stub_say(line);
}

/* Leaves nothing of ours to the program, then execve. Returns its error. */
static int exec_clean(const char *file, char *const *argv, char *const *env) {
  stub_signals_restore();
  stub_unguard_std_fds();
  execve(file, argv, env);
  return -errno;
}

_Noreturn void stub_exec(stub *st, sb_launch *l) {
  stub_prog p;
  int64_t deadline = stub_now_ms() + STUB_FAIL_WRITE_MS;
  int err = stub_prog_prepare(&p, l);
  /* What is queued (signals, stream errors) goes up first: once the
   * program runs, the socket is closed. */
  stub_bridge_drain(&st->br, deadline);
  if (err == 0)
    err = exec_clean(p.file, l->argv.v, p.env);

  /* The supervisor hears first (bounded: it may not be reading), then the
   * line, then the exit. */
  int code = stub_prog_exit_code(&p, err);
  sb_msg m = {.type = SB_MSG_EXITED, .u.exit.code = code};
  if (stub_bridge_room(&st->br) > 0)
    stub_bridge_push_msg(&st->br, &m);
  stub_bridge_drain(&st->br, deadline);
  stub_prog_say(&p, "exec", err);
  _exit(code);
}

/* ---- fallback ------------------------------------------------------------ */

/* argv to exec the real program with, or NULL when there is no fallback. */
static char **fallback_argv;

void stub_fallback_init(char **argv) {
  const char *v = sb__env_value(environ, SB_ENV_FALLBACK);
  if (v == NULL || *v == '\0')
    return;
  if (strcmp(v, "exec") != 0) {
    char shown[96]; /* quoted: a token pasted there is not repeated */
    sb__quote(shown, sizeof shown, v);
    stub_fail("%s: %s is not a fallback (the only one is \"exec\")", SB_ENV_FALLBACK,
              shown);
  }
  fallback_argv = argv;
}

/* Execs the program the stub stands in for, found by the name it was run
 * as, with the stub's own argv and environment, as if the stub were not
 * on PATH at all. */
STUB_COLD _Noreturn static void fallback_exec(const char *why) {
  char buf[PATH_MAX];
  const char *name = fallback_argv[0] != NULL ? fallback_argv[0] : "";
  for (const char *c = name; *c != '\0'; c++)
    if (*c == '/')
      name = c + 1;
  int err =
      sb_path_find(name, sb__env_value(environ, "PATH"),
                   sb__env_value(environ, SB_ENV_SHIMS), STUB_SELF, buf, sizeof buf);
  if (err == 0) {
    fallback_argv[0] = buf; /* as for exec: see found_as_argv0 */
    err = exec_clean(buf, fallback_argv, launch_env(&(sb_launch){.argv = {NULL, 0}}));
  }
  stub_fail_code(exit_code(err), "%s; fallback: cannot exec '%s': %s", why, name,
                 strerror(-err));
}

_Noreturn void stub_unreachable(const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  sb__vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (fallback_argv != NULL)
    fallback_exec(why);
  stub_say(why);
  _exit(STUB_EXIT_FAILURE);
}
