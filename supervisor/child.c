/* child.c - processes the server spawns: each with its own ticket, in a
 * session and process group of its own, reaped through a SIGCHLD watcher.
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
static int build_env(const sb_spawn_options *opts, const sb_ticket *ticket, char ***out) {
  size_t nbase = opts->env_replace ? 0 : count(environ);
  size_t nopt = count(opts->env), ntick = count(ticket->env);
  size_t total = nbase + nopt + ntick, i, j, n = 0;
  char **all;

  for (i = 0; i < nopt; i++)
    if (strchr(opts->env[i], '=') == NULL)
      return -EINVAL;
  all = malloc((total + 1) * sizeof *all);
  if (all == NULL)
    return -ENOMEM;
  for (i = 0; i < nbase; i++)
    all[n++] = environ[i];
  for (i = 0; i < nopt; i++)
    all[n++] = opts->env[i];
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

__attribute__((noreturn)) static void
child_exec(const sb_spawn_options *opts, char **args, char **env, int errfd, long maxfd) {
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
    src[i] = opts->stdio[i].mode == SB_STDIO_FD ? opts->stdio[i].fd : i;
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
  if (opts->cwd != NULL && chdir(opts->cwd) != 0)
    goto fail;
  /* PATH is looked up in the child's environment, as the shell would. */
  environ = env;
  execvp(opts->file, args);

fail:
  err = errno;
  while (write(errfd, &err, sizeof err) < 0 && errno == EINTR)
    ;
  _exit(127);
}

/* Forks and execs; exec errors come back through a close-on-exec pipe, so
 * they are returned here and never seen as an exit status. */
static int fork_exec(const sb_spawn_options *opts, char **args, char **env, pid_t *out) {
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
    child_exec(opts, args, env, pipefd[1], maxfd);
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

/* ---- reaping -------------------------------------------------------------- */

/* The child is no longer ours to report: connections forget it and its
 * ticket is revoked. */
static void child_gone(sb_child *child) {
  child->exited = true;
  sb__conns_forget(child->server, NULL, child);
  if (child->ticket != NULL)
    sb_ticket_free(child->ticket);
}

static void reap(sb_child *child) {
  int status = 0;
  int64_t code = -1;
  int sig = 0;
  pid_t r;

  do
    r = waitpid(child->pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0)
    return;
  if (r > 0 && WIFEXITED(status))
    code = WEXITSTATUS(status);
  else if (r > 0 && WIFSIGNALED(status))
    code = 0, sig = WTERMSIG(status);
  /* r < 0 (ECHILD): something else in the process reaped it (SIGCHLD
   * ignored...); the status is lost and reported as -1. */

  child->exited = true;
  child->on_exit(child, code, sig);
  child_gone(child);
  sb__list_remove(&child->link);
  free(child);
}

static void on_sigchld(uv_signal_t *handle, int signum) {
  sb_server *server = handle->data;
  sb__link *l, *next;
  (void)signum;

  /* Signals merge: one SIGCHLD may stand for several children. Children
   * spawned from a callback land at the tail and are polled too, which is
   * harmless. The server cannot be freed meanwhile: that waits for this
   * handle's close callback. */
  for (l = server->children.next; l != &server->children; l = next) {
    next = l->next;
    reap(sb__container_of(l, sb_child, link));
  }
  if (sb__list_empty(&server->children))
    uv_signal_stop(handle);
  sb__server_maybe_finish(server);
}

static int watch_children(sb_server *server) {
  int r;
  if (!server->sigchld_open) {
    r = uv_signal_init(server->loop, &server->sigchld);
    if (r < 0)
      return r;
    server->sigchld.data = server;
    server->sigchld_open = true;
  }
  /* Started before the fork, so no exit goes unnoticed. */
  return uv_signal_start(&server->sigchld, on_sigchld, SIGCHLD);
}

/* ---- the public API ------------------------------------------------------- */

int sb_spawn(sb_server *server, const sb_spawn_options *opts, sb_child **out) {
  char *default_args[2];
  char **env = NULL;
  sb_child *child;
  pid_t pid = -1;
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
  child->data = opts->data;
  r = sb__ticket_create(server, child, &child->ticket);
  if (r < 0)
    goto error;
  r = build_env(opts, child->ticket, &env);
  if (r < 0)
    goto error;
  r = watch_children(server);
  if (r < 0)
    goto error;

  default_args[0] = (char *)opts->file;
  default_args[1] = NULL;
  r = fork_exec(opts, opts->args != NULL ? (char **)opts->args : default_args, env, &pid);
  free(env);
  env = NULL;
  if (r < 0)
    goto error;

  child->pid = pid;
  sb__list_push(&server->children, &child->link);
  *out = child;
  return 0;

error:
  free(env);
  if (child->ticket != NULL) {
    child->ticket->child = NULL;
    sb_ticket_free(child->ticket);
  }
  free(child);
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

int sb_child_kill(sb_child *child, int signum) {
  if (child == NULL || signum < 0 || signum >= NSIG)
    return -EINVAL;
  if (child->exited)
    return -ESRCH;
  if (kill(-child->pid, signum) == 0)
    return 0;
  /* The child left its group (a setsid or setpgid of its own): signal it
   * alone. */
  if (errno == ESRCH && kill(child->pid, signum) == 0)
    return 0;
  return -errno;
}

void sb__children_kill_all(sb_server *server) {
  sb__link *l;
  for (l = server->children.next; l != &server->children; l = l->next) {
    sb_child *child = sb__container_of(l, sb_child, link);
    if (child->exited)
      continue;
    kill(-child->pid, SIGKILL);
    /* And the child itself, in case it left its group: its exit is what
     * sb_server_close waits for. */
    kill(child->pid, SIGKILL);
  }
}

static void on_sigchld_closed(uv_handle_t *handle) {
  sb_server *server = handle->data;
  server->sigchld_open = false;
  sb__server_maybe_finish(server);
}

bool sb__children_close(sb_server *server) {
  if (!server->sigchld_open)
    return true;
  if (!server->sigchld_closing) {
    server->sigchld_closing = true;
    uv_close((uv_handle_t *)&server->sigchld, on_sigchld_closed);
  }
  return false;
}
