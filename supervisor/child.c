/* child.c - processes the server spawns: options, each with its own ticket,
 * in a session and process group of its own; one run is one fork and exec.
 * Reaping, stopping and restarting are in supervise.c, stdio in
 * child_stdio.c.
 *
 * Why not uv_spawn: libuv 1.44 closes nothing in the child but the fds it
 * was asked to set up, so any inheritable fd of the supervisor's process
 * (opened by the caller, a test runner, a library) would reach every child.
 * Here the child closes every fd from 3 up between fork and exec, as
 * Python's subprocess and reproc do, and only the child is affected. */
#include "sb_internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* The variables a ticket decides. Inherited or given copies are dropped, so
 * a child never sees another bridge's address or token (a supervisor may
 * itself run under a socketbridge supervisor). */
static bool is_bridge_var(const char *e) {
  static const char *const names[] = {SB_ENV_TOKEN,  SB_ENV_PORT,      SB_ENV_HOST,
                                      SB_ENV_SOCKET, SB_ENV_MAX_BYTES, SB_ENV_STUB};
  size_t i, n;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    n = strlen(names[i]);
    if (strncmp(e, names[i], n) == 0 && e[n] == '=')
      return true;
  }
  return false;
}

static size_t name_len(const char *e) {
  return (size_t)(strchrnul(e, '=') - e);
}

static size_t count(char *const *v) {
  size_t n = 0;
  while (v != NULL && v[n] != NULL)
    n++;
  return n;
}

/* The child's environment: the supervisor's (unless replaced), then
 * opts->env, then the ticket's. Where a name occurs twice the later one
 * wins, and only it is kept: getenv(3) would find the first. The strings are
 * borrowed; only the array is allocated. */
static int build_env(const sb_child *child, const sb_ticket *ticket, char ***out) {
  size_t nbase = child->env_replace ? 0 : count(environ);
  size_t nopt = count(child->env), ntick = count(ticket->env);
  size_t total = nbase + nopt + ntick, i, j, n = 0;
  char **all;

  all = malloc((total + 1) * sizeof *all);
  if (all == NULL)
    return -ENOMEM;
  for (i = 0; i < nbase; i++)
    all[n++] = environ[i];
  for (i = 0; i < nopt; i++)
    all[n++] = child->env[i];
  for (i = 0; i < ntick; i++)
    all[n++] = ticket->env[i];

  n = 0;
  for (i = 0; i < total; i++) {
    const char *e = all[i];
    size_t len = name_len(e);
    bool later = false;
    if (i < nbase + nopt && is_bridge_var(e))
      continue;
    for (j = i + 1; j < total && !later; j++)
      later = name_len(all[j]) == len && memcmp(all[j], e, len) == 0;
    if (!later)
      all[n++] = all[i]; /* n <= i: compacting in place is safe */
  }
  all[n] = NULL;
  *out = all;
  return 0;
}

/* ---- between fork and exec: async-signal-safe calls only ---------------- */

static void close_from(int lo, int keep, long maxfd) {
  /* keep (the error pipe) is close-on-exec: exec closes it. */
  if (keep > lo && close_range((unsigned)lo, (unsigned)keep - 1, 0) != 0)
    for (int fd = lo; fd < keep; fd++)
      close(fd);
  if (close_range((unsigned)keep + 1, ~0u, 0) != 0)
    for (long fd = keep + 1; fd < maxfd; fd++)
      close((int)fd);
}

__attribute__((noreturn)) static void child_exec(const sb_child *child,
                                                 const sb__stdio_plan *plan, char **env,
                                                 int errfd, long maxfd) {
  struct sigaction sa;
  sigset_t none;
  int src[3], i, err;

  /* Default dispositions while every signal is still blocked, so no
   * handler of the supervisor ever runs in the child. */
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (i = 1; i < NSIG; i++)
    if (i != SIGKILL && i != SIGSTOP)
      sigaction(i, &sa, NULL);

  /* A session (and process group) of its own: sb_child_kill and
   * sb_server_close signal the whole group. Leaving the controlling
   * terminal is what makes ssh and git use an askpass helper; inherited
   * terminal fds still work, as the child is in no session of theirs. */
  if (setsid() < 0)
    goto fail;

  /* Sources below 3 move out of the way first, so one dup2 cannot clobber
   * another's source (stdio = {1, 0, 2}). */
  for (i = 0; i < 3; i++) {
    src[i] = plan->child_fd[i] >= 0 ? plan->child_fd[i] : i;
    if (src[i] != i && src[i] < 3 && (src[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3)) < 0)
      goto fail;
  }
  for (i = 0; i < 3; i++) {
    if (src[i] != i) {
      if (dup2(src[i], i) < 0)
        goto fail;
    } else if (fcntl(i, F_SETFD, 0) < 0) {
      /* The supervisor's own fd i is closed: the child gets /dev/null
       * there rather than whatever it opens first. */
      int fd = open("/dev/null", i == 0 ? O_RDONLY : O_RDWR);
      if (fd < 0)
        goto fail;
      if (fd != i && (dup2(fd, i) < 0 || close(fd) < 0))
        goto fail;
    }
  }
  close_from(3, errfd, maxfd);

  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (child->cwd != NULL && chdir(child->cwd) != 0)
    goto fail;
  /* PATH is looked up in the child's environment, as the shell would. */
  environ = env;
  execvp(child->file, child->args);

fail:
  err = errno;
  while (write(errfd, &err, sizeof err) < 0 && errno == EINTR)
    ;
  _exit(127);
}

/* Forks and execs; exec errors come back through a close-on-exec pipe, so
 * they are returned here and never seen as an exit status. */
