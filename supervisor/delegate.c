/* SPDX-License-Identifier: MIT */
/* delegate.c - sb_conn_delegate: the supervisor spawns the program (a child
 * of the server, so it is reaped, stopped and reported like any other) and
 * splices it to the stub:
 *
 *   stub stdin  --frames-->  on_stdin  --pipe-->  program stdin
 *   program stdout/stderr  --capture-->  sb_conn_write  --frames-->  stub
 *
 * Neither direction buffers without bound. Stdin: above SB__SPLICE_HIGH
 * bytes written to the program and not yet taken, the connection is paused
 * (the stub stops reading its stdin); it resumes below SB__SPLICE_LOW.
 * Output: above SB__SPLICE_HIGH bytes queued for the stub, the program's
 * pipes are not read (it blocks writing); reading resumes below LOW.
 * The stub ends as the program did, after all of its output.
 * When the call has a terminal, the program gets a pseudo-terminal instead
 * of the stdin pipe and the stdout capture (pty.c): `in` is then its
 * master, which is written as the pipe was, and read for the output. */
#include "sb_internal.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SB__SPLICE_HIGH (1024u * 1024u)
#define SB__SPLICE_LOW (256u * 1024u)
/* How often a spawn that failed for want of fds or processes is tried again. */
#define SB__SPAWN_RETRY_MS 50u

/* One write of stdin to the program: the bytes are copied, as the
 * connection's read buffer is reused. */
typedef struct in_write {
  uv_write_t req;
  size_t len;
  char data[];
} in_write;

static void close_in(sb_conn *conn) {
  sb__dispo *dp = conn->dp;
  if (!dp->in_open)
    return;
  dp->in_open = false; /* pending writes end with UV_ECANCELED */
  uv_close((uv_handle_t *)&dp->in, sb__conn_handle_closed);
}

static void resume_stub(sb_conn *conn) {
  if (!conn->dp->conn_paused)
    return;
  conn->dp->conn_paused = false;
  sb_conn_resume(conn);
}

/* ---- stdin: stub -> program ------------------------------------------------ */

static void on_in_written(uv_write_t *req, int status) {
  in_write *w = sb__container_of(req, in_write, req);
  sb_conn *conn = req->data;
  sb__dispo *dp = conn->dp;

  dp->in_queued -= w->len;
  free(w);
  if (!dp->in_open)
    return; /* closing: the program ended, or the connection did */
  if (status < 0) {
    /* The program closed its stdin (EPIPE): it need not read it all, as
     * with a pipe in a shell. The rest is dropped. */
    dp->in_broken = true;
    if (!dp->on_pty)
      close_in(conn);
    resume_stub(conn);
  } else if (dp->in_eof && dp->in_queued == 0 && !dp->on_pty) {
    close_in(conn);
  } else if (dp->in_queued < SB__SPLICE_LOW) {
    resume_stub(conn);
  }
}

static void on_stdin(sb_conn *conn, const char *buf, size_t len) {
  sb__dispo *dp = conn->dp;
  in_write *w;
  uv_buf_t b;

  if (!dp->in_open || dp->in_broken)
    return;
  if (len == 0) {
    /* On a pty the master is the output too: it stays open (a terminal
     * has no EOF of its own; ^D is a key, relayed as a byte). */
    dp->in_eof = true;
    if (dp->in_queued == 0 && !dp->on_pty)
      close_in(conn);
    return;
  }
  w = malloc(sizeof *w + len);
  if (w == NULL) {
    sb__conn_close(conn, SB_CLOSE_SERVER, -ENOMEM);
    return;
  }
  memcpy(w->data, buf, len);
  w->len = len;
  w->req.data = conn;
  b = uv_buf_init(w->data, (unsigned)len);
  if (uv_write(&w->req, (uv_stream_t *)&dp->in, &b, 1, on_in_written) < 0) {
    free(w);
    dp->in_broken = true;
    close_in(conn);
    return;
  }
  dp->in_queued += len;
  if (dp->in_queued >= SB__SPLICE_HIGH && !dp->conn_paused) {
    dp->conn_paused = true;
    sb_conn_pause(conn);
  }
}

static void on_signal(sb_conn *conn, int signum) {
  if (conn->dp->child != NULL)
    sb_child_kill(conn->dp->child, signum);
}

/* ---- output: program -> stub ------------------------------------------------ */

