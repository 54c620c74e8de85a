/* SPDX-License-Identifier: MIT */
/* child.c - processes the server spawns: options, each with its own ticket,
 * in a session and process group of its own (or, with a terminal, a group
 * in ours that gets the terminal); one run is one posix_spawn.
 * Reaping, stopping and restarting are in supervise.c, stdio in
 * child_stdio.c.
 *
 * Why not uv_spawn: libuv 1.44 closes nothing in the child but the fds it
 * was asked to set up, so any inheritable fd of the supervisor's process
 * (opened by the caller, a test runner, a library) would reach every child.
 * Here the child closes every fd from 3 up before exec (a closefrom file
 * action), as Python's subprocess and reproc do, and only the child is
 * affected. */
#include "sb_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

extern char **environ;

static size_t name_len(const char *e) {
  return (size_t)(strchrnul(e, '=') - e);
}

static size_t count(char *const *v) {
  size_t n = 0;
  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

/* With a shim directory, PATH and SOCKETBRIDGE_SHIMS of env (compacted:
 * each name once) get it first, in strings of their own (owned[0..1],
 * freed by the caller); a missing one is appended (env has room for two
 * more). An outer supervisor's shims stay listed after ours. */
static int add_shim_dir(const char *dir, char **env, size_t *n, char *owned[2]) {
  static const char *const names[2] = {"PATH", SB_ENV_SHIMS};
  for (int k = 0; k < 2; k++) {
    size_t len = strlen(names[k]), i;
    for (i = 0; i < *n; i++)
      if (strncmp(env[i], names[k], len) == 0 && env[i][len] == '=')
        break;
    owned[k] = i < *n ? sb__strdupf("%s=%s:%s", names[k], dir, env[i] + len + 1)
                      : sb__strdupf("%s=%s", names[k], dir);
    if (owned[k] == NULL)
      return -ENOMEM;
    env[i] = owned[k];
    if (i == *n)
      env[++*n] = NULL;
  }
  return 0;
}

/* The child's environment: the supervisor's (unless replaced), then
 * opts->env, then stub_vars, then the shim directory on PATH, then the
 * ticket's. Where a name occurs twice the later one wins, and only it is
 * kept: getenv(3) would find the first. The strings are borrowed but for
 * owned[0..1] (the caller frees them); the array is allocated. */
static int build_env(const sb_child *child, const sb_ticket *ticket, char ***out,
                     char *owned[2]) {
  size_t nbase = child->env_replace ? 0 : count(environ);
  size_t nopt = count(child->env), nstub = count(child->stub_env);
  size_t ntick = count(ticket->env);
  size_t total = nbase + nopt + nstub, i, j, n = 0;
  char **all;
  size_t *len;
  int r;

  all = malloc((total + ntick + 3) * sizeof *all);
  /* Each name's length, measured once: the pairwise search below is then
   * a comparison of integers for all but same-length names. */
  len = malloc((total + 1) * sizeof *len);
  if (all == NULL || len == NULL) {
    free(all);
    free(len);
    return -ENOMEM;
  }
  for (i = 0; i < nbase; i++)
    all[n++] = environ[i];
  for (i = 0; i < nopt; i++)
    all[n++] = child->env[i];
  for (i = 0; i < nstub; i++)
    all[n++] = child->stub_env[i];
  for (i = 0; i < total; i++)
    len[i] = name_len(all[i]);

  n = 0;
  for (i = 0; i < total; i++) {
    const char *e = all[i];
    /* The variables a ticket decides (sb__bridge_var): inherited or given
     * copies are dropped, so a child never sees another bridge's address
     * or token (a supervisor may itself run under a socketbridge one). */
    bool later = e[len[i]] == '=' && sb__bridge_var(e, len[i]) != NULL;
    for (j = i + 1; j < total && !later; j++)
      later = len[j] == len[i] && memcmp(all[j], e, len[i]) == 0;
    if (!later)
      all[n++] = all[i]; /* n <= i: compacting in place is safe */
  }
  all[n] = NULL;
  free(len);
  if (child->shim_dir != NULL &&
      (r = add_shim_dir(child->shim_dir, all, &n, owned)) < 0) {
    free(all);
    return r;
  }
  /* The ticket's last: no name of it is left above. */
  for (i = 0; i < ntick; i++)
    all[n++] = ticket->env[i];
  all[n] = NULL;
  *out = all;
  return 0;
}

/* ---- the terminal (SB_TERMINAL_FOREGROUND) ------------------------------------ */

/* Our controlling terminal, when our process group is its foreground group:
 * a run then gets it. -1 otherwise (none, or we run in the background),
 * and the run is detached. */
static int foreground_tty(void) {
  int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (tcgetpgrp(fd) != getpgrp()) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Makes pgrp the terminal's foreground group. From the background,
 * tcsetpgrp would stop us with SIGTTOU, unless it is blocked. */
static void give_terminal(int fd, pid_t pgrp) {
  sigset_t ttou, old;
  sigemptyset(&ttou);
  sigaddset(&ttou, SIGTTOU);
  pthread_sigmask(SIG_BLOCK, &ttou, &old);
  while (tcsetpgrp(fd, pgrp) < 0 && errno == EINTR)
    ;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Back to our group, from the run's group or one its processes made (a
 * shell in the run hands it to its jobs); not from the session leader (the
 * shell that runs us took it: `bg`), nor when we have it. */
static void take_terminal_back(sb_child *child) {
  pid_t fg = tcgetpgrp(child->tty_fd);
  if (fg > 0 && fg != getpgrp() && fg != tcgetsid(child->tty_fd))
    give_terminal(child->tty_fd, getpgrp());
}

void sb__child_tty_ended(sb_child *child) {
  if (child->tty_fd < 0)
    return;
  take_terminal_back(child);
  close(child->tty_fd);
  child->tty_fd = -1;
}

void sb__child_tty_continued(sb_child *child) {
  if (child->tty_fd >= 0 && tcgetpgrp(child->tty_fd) == getpgrp())
    give_terminal(child->tty_fd, child->pid);
}

void sb__child_tty_stopped(sb_child *child, int signum) {
  if (child->tty_fd < 0)
    return;
  take_terminal_back(child);
  /* ^Z (or a read or write of the terminal from the background) stops a
   * shell's whole job; the shell waits for us, not for the run, so we stop
   * too, by the same signal, and the shell takes the terminal. SIGSTOP is
   * someone's deliberate kill of the run alone: we go on. */
  if (signum != SIGTSTP && signum != SIGTTIN && signum != SIGTTOU)
    return;
  /* A background read or write while we are in the foreground (we were
   * stopped and continued with fg meanwhile): no reason to stop left. */
  if (signum == SIGTSTP || tcgetpgrp(child->tty_fd) != getpgrp())
    raise(signum);
  /* Continued (fg or bg): the run goes on, in the foreground if we are. */
  sb__child_tty_continued(child);
  kill(-child->pid, SIGCONT);
}

/* ---- the spawn --------------------------------------------------------------- */

/* posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK)) rather than fork: its
 * cost does not grow with the supervisor's memory, no atfork handler runs,
 * and exec errors come back as its return value. */

/* The PATH execvp would search: the child's, not ours (posix_spawnp would
 * search ours). Unset, glibc's default. */
static const char *env_path(char *const *env) {
  const char *path = sb__env_value(env, "PATH");
  return path != NULL ? path : "/bin:/usr/bin";
}

int sb__can_exec(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return -errno;
  if (!S_ISREG(st.st_mode))
    return -EACCES;
  return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0 ? 0 : -errno;
}

/* execvp's search, done here: the first candidate execve would accept;
 * past a missing one or an unexecutable one (then EACCES is reported if
 * nothing better is found); any other error stops the search. A relative
 * entry (an empty one is ".") is resolved from the child's cwd, as the
 * child would. *out is malloc'd. */
static int search_path(const sb_child *child, char *const *env, char **out) {
  const char *p = env_path(env), *end;
  bool eacces = false;
  int r = -ENOENT;

  if (strlen(child->file) > NAME_MAX)
    return -ENAMETOOLONG;
  for (;; p = end + 1) {
    int dlen;
    char *cand, *check;
    end = strchrnul(p, ':');
    dlen = (int)(end - p);
    cand = sb__strdupf("%.*s%s%s", dlen, p, dlen > 0 ? "/" : "", child->file);
    if (cand == NULL)
      return -ENOMEM;
    check = cand[0] != '/' && child->cwd != NULL ? sb__strdupf("%s/%s", child->cwd, cand)
                                                 : cand;
    r = check != NULL ? sb__can_exec(check) : -ENOMEM;
    if (check != cand)
      free(check);
    if (r == 0) {
      *out = cand;
      return 0;
    }
    free(cand);
    if (r == -EACCES)
      eacces = true;
    else if (r != -ENOENT && r != -ENOTDIR && r != -ESTALE && r != -ENODEV &&
             r != -ETIMEDOUT)
      return r;
    if (*end == '\0')
      return eacces ? -EACCES : r;
  }
}

/* Only 0..2 reach the child: each wired from a source at 3 or above (so no
 * dup2 clobbers another's source), then every fd from 3 up is closed. */
static int stdio_actions(posix_spawn_file_actions_t *fa, const sb__stdio_plan *plan) {
  int i, r, flags;
  for (i = 0; i < 3; i++) {
    if (plan->child_fd[i] >= 0)
      r = posix_spawn_file_actions_adddup2(fa, plan->child_fd[i], i);
    else if ((flags = fcntl(i, F_GETFD)) < 0)
      /* Our fd i is closed: the child gets /dev/null there rather than
       * whatever it opens first. */
      r = posix_spawn_file_actions_addopen(fa, i, "/dev/null", i == 0 ? O_RDONLY : O_RDWR,
                                           0);
    else if (flags & FD_CLOEXEC)
      r = posix_spawn_file_actions_adddup2(fa, i, i); /* clears FD_CLOEXEC */
    else
      r = 0;
    if (r != 0)
      return -r;
  }
  return -posix_spawn_file_actions_addclosefrom_np(fa, 3);
}

/* A file execve refuses with ENOEXEC (a script without #!) runs with
 * /bin/sh, as execvp did it, and glibc's posix_spawn no longer does. */
static int spawn_sh(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                    const posix_spawnattr_t *attr, char *const *args, char *const *env) {
  size_t n = count(args), i;
  char **argv = malloc((n + 3) * sizeof *argv);
  int err;
  if (argv == NULL)
    return ENOMEM;
  argv[0] = "/bin/sh";
  argv[1] = (char *)path;
  for (i = 1; i < n; i++)
    argv[i + 1] = args[i];
  argv[n > 0 ? n + 1 : 2] = NULL;
  err = posix_spawn(pid, "/bin/sh", fa, attr, argv, env);
  free(argv);
  return err;
}

/* The run's session and process group: see sb_terminal. tty_fd >= 0: a
 * group of its own in our session, made the terminal's foreground group by
 * the child itself before exec (with every signal blocked, so no SIGTTOU).
 * Else a new session; with a ctty, the child opens it (without O_NOCTTY) as
 * its controlling terminal, then stdio_actions puts the given fds over it. */
static int session_actions(const sb_child *child, int tty_fd, posix_spawnattr_t *attr,
                           posix_spawn_file_actions_t *fa) {
  if (tty_fd >= 0) {
    posix_spawnattr_setpgroup(attr, 0);
    return -posix_spawn_file_actions_addtcsetpgrp_np(fa, tty_fd);
  }
  if (child->ctty != NULL)
    return -posix_spawn_file_actions_addopen(fa, 0, child->ctty, O_RDWR, 0);
  return 0;
}

static int spawn(const sb_child *child, const sb__stdio_plan *plan, char **env,
                 int tty_fd, pid_t *pid) {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  sigset_t all, none;
  char *found = NULL;
  const char *path = child->file;
  int r;

  /* PATH is looked up in the child's environment, as the shell would. */
  if (path[0] == '\0')
    return -ENOENT;
  if (strchr(path, '/') == NULL) {
    if ((r = search_path(child, env, &found)) < 0)
      return r;
    path = found;
  }

  /* Every bit set, glibc's two internal signals (32, 33) included:
   * sigfillset leaves them out, and posix_spawn would then set them to
   * SIG_IGN in the child, which exec keeps. */
  memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  posix_spawnattr_init(&attr);
  /* A process group of its own: sb_child_kill and sb_server_close signal
   * the whole group. Detached, a session of its own too: leaving the
   * controlling terminal is what makes ssh and git use an askpass helper;
   * inherited terminal fds still work, as the child is in no session of
   * theirs (session_actions). Every signal at its default (KILL and STOP just fail) and
   * none blocked: no disposition or mask of ours reaches the program. */
  posix_spawnattr_setflags(&attr,
                           (tty_fd >= 0 ? POSIX_SPAWN_SETPGROUP : POSIX_SPAWN_SETSID) |
                               POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);

  posix_spawn_file_actions_init(&fa);
  r = session_actions(child, tty_fd, &attr, &fa);
  if (r == 0)
    r = stdio_actions(&fa, plan);
  if (r == 0 && child->cwd != NULL)
    r = -posix_spawn_file_actions_addchdir_np(&fa, child->cwd);
  if (r == 0) {
    r = -posix_spawn(pid, path, &fa, &attr, child->args, env);
    if (r == -ENOEXEC)
      r = -spawn_sh(pid, path, &fa, &attr, child->args, env);
  }
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(found);
  return r;
}

/* ---- one run ---------------------------------------------------------------- */

int sb__child_start(sb_child *child) {
  sb__stdio_plan plan;
  char **env = NULL, *owned[2] = {NULL, NULL};
  pid_t pid = -1;
  int r, tty_fd;

  /* A restart keeps the ticket; only a child that lost it (never: it is
   * revoked when the child ends for good) would have none. */
  if (child->ticket == NULL)
    return -ECANCELED;
  r = build_env(child, child->ticket, &env, owned);
  if (r == 0)
    r = sb__stdio_plan_open(child, &plan);
  if (r < 0) {
    free(owned[0]);
    free(owned[1]);
    free(env);
    return r;
  }
  tty_fd = child->terminal == SB_TERMINAL_FOREGROUND ? foreground_tty() : -1;
  r = spawn(child, &plan, env, tty_fd, &pid);
  free(owned[0]);
  free(owned[1]);
  free(env);
  sb__stdio_plan_finish(child, &plan, r == 0);
  if (r < 0) {
    if (tty_fd >= 0)
      close(tty_fd);
    return r;
  }
  child->tty_fd = tty_fd;
  child->pid = pid;
  child->state = SB__CHILD_RUNNING;
  child->started_ns = uv_hrtime();
  child->timed_out = child->term_sent = child->kill_sent = false;
  return 0;
}

/* ---- options ---------------------------------------------------------------- */

static uint64_t or_default(uint64_t v, uint64_t def) {
  return v != 0 ? v : def;
}

/* The supervision settings, defaults filled in. */
static int copy_policy(sb_child *child, const sb_spawn_options *opts) {
  if (opts->stop_signal < 0 || opts->stop_signal >= NSIG || opts->stop_signal == SIGSTOP)
    return -EINVAL;
  if (opts->restart != SB_RESTART_NO && opts->restart != SB_RESTART_ON_FAILURE &&
      opts->restart != SB_RESTART_ALWAYS)
    return -EINVAL;
  if (opts->terminal != SB_TERMINAL_DETACH && opts->terminal != SB_TERMINAL_FOREGROUND)
    return -EINVAL;
  child->terminal = opts->terminal;
  /* Both bounds given and crossed is a mistake; a floor above the default
   * ceiling just raises the ceiling. */
  if (opts->backoff_min_ms != 0 && opts->backoff_max_ms != 0 &&
      opts->backoff_min_ms > opts->backoff_max_ms)
    return -EINVAL;
  child->timeout_ms = opts->timeout_ms;
  child->deadline_ms = opts->deadline_ms;
  child->kill_after_ms = opts->kill_after_set
                             ? opts->kill_after_ms
                             : or_default(opts->kill_after_ms, SB__KILL_AFTER_MS);
  child->stop_signal = opts->stop_signal != 0 ? opts->stop_signal : SIGTERM;
  child->restart = opts->restart;
  child->max_restarts = opts->max_restarts_set || opts->max_restarts != 0
                            ? opts->max_restarts
                            : SB__MAX_RESTARTS;
  child->backoff_min_ms = or_default(opts->backoff_min_ms, SB__BACKOFF_MIN_MS);
  child->backoff_max_ms = or_default(opts->backoff_max_ms, SB__BACKOFF_MAX_MS);
  if (child->backoff_max_ms < child->backoff_min_ms)
    child->backoff_max_ms = child->backoff_min_ms;
  child->backoff_reset_ms = or_default(opts->backoff_reset_ms, SB__BACKOFF_RESET_MS);
  return 0;
}

static int copy_stub_vars(sb_child *child, char *const *names);

/* What to run, copied: a restart runs it again after the caller's strings
 * are gone. */
static int copy_command(sb_child *child, const sb_spawn_options *opts) {
  char *const default_args[2] = {(char *)opts->file, NULL};
  size_t i;
  int r;

  for (i = 0; opts->env != NULL && opts->env[i] != NULL; i++)
    if (strchr(opts->env[i], '=') == NULL)
      return -EINVAL;
  child->file = sb__strdup(opts->file);
  if (child->file == NULL)
    return -ENOMEM;
  if (opts->cwd != NULL && (child->cwd = sb__strdup(opts->cwd)) == NULL)
    return -ENOMEM;
  r = sb__vec_dup(opts->args != NULL ? opts->args : default_args, &child->args);
  if (r == 0)
    r = sb__vec_dup(opts->env, &child->env);
  child->env_replace = opts->env_replace;
  if (r == 0)
    r = copy_stub_vars(child, opts->stub_vars);
  return r;
}

/* "NAME=<stub path>" for each name: the child's tools find the stub by
 * those variables (GIT_EDITOR, SSH_ASKPASS). */
static int copy_stub_vars(sb_child *child, char *const *names) {
  size_t n = count(names), i;
  if (n == 0)
    return 0;
  child->stub_env = calloc(n + 1, sizeof *child->stub_env);
  if (child->stub_env == NULL)
    return -ENOMEM;
  for (i = 0; i < n; i++) {
    if (names[i][0] == '\0' || strchr(names[i], '=') != NULL)
      return -EINVAL;
    child->stub_env[i] = sb__strdupf("%s=%s", names[i], child->server->stub_path);
    if (child->stub_env[i] == NULL)
      return -ENOMEM;
  }
  return 0;
}

/* opts->shims: a directory of ours, with the child's ticket in its bridge
 * file, removed with the child; opts->shim_dir: the caller's. Called once
 * the ticket exists. */
static int setup_shims(sb_child *child, const sb_spawn_options *opts) {
  if (opts->shims == NULL && opts->shim_dir == NULL)
    return 0;
  if ((opts->shims != NULL && opts->shim_dir != NULL) ||
      child->server->transport == SB_TRANSPORT_NONE)
    return -EINVAL;
  if (opts->shim_dir != NULL) {
    if (opts->shim_dir[0] != '/')
      return -EINVAL; /* a relative PATH entry would follow each process's cwd */
    child->shim_dir = sb__strdup(opts->shim_dir);
    return child->shim_dir != NULL ? 0 : -ENOMEM;
  }
  int r = sb_shim_dir_make(NULL, opts->shims, child->server->stub_path, child->ticket,
                           &child->shim_dir, NULL);
  if (r == 0)
    r = sb__vec_dup(opts->shims, &child->own_shims);
  return r;
}

void sb__child_free(sb_child *child) {
  sb__stdio_cleanup(child);
  if (child->own_shims != NULL && child->shim_dir != NULL)
    sb_shim_dir_remove(child->shim_dir, child->own_shims);
  sb__vec_free(child->own_shims);
  free(child->shim_dir);
  sb__vec_free(child->stub_env);
  free(child->file);
  free(child->cwd);
  free(child->ctty);
  sb__vec_free(child->args);
  sb__vec_free(child->env);
  free(child->rbuf);
  free(child);
}

int sb__child_signal(sb_child *child, int signum) {
  if (kill(-child->pid, signum) == 0)
    return 0;
  /* The leader left its group (a setsid or setpgid of its own): it alone. */
  if (errno == ESRCH && kill(child->pid, signum) == 0)
    return 0;
  return -errno;
}

/* ---- the public API ------------------------------------------------------- */

int sb_spawn(sb_server *server, const sb_spawn_options *opts, sb_child **out) {
  return sb__spawn(server, opts, NULL, out);
}

int sb__spawn(sb_server *server, const sb_spawn_options *opts, const char *ctty,
              sb_child **out) {
  sb_child *child;
  int r;

  if (out != NULL)
    *out = NULL;
  if (server == NULL || opts == NULL || out == NULL || opts->file == NULL ||
      opts->on_exit == NULL)
    return -EINVAL;
  if (server->closing)
    return -ECANCELED;

  child = calloc(1, sizeof *child);
  if (child == NULL)
    return -ENOMEM;
  child->server = server;
  child->on_exit = opts->on_exit;
  child->on_output = opts->on_output;
  child->data = opts->data;
  child->tty_fd = -1;
  for (int i = 0; i < 3; i++)
    child->stdio[i].fd = -1;
  r = copy_policy(child, opts);
  if (r == 0 && ctty != NULL && (child->ctty = sb__strdup(ctty)) == NULL)
    r = -ENOMEM;
  if (r == 0)
    r = copy_command(child, opts);
  if (r == 0)
    r = sb__stdio_setup(child, opts);
  if (r == 0)
    r = sb__ticket_create(server, child, &child->ticket);
  if (r == 0)
    r = setup_shims(child, opts);
  if (r == 0)
    r = sb__children_watch(server);
  if (r == 0)
    r = sb__child_start(child);
  if (r < 0)
    goto error;

  /* The timer serves the deadline, the grace, the backoff and the deferred
   * on_exit in turn; it lives as long as the child. */
  uv_timer_init(server->loop, &child->timer);
  child->timer.data = child;
  child->open_handles++;
  uv_timer_init(server->loop, &child->deadline);
  child->deadline.data = child;
  child->open_handles++;
  sb__list_push(&server->children, &child->link);
  *out = child;
  sb__supervise_deadline(child);
  sb__supervise_started(child);
  return 0;

error:
  if (child->ticket != NULL) {
    child->ticket->child = NULL;
    sb_ticket_free(child->ticket);
  }
  sb__child_free(child);
  if (sb__list_empty(&server->children) && server->sigchld_open)
    uv_signal_stop(&server->sigchld);
  return r;
}

pid_t sb_child_pid(const sb_child *child) {
  return child->pid;
}

sb_ticket *sb_child_ticket(const sb_child *child) {
  return child->ticket;
}

void *sb_child_data(const sb_child *child) {
  return child->data;
}

unsigned sb_child_restarts(const sb_child *child) {
  return child->restarts;
}

int sb_child_kill(sb_child *child, int signum) {
  if (child == NULL || signum < 0 || signum >= NSIG)
    return -EINVAL;
  if (child->state != SB__CHILD_RUNNING)
    return -ESRCH;
  return sb__child_signal(child, signum);
}