static int fork_exec(const sb_child *child, const sb__stdio_plan *plan, char **env,
                     pid_t *out) {
  long maxfd = sysconf(_SC_OPEN_MAX);
  sigset_t all, old;
  int pipefd[2], err = 0, r = 0, i;
  ssize_t n;
  pid_t pid;

  if (maxfd < 0 || maxfd > 65536)
    maxfd = 65536;
  if (pipe2(pipefd, O_CLOEXEC) != 0)
    return -errno;
  /* Keep the pipe clear of 0..2, which the child rewires. */
  for (i = 0; i < 2; i++) {
    if (pipefd[i] < 3) {
      int fd = fcntl(pipefd[i], F_DUPFD_CLOEXEC, 3);
      if (fd < 0) {
        r = -errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return r;
      }
      close(pipefd[i]);
      pipefd[i] = fd;
    }
  }

  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid = fork();
  if (pid == 0)
    child_exec(child, plan, env, pipefd[1], maxfd);
  if (pid < 0)
    r = -errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  close(pipefd[1]);

  if (r == 0) {
    do
      n = read(pipefd[0], &err, sizeof err);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof err) {
      /* exec failed: the child exits at once; reap it here, it never
       * becomes one of ours. */
      while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
      r = err > 0 ? -err : -EIO;
    }
  }
  close(pipefd[0]);
  *out = pid;
  return r;
}

/* ---- one run ---------------------------------------------------------------- */

int sb__child_start(sb_child *child) {
  sb__stdio_plan plan;
  char **env = NULL;
  pid_t pid = -1;
  int r;

  /* A restart keeps the ticket; only a child that lost it (never: it is
   * revoked when the child ends for good) would have none. */
  if (child->ticket == NULL)
    return -ECANCELED;
  r = build_env(child, child->ticket, &env);
  if (r < 0)
    return r;
  r = sb__stdio_plan_open(child, &plan);
  if (r < 0) {
    free(env);
    return r;
  }
  r = fork_exec(child, &plan, env, &pid);
  free(env);
  sb__stdio_plan_finish(child, &plan, r == 0);
  if (r < 0)
    return r;
  child->pid = pid;
  child->state = SB__CHILD_RUNNING;
  child->started_ns = uv_hrtime();
  child->timed_out = child->term_sent = child->kill_sent = false;
  return 0;
}

/* ---- options ---------------------------------------------------------------- */

static void strv_free(char **v) {
  if (v == NULL)
    return;
  for (size_t i = 0; v[i] != NULL; i++)
    free(v[i]);
  free(v);
}

/* A deep copy of a NULL-terminated array (NULL stays NULL). */
static int strv_dup(char *const *v, char ***out) {
  size_t n = count(v), i;
  char **c;
  *out = NULL;
  if (v == NULL)
    return 0;
  c = calloc(n + 1, sizeof *c);
  if (c == NULL)
    return -ENOMEM;
  for (i = 0; i < n; i++) {
    if ((c[i] = sb__strdup(v[i])) == NULL) {
      strv_free(c);
      return -ENOMEM;
    }
  }
  *out = c;
  return 0;
}

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
  /* Both bounds given and crossed is a mistake; a floor above the default
   * ceiling just raises the ceiling. */
  if (opts->backoff_min_ms != 0 && opts->backoff_max_ms != 0 &&
      opts->backoff_min_ms > opts->backoff_max_ms)
    return -EINVAL;
  child->timeout_ms = opts->timeout_ms;
  child->kill_after_ms = or_default(opts->kill_after_ms, SB__KILL_AFTER_MS);
  child->stop_signal = opts->stop_signal != 0 ? opts->stop_signal : SIGTERM;
  child->restart = opts->restart;
  child->max_restarts = opts->max_restarts != 0 ? opts->max_restarts : SB__MAX_RESTARTS;
  child->backoff_min_ms = or_default(opts->backoff_min_ms, SB__BACKOFF_MIN_MS);
  child->backoff_max_ms = or_default(opts->backoff_max_ms, SB__BACKOFF_MAX_MS);
  if (child->backoff_max_ms < child->backoff_min_ms)
    child->backoff_max_ms = child->backoff_min_ms;
  child->backoff_reset_ms = or_default(opts->backoff_reset_ms, SB__BACKOFF_RESET_MS);
  return 0;
}

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
  r = strv_dup(opts->args != NULL ? opts->args : default_args, &child->args);
  if (r == 0)
    r = strv_dup(opts->env, &child->env);
  child->env_replace = opts->env_replace;
  return r;
}

void sb__child_free(sb_child *child) {
  sb__stdio_cleanup(child);
  free(child->file);
  free(child->cwd);
  strv_free(child->args);
  strv_free(child->env);
  free(child->rbuf);
  free(child);
}

/* ---- the public API ------------------------------------------------------- */

int sb_spawn(sb_server *server, const sb_spawn_options *opts, sb_child **out) {
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
  for (int i = 0; i < 3; i++)
    child->stdio[i].fd = -1;
  r = copy_policy(child, opts);
  if (r == 0)
    r = copy_command(child, opts);
  if (r == 0)
    r = sb__stdio_setup(child, opts);
  if (r == 0)
    r = sb__ticket_create(server, child, &child->ticket);
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
  sb__list_push(&server->children, &child->link);
  *out = child;
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
  if (kill(-child->pid, signum) == 0)
    return 0;
  /* The child left its group (a setsid or setpgid of its own): signal it
   * alone. */
  if (errno == ESRCH && kill(child->pid, signum) == 0)
    return 0;
  return -errno;
}