/* Stops or resumes reading the program's output: its capture pipes, and
 * its pty's master. */
static void pause_output(sb_conn *conn, bool paused) {
  sb__dispo *dp = conn->dp;
  dp->out_paused = paused;
  if (dp->child != NULL)
    sb__child_capture_pause(dp->child, paused);
  if (dp->on_pty)
    sb__pty_pause(conn, paused);
}

static void on_out_written(sb_conn *conn, int status, void *data) {
  sb__dispo *dp = conn->dp;
  (void)status;
  free(data);
  if (dp->out_paused && dp->child != NULL && sb_conn_queued(conn) < SB__SPLICE_LOW)
    pause_output(conn, false);
}

static void on_output(sb_child *child, int stream, const char *buf, size_t len,
                      uint64_t ts_ns) {
  (void)ts_ns;
  if (child->data != NULL) /* else the stub is gone; the program is being stopped */
    sb__delegate_output(child->data, stream, buf, len);
}

void sb__delegate_output(sb_conn *conn, int stream, const char *buf, size_t len) {
  void *copy;

  if (conn->cbs.on_program_output != NULL)
    conn->cbs.on_program_output(conn, stream, buf, len);
  if (!sb__conn_accepted(conn))
    return;
  copy = malloc(len);
  if (copy == NULL) {
    sb__conn_close(conn, SB_CLOSE_SERVER, -ENOMEM);
    return;
  }
  memcpy(copy, buf, len);
  if (sb_conn_write(conn, stream, copy, len, on_out_written, copy) < 0) {
    free(copy); /* the caller closed that stream, or ended the stub */
    return;
  }
  if (!conn->dp->out_paused && sb_conn_queued(conn) >= SB__SPLICE_HIGH)
    pause_output(conn, true);
}

/* ---- the end ----------------------------------------------------------------- */

/* The program ended, and all it wrote has been queued for the stub. */
static void on_program_exit(sb_child *child, int64_t status, int signum) {
  sb_conn *conn = child->data;

  if (conn == NULL)
    return;
  child->data = NULL;
  conn->dp->child = NULL;
  sb__pty_drain(conn);
  close_in(conn);
  resume_stub(conn);
  if (conn->cbs.on_program_exit != NULL)
    conn->cbs.on_program_exit(conn, status, signum);
  if (conn->state != SB__CONN_OPEN)
    return;
  if (signum != 0 && sb_conn_kill(conn, signum) == 0)
    return;
  /* A signal without a name on the wire ends the stub as a shell reports
   * it; a lost status as our own failure. */
  sb_conn_exit(conn, signum != 0   ? (128 + signum) & 255
                     : status >= 0 ? (int)status
                                   : 125);
}

/* ---- sb_conn_delegate ----------------------------------------------------------- */

/* The program is started through the stub as a trampoline (stub/trampoline.c):
 * `stub SB_TRAMPOLINE_ARG PID FILE ARGV...` sets PR_SET_PDEATHSIG and
 * execs it, so the program dies with the supervisor, even with a supervisor
 * killed by SIGKILL (posix_spawn cannot set that itself). Returns the argv
 * (strings borrowed, but pid's), or NULL when out of memory. */
static char **trampoline_argv(const sb_conn *conn, const char *file, char *const *args,
                              char pid[24]) {
  size_t n = 0;
  char **v;

  while (args[n] != NULL)
    n++;
  v = malloc((n + 5) * sizeof *v);
  if (v == NULL)
    return NULL;
  snprintf(pid, 24, "%ld", (long)getpid());
  v[0] = conn->server->stub_path;
  v[1] = SB_TRAMPOLINE_ARG;
  v[2] = pid;
  v[3] = (char *)file;
  memcpy(v + 4, args, (n + 1) * sizeof *v);
  return v;
}

/* The trampoline's exec errors reach the call (126/127 and a line on its
 * stderr), not us: the usual ones are found here first, as posix_spawn
 * would have returned them. file is relative to cwd when not absolute. */
static int check_program(const char *cwd, const char *file) {
  char buf[PATH_MAX];

  if (strchr(file, '/') == NULL)
    return 0; /* looked up in PATH by the trampoline, as execvp does */
  if (file[0] != '/' && cwd != NULL) {
    if (snprintf(buf, sizeof buf, "%s/%s", cwd, file) >= (int)sizeof buf)
      return -ENAMETOOLONG;
    file = buf;
  }
  return sb__can_exec(file);
}

