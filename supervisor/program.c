/* SPDX-License-Identifier: MIT */
/* program.c - exec and run, where the stub starts the program itself; and
 * what every program disposition shares: checking an sb_program and
 * editing the call's environment for it. */
#include "sb_internal.h"

#include <stdlib.h>
#include <string.h>

static size_t count(char *const *v) {
  size_t n = 0;
  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

char **sb__set_with_depth(char *const *call_env, char *const *set, char **entry) {
  uint64_t n = 0;
  size_t nset = count(set);
  char **out = malloc((nset + 2) * sizeof *out);

  /* A depth that does not parse is the stub's to report: it started ours
   * (and exits 125 on one before its hello). */
  sb__parse_uint(sb__env_value(call_env, SB_ENV_DEPTH), UINT32_MAX, &n);
  *entry = sb__strdupf("%s=%llu", SB_ENV_DEPTH,
                       (unsigned long long)(n < SB_MAX_DEPTH ? n + 1 : SB_MAX_DEPTH));
  if (out == NULL || *entry == NULL) {
    free(out);
    free(*entry);
    *entry = NULL;
    return NULL;
  }
  if (nset > 0)
    memcpy(out, set, nset * sizeof *out);
  out[nset] = *entry; /* last: it wins over a rule's own */
  out[nset + 1] = NULL;
  return out;
}

/* The checks every program disposition makes of p. */
static int check_program(const sb_program *p) {
  char *const *v;
  if (p == NULL || p->argv == NULL || p->argv[0] == NULL || p->argv[0][0] == '\0')
    return -EINVAL;
  if ((p->path != NULL && p->path[0] == '\0') || (p->cwd != NULL && p->cwd[0] == '\0'))
    return -EINVAL;
  for (v = p->set; v != NULL && *v != NULL; v++)
    if (strchr(*v, '=') == NULL || **v == '=')
      return -EINVAL;
  for (v = p->unset; v != NULL && *v != NULL; v++)
    if (strchr(*v, '=') != NULL || **v == '\0')
      return -EINVAL;
  return 0;
}

int sb__program_check(const sb_conn *conn, const sb_program *p) {
  int r = sb__dispo_check(conn);
  return r < 0 ? r : check_program(p);
}

/* ---- exec and run ------------------------------------------------------------ */

static sb_strv borrow(char *const *v) {
  static char *empty[1] = {NULL};
  sb_strv s = {v != NULL ? (char **)v : empty, count(v)};
  return s;
}

/* The stub reported how the program ended (conn.c has taken note):
 * on_program_exit; then, for run, the stub ends as the program did, unless
 * the callback ended it otherwise. (A failed exec ends the stub by itself.) */
static void program_exited(sb_conn *conn, const sb_status *st) {
  if (conn->cbs.on_program_exit != NULL)
    conn->cbs.on_program_exit(conn, st->signal != 0 ? 0 : st->code, st->signal);
  if (conn->dispo != SB__DISPO_RUN || conn->state != SB__CONN_OPEN)
    return;
  if (st->signal != 0)
    sb_conn_kill(conn, st->signal);
  else
    sb_conn_exit(conn, st->code);
}

static const sb__dispo_ops program_ops = {.on_exited = program_exited};

static int launch(sb_conn *conn, sb_msg_type type, const sb_program *p) {
  int r = sb__program_check(conn, p);
  sb_msg m;

  if (r < 0)
    return r;
  memset(&m, 0, sizeof m);
  m.type = type;
  m.u.launch.argv = borrow(p->argv);
  m.u.launch.path = (char *)(uintptr_t)p->path;
  m.u.launch.cwd = (char *)(uintptr_t)p->cwd;
  m.u.launch.set = borrow(p->set);
  m.u.launch.unset = borrow(p->unset);
  m.u.launch.tee = p->tee;
  return sb__conn_launch(conn, &m, type == SB_MSG_EXEC ? SB__DISPO_EXEC : SB__DISPO_RUN,
                         &program_ops);
}

int sb_conn_exec(sb_conn *conn, const sb_program *p) {
  return launch(conn, SB_MSG_EXEC, p);
}

int sb_conn_run(sb_conn *conn, const sb_program *p) {
  return launch(conn, SB_MSG_RUN, p);
}