/* A terminal for the program when the call has one on stdin and stdout,
 * as ssh -t: not for `cmd < file` nor `cmd > file`, whose bytes a line
 * discipline would change. The stub must speak `pty` (its hello says). */
static bool wants_pty(const sb_conn *conn) {
  const unsigned both = SB_TTY_STDIN | SB_TTY_STDOUT;
  return conn->call.has_winsize && (conn->call.tty & both) == both;
}

/* The program's stdio on a pty: the slave (fds[0]) as stdin and stdout,
 * and stderr when the call's is a terminal too. */
static void pty_stdio(const sb_conn *conn, sb_spawn_options *o, int slave) {
  o->stdio[1] = (sb_stdio){.mode = SB_STDIO_FD, .fd = slave};
  if (conn->call.tty & SB_TTY_STDERR)
    o->stdio[2] = o->stdio[1];
}

/* Tells the stub its call runs on a pty, and starts reading the master. */
static int pty_started(sb_conn *conn) {
  sb_msg m;
  int r;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_PTY;
  r = sb__conn_send_msg(conn, &m);
  return r < 0 ? r : sb__pty_start(conn);
}

/* Our end of the program's stdin (a pipe's, or a pty's master) becomes
 * dp->in, a handle of the connection. */
static void keep_in(sb_conn *conn, int fd, bool pty) {
  sb__dispo *dp = conn->dp;
  int r;

  uv_pipe_init(conn->server->loop, &dp->in, 0);
  sb__conn_own_handle(conn, (uv_handle_t *)&dp->in);
  dp->in_open = true;
  if (uv_pipe_open(&dp->in, fd) < 0) {
    close(fd);
    dp->in_broken = true;
    close_in(conn);
  } else if (pty && (r = pty_started(conn)) < 0) {
    sb__conn_close(conn, SB_CLOSE_SERVER, r); /* the program is stopped */
  }
}

/* Spawns the program with its stdin from a fresh pipe (or a pty), and
 * keeps our end. */
static int spawn_program(sb_conn *conn, const char *cwd, const char *file,
                         char *const *args, char *const *env) {
  sb_spawn_options o = {.cwd = cwd, .env = env, .env_replace = true};
  char pid[24], **targs, slave[128];
  bool pty = wants_pty(conn);
  int fds[2], r;

  if ((r = check_program(cwd, file)) < 0)
    return r;
  if ((targs = trampoline_argv(conn, file, args, pid)) == NULL)
    return -ENOMEM;
  /* fds[0] is the program's stdin, fds[1] our end of it. */
  r = pty ? sb__pty_open(&conn->call.winsize, fds, slave, sizeof slave)
      : pipe2(fds, O_CLOEXEC) != 0 ? -errno
                                   : 0;
  if (r < 0) {
    free(targs);
    return r;
  }
  o.file = conn->server->stub_path;
  o.args = targs;
  o.stdio[0] = (sb_stdio){.mode = SB_STDIO_FD, .fd = fds[0]};
  o.stdio[1].mode = o.stdio[2].mode = SB_STDIO_CAPTURE;
  o.on_output = on_output;
  o.on_exit = on_program_exit;
  o.data = conn;
  if (pty)
    pty_stdio(conn, &o, fds[0]);
  r = sb__spawn(conn->server, &o, pty ? slave : NULL, &conn->dp->child);
  free(targs);
  close(fds[0]); /* no restart: the child has its copy */
  if (r < 0)
    close(fds[1]);
  else
    keep_in(conn, fds[1], pty);
  return r < 0 ? r : 0;
}

/* A copy of the array argv (strings borrowed) with first in place of argv[0]. */
static char **argv_with_first(char *const *argv, char *first) {
  size_t n = 0;
  char **v;
  while (argv[n] != NULL)
    n++;
  v = malloc((n + 1) * sizeof *v);
  if (v == NULL)
    return NULL;
  memcpy(v, argv, (n + 1) * sizeof *v);
  v[0] = first;
  return v;
}

/* Errors of the machine, not of the program: the spawn is tried again. */
static bool out_of_resources(int err) {
  return err == -EMFILE || err == -ENFILE || err == -EAGAIN;
}

static void on_spawn_retry(uv_timer_t *timer) {
  sb_conn *conn = timer->data;
  sb__dispo *dp = conn->dp;
  int r;

  if (!sb__conn_accepted(conn) || dp->spawn_file == NULL)
    return;
  r = spawn_program(conn, dp->spawn_cwd, dp->spawn_file, dp->spawn_args.v,
                    dp->spawn_env.v);
  if (out_of_resources(r))
    return; /* the next tick */
  uv_timer_stop(&dp->timer);
  free(dp->spawn_file);
  free(dp->spawn_cwd);
  dp->spawn_file = dp->spawn_cwd = NULL;
  sb_strv_free(&dp->spawn_args);
  sb_strv_free(&dp->spawn_env);
  if (r < 0) {
    /* It cannot run after all: the stub ends as a shell reports that. */
    sb_conn_exit(conn, r == -ENOENT || r == -ENOTDIR ? 127 : 126);
    return;
  }
  if (conn->stdin_done)
    close_in(conn); /* the stub's stdin ended while we waited */
  resume_stub(conn);
}

/* Keeps what the spawn needs and tries again every SB__SPAWN_RETRY_MS, as
 * a stub waits in the backlog when the supervisor is out of fds, rather
 * than failing the call. Its stdin waits in the kernel meanwhile. */
static int spawn_later(sb_conn *conn, const char *cwd, const char *file,
                       char *const *args, char *const *env) {
  sb__dispo *dp = conn->dp;

  if ((dp->spawn_file = sb__strdup(file)) == NULL ||
      (cwd != NULL && (dp->spawn_cwd = sb__strdup(cwd)) == NULL) ||
      sb_strv_copy(&dp->spawn_args, args) < 0 || sb_strv_copy(&dp->spawn_env, env) < 0)
    return -ENOMEM;
  if (!dp->timer_open) {
    uv_timer_init(conn->server->loop, &dp->timer);
    sb__conn_own_handle(conn, (uv_handle_t *)&dp->timer);
    dp->timer_open = true;
  }
  if (!dp->conn_paused) {
    dp->conn_paused = true;
    sb_conn_pause(conn);
  }
  return uv_timer_start(&dp->timer, on_spawn_retry, SB__SPAWN_RETRY_MS,
                        SB__SPAWN_RETRY_MS);
}

/* The stub's stdin, signals and window size go to the program. */
static const sb__dispo_ops delegate_ops = {
    .on_stdin = on_stdin,
    .on_signal = on_signal,
    .on_winsize = sb__pty_resize,
};

int sb_conn_delegate(sb_conn *conn, const sb_program *p) {
  char found[PATH_MAX], **env = NULL, **args = NULL, **set, *depth;
  const char *file;
  int r = sb__program_check(conn, p);

  if (r < 0)
    return r;
  set = sb__set_with_depth(conn->call.env, p->set, &depth);
  r = set != NULL && sb__dispo_get(conn) != NULL
          ? sb__env_apply(conn->call.env, p->unset, set, &env)
          : -ENOMEM;
  free(set);
  if (r < 0) {
    free(depth);
    return -ENOMEM;
  }
  file = p->path;
  if (file == NULL) {
    r = sb_path_find(p->argv[0], sb__env_value(env, "PATH"),
                     sb__env_value(env, SB_ENV_SHIMS), conn->server->stub_path, found,
                     sizeof found);
    file = found;
    /* A program looked up gets the path it was found at as argv[0], as
     * `exec /usr/bin/cc "$@"` would give it, and as the stub's exec and run
     * do: gcc, for one, searches PATH for its own name to find its parts,
     * and would find the shim. */
    if (r == 0 && (args = argv_with_first(p->argv, found)) == NULL)
      r = -ENOMEM;
  }
  if (r == 0) {
    const char *cwd = p->cwd != NULL ? p->cwd : conn->call.cwd;
    r = spawn_program(conn, cwd, file, args != NULL ? args : p->argv, env);
    if (out_of_resources(r))
      r = spawn_later(conn, cwd, file, args != NULL ? args : p->argv, env);
  }
  free(args);
  free(env);
  free(depth); /* sb_spawn copied the environment */
  if (r < 0)
    return r;
  sb__conn_choose(conn, SB__DISPO_DELEGATE, &delegate_ops);
  if (conn->stdin_done)
    close_in(conn); /* the stub's stdin ended before we were asked */
  return 0;
}
