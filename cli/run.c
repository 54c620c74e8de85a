/* SPDX-License-Identifier: MIT */
/* run.c - `socketbridge run`: the command line turned into one sb_spawn of
 * the library, which supervises the child (stop sequence, restarts, backoff,
 * events, the whole-run --timeout as deadline_ms, the shims' PATH). What is
 * left here: the files the options name, the shim directory, the signals
 * that stop the child, and the exit status.
 * What each stub call gets is answer.c's. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "socketbridge.h"

/* How long stubs may take to close once the child has ended. */
#define CLI_LINGER_MS 2000

/* The signals that stop the child gracefully (a second one: at once). */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_STOP_SIGNALS (sizeof stop_signals / sizeof stop_signals[0])

typedef struct run_state {
  const cli_options *o;
  uv_loop_t loop;
  sb_server *server;
  sb_child *child; /* from a successful sb_spawn until on_exit */
  /* --stdin, --stdout, --stderr, --events, --record (outputs.c); the last
   * two are handed to their writers when the run starts. */
  cli_file files[5];
  cli_jsonl *events, *record; /* their writers, from the start on */
  uv_signal_t signals[N_STOP_SIGNALS];
  uv_timer_t linger;  /* how long stubs may take to close after the child */
  bool stopping;      /* stopped (by us or the deadline): the next signal kills */
  bool timed_out;     /* --timeout fired (the library's TIMEOUT): exit 124 */
  bool killed;        /* the stop needed SIGKILL: exit 137, as timeout -k */
  int status;         /* the exit status of run */
  bool finished;      /* finish() ran */
  cli_answer *answer; /* what each stub call gets */
  char *shim_dir;     /* --shim: this run's directory of links, or NULL */
  char **child_env;   /* -i, -u: COMMAND's whole environment (env.c), or NULL */
  cli_trace *trace;   /* -v, or NULL */
} run_state;

/* ---- events ---------------------------------------------------------------- */

static void write_event(run_state *rs, const sb_event *ev) {
  char *json;
  if (rs->events == NULL)
    return;
  if (sb_event_to_json(ev, &json) < 0) {
    cli_error("--events: out of memory: an event is lost");
    return;
  }
  cli_jsonl_write(rs->events, json);
  free(json);
}

static void on_event(sb_server *server, const sb_event *ev) {
  run_state *rs = sb_server_data(server);
  /* --stdin is an fd of ours (see open_files), which the library does not
   * rewind; RESTART comes just before the next run starts, and each run
   * reads the whole file. */
  if (ev->type == SB_EVENT_RESTART && rs->files[0].fd >= 0)
    lseek(rs->files[0].fd, 0, SEEK_SET);
  if (ev->type == SB_EVENT_STOP && ev->signal == SIGKILL)
    rs->killed = true;
  /* Only --timeout (deadline_ms) makes one: this run sets no timeout_ms. */
  if (ev->type == SB_EVENT_TIMEOUT)
    rs->timed_out = rs->stopping = true;
  write_event(rs, ev);
  cli_trace_event(rs->trace, ev);
}

/* ---- the stub: what every connection is answered (answer.c) ---------------- */

static void on_connect(sb_server *server, sb_conn *conn) {
  run_state *rs = sb_server_data(server);
  cli_answer_call(rs->answer, conn);
}

/* ---- --shim: a directory of links first on the child's PATH ----------------- */

static int make_shims(run_state *rs) {
  sb_ticket *ticket;
  int r;

  if (rs->o->nshims == 0)
    return 0;
  /* The shims' own ticket: the directory names it, so they reach this run
   * even under a nested one (shim.c). The server frees it when it closes. */
  if ((r = sb_ticket_new(rs->server, &ticket)) < 0) {
    cli_error("--shim: %s", sb_strerror(r));
    return -1;
  }
  if (rs->o->shim_dir != NULL)
    rs->shim_dir = cli_shim_dir_keep(rs->o->shim_dir, rs->o->shims,
                                     sb_server_stub_path(rs->server), ticket);
  else
    rs->shim_dir =
        cli_shim_dir_new(rs->o->shims, sb_server_stub_path(rs->server), ticket);
  /* sb_spawn puts it first on the child's PATH and SOCKETBRIDGE_SHIMS. */
  return rs->shim_dir != NULL ? 0 : -1;
}

static void remove_shims(run_state *rs) {
  /* --shim-dir stays: a build configured under the run keeps its paths;
   * its bridge file, which names this run's token, goes. */
  if (rs->shim_dir != NULL && rs->o->shim_dir == NULL)
    cli_shim_dir_remove(rs->shim_dir, rs->o->shims);
  else if (rs->shim_dir != NULL)
    cli_shim_bridge_remove(rs->shim_dir);
  free(rs->shim_dir);
}

/* ---- opening files ------------------------------------------------------- */

/* Opens every file the options name, before anything runs (not even the
 * bridge), changing none of them (outputs.c). Not left to SB_STDIO_FILE:
 * sb_spawn's error for a file is a bare errno, which names neither the
 * option nor the file and reads like the command's own (-ENOENT would be
 * exit 127, not 125). One open per file, so restarts append to
 * --stdout/--stderr, as SB_STDIO_FILE would. */
static int open_files(run_state *rs) {
  const cli_options *o = rs->o;
  if (cli_file_open(&rs->files[0], "--stdin", o->stdin_path, CLI_FILE_READ) < 0 ||
      cli_file_open(&rs->files[1], "--stdout", o->stdout_path, CLI_FILE_CHILD) < 0 ||
      cli_file_open(&rs->files[2], "--stderr", o->stderr_path, CLI_FILE_CHILD) < 0 ||
      cli_file_open(&rs->files[3], "--events", o->events_path, CLI_FILE_STREAM) < 0 ||
      cli_file_open(&rs->files[4], "--record", o->record_path, CLI_FILE_STREAM) < 0)
    return -1;
  return 0;
}

/* -C: a directory, checked before anything runs (a bad one would
 * otherwise read as a COMMAND not found, 127). */
static int check_chdir(const cli_options *o) {
  struct stat st;
  if (o->chdir == NULL)
    return 0;
  if (stat(o->chdir, &st) != 0) {
    cli_error("--chdir: %s: %s", o->chdir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    cli_error("--chdir: %s: %s", o->chdir, strerror(ENOTDIR));
    return -1;
  }
  return 0;
}

/* The run starts: the outputs are emptied now (not before: a run that
 * fails its checks leaves them as they were), and the JSON Lines ones get
 * their writers. */
static int start_files(run_state *rs) {
  for (size_t i = 0; i < 5; i++)
    cli_file_start(&rs->files[i]);
  if (rs->files[3].fd >= 0 &&
      cli_jsonl_new(&rs->loop, "--events", rs->o->events_path,
                    cli_file_take(&rs->files[3]), &rs->events) < 0)
    return -1;
  if (rs->files[4].fd >= 0 &&
      cli_jsonl_new(&rs->loop, "--record", rs->o->record_path,
                    cli_file_take(&rs->files[4]), &rs->record) < 0)
    return -1;
  cli_answer_start(rs->answer, rs->record);
  return 0;
}

static void close_files(run_state *rs) {
  for (size_t i = 0; i < 5; i++)
    cli_file_close(&rs->files[i]);
}

/* ---- stopping ------------------------------------------------------------ */

static void finish(run_state *rs);

static void stop_child(run_state *rs) {
  rs->stopping = true;
  sb_child_stop(rs->child);
}

static void on_signal(uv_signal_t *handle, int signum) {
  run_state *rs = handle->data;
  (void)signum;
  if (rs->child == NULL)
    finish(rs); /* the child is gone already: stop waiting for its stubs */
  else if (rs->stopping)
    sb_child_kill(rs->child, SIGKILL); /* -ESRCH between runs: it ends anyway */
  else
    stop_child(rs);
}

/* ---- the end ------------------------------------------------------------- */

/* The last events and records are in: their writers flush (bounded) and
 * close. */
static void on_server_closed(sb_server *server) {
  run_state *rs = sb_server_data(server);
  cli_jsonl_close(rs->events);
  cli_jsonl_close(rs->record);
  rs->events = rs->record = NULL;
}

/* Closes everything on the loop; uv_run returns once it is all gone. */
static void finish(run_state *rs) {
  if (rs->finished)
    return;
  rs->finished = true;
  for (size_t i = 0; i < N_STOP_SIGNALS; i++)
    uv_close((uv_handle_t *)&rs->signals[i], NULL);
  uv_close((uv_handle_t *)&rs->linger, NULL);
  cli_trace_close(rs->trace);
  sb_server_close(rs->server, on_server_closed);
}

static void finish_when_idle(void *data) {
  finish(data);
}

static void on_linger_over(uv_timer_t *t) {
  finish(t->data);
}

/* The child has ended; stubs it ran that were answered may not have closed
 * their connections yet (their ends race with the child's). Each is given
 * up to CLI_LINGER_MS to close, so its record says how it ended; stubs
 * still waiting for an answer then (a grandchild that outlived the child)
 * are cut off. */
static void end_after_calls(run_state *rs) {
  uv_timer_start(&rs->linger, on_linger_over, CLI_LINGER_MS, 0);
  cli_answer_when_idle(rs->answer, finish_when_idle, rs);
}

static void on_child_exit(sb_child *child, int64_t status, int signum) {
  run_state *rs = sb_child_data(child);
  rs->child = NULL;
  if (rs->timed_out && !rs->o->preserve_status) {
    /* As timeout -k: 137 when the stop had to kill. */
    rs->status = rs->killed ? 128 + SIGKILL : CLI_EXIT_TIMEOUT;
  } else if (signum > 0) {
    rs->status = 128 + signum;
  } else if (status >= 0 && status <= 255) {
    rs->status = (int)status;
  } else {
    cli_error("the exit status of %s was lost", rs->o->command[0]);
    rs->status = CLI_EXIT_FAILURE;
  }
  end_after_calls(rs);
}

/* ---- starting ------------------------------------------------------------ */

/* sb_spawn's errors as env(1) reports them. */
static int spawn_failure(const char *file, int err) {
  cli_error("%s: %s", file, strerror(-err));
  switch (err) {
  case -ENOENT:
  case -ENOTDIR:
  case -ENAMETOOLONG:
  case -ELOOP:
    return CLI_EXIT_NOT_FOUND;
  case -EACCES:
  case -EPERM:
  case -ENOEXEC:
  case -EISDIR:
  case -ETXTBSY:
    return CLI_EXIT_CANNOT_RUN;
  default:
    return CLI_EXIT_FAILURE;
  }
}

static sb_stdio stdio_of(int fd) {
  return fd >= 0 ? (sb_stdio){.mode = SB_STDIO_FD, .fd = fd}
                 : (sb_stdio){.mode = SB_STDIO_INHERIT};
}

static sb_restart restart_of(cli_restart r) {
  return r == CLI_RESTART_ALWAYS       ? SB_RESTART_ALWAYS
         : r == CLI_RESTART_ON_FAILURE ? SB_RESTART_ON_FAILURE
                                       : SB_RESTART_NO;
}

static int spawn_child(run_state *rs) {
  const cli_options *o = rs->o;
  return sb_spawn(rs->server,
                  &(sb_spawn_options){
                      .file = o->command[0],
                      .args = o->command,
                      .cwd = o->chdir,
                      .env = rs->child_env != NULL ? rs->child_env : o->env,
                      .env_replace = rs->child_env != NULL,
                      .shim_dir = rs->shim_dir,
                      .stdio = {stdio_of(rs->files[0].fd), stdio_of(rs->files[1].fd),
                                stdio_of(rs->files[2].fd)},
                      /* --timeout bounds the whole run, restarts and
                       * backoffs included, as timeout(1) does. */
                      .deadline_ms = o->timeout_ms,
                      /* Our defaults are in o: 0 is 0 (SIGKILL at once). */
                      .kill_after_ms = o->kill_after_ms,
                      .kill_after_set = true,
                      .stop_signal = o->stop_signal,
                      .restart = restart_of(o->restart),
                      .max_restarts = o->max_restarts,
                      .max_restarts_set = true,
                      .backoff_min_ms = o->backoff_min_ms,
                      .backoff_max_ms = o->backoff_max_ms,
                      .terminal = o->no_tty ? SB_TERMINAL_DETACH : SB_TERMINAL_FOREGROUND,
                      .on_exit = on_child_exit,
                      .data = rs,
                  },
                  &rs->child);
}

/* sb_server_new's error, naming the option that chose the address. */
static void bridge_failure(const cli_options *o, int err) {
  if (o->socket_path != NULL)
    cli_error("--socket: %s: %s", o->socket_path,
              err == -EADDRINUSE ? "a socket someone listens on is there"
              : err == -EEXIST   ? "something that is not a socket is there"
                                 : sb_strerror(err));
  else if (o->host != NULL)
    cli_error("--host: %s: %s", o->host, sb_strerror(err));
  else
    cli_error("cannot open the bridge: %s", sb_strerror(err));
}

static int start(run_state *rs, const char *stub_path) {
  const cli_options *o = rs->o;
  int r;

  r = sb_server_new(&rs->loop,
                    &(sb_server_options){
                        .transport = o->transport == CLI_TRANSPORT_UNIX
                                         ? SB_TRANSPORT_UNIX
                                         : SB_TRANSPORT_TCP,
                        .host = o->host,
                        /* options.c refuses a remote --host without one. */
                        .allow_remote = o->allowlist != NULL,
                        .allowlist = o->allowlist,
                        .socket_path = o->socket_path,
                        .socket_mode = o->socket_mode,
                        .stub_path = stub_path,
                        .max_bytes = o->max_bytes,
                        .max_connections = o->max_connections,
                        .on_connect = on_connect,
                        .on_event = on_event,
                        .data = rs,
                    },
                    &rs->server);
  if (r < 0) {
    bridge_failure(o, r);
    return CLI_EXIT_FAILURE;
  }

  /* Watched before the child exists, so a signal right after the spawn
   * still stops it. */
  for (size_t i = 0; i < N_STOP_SIGNALS; i++) {
    uv_signal_init(&rs->loop, &rs->signals[i]);
    rs->signals[i].data = rs;
    uv_signal_start(&rs->signals[i], on_signal, stop_signals[i]);
  }
  uv_timer_init(&rs->loop, &rs->linger);
  rs->linger.data = rs;

  if (make_shims(rs) < 0 || start_files(rs) < 0) {
    rs->status = CLI_EXIT_FAILURE;
    finish(rs);
    return 0;
  }
  if (cli_env_edit(o, o->env, &rs->child_env) < 0) {
    cli_error("out of memory");
    rs->status = CLI_EXIT_FAILURE;
    finish(rs);
    return 0;
  }
  r = spawn_child(rs);
  if (r < 0) {
    rs->status = spawn_failure(o->command[0], r);
    finish(rs);
    return 0;
  }
  return 0;
}

int cli_run(const cli_options *o) {
  run_state rs = {.o = o};
  /* Shims need a stub that is there: without one the shell would skip
   * them and run the real tools (stubpath.c). */
  char *stub_path = o->nshims > 0 ? cli_stub_resolve("--shim") : cli_stub_sibling();
  int r;

  for (size_t i = 0; i < 5; i++)
    rs.files[i].fd = -1;
  if (o->nshims > 0 && stub_path == NULL)
    return CLI_EXIT_FAILURE;
  if (check_chdir(o) < 0 || cli_answer_new(o, &rs.answer) < 0) {
    free(stub_path);
    return CLI_EXIT_FAILURE;
  }
  if (open_files(&rs) < 0) {
    cli_answer_free(rs.answer);
    close_files(&rs);
    free(stub_path);
    return CLI_EXIT_FAILURE;
  }
  r = uv_loop_init(&rs.loop);
  if (r < 0) {
    cli_error("uv_loop_init: %s", uv_strerror(r));
    cli_answer_free(rs.answer);
    close_files(&rs);
    free(stub_path);
    return CLI_EXIT_FAILURE;
  }
  rs.trace = cli_trace_new(o, &rs.loop);
  r = start(&rs, stub_path);
  if (r == 0) {
    uv_run(&rs.loop, UV_RUN_DEFAULT);
    r = rs.status;
  } else {
    cli_trace_close(rs.trace); /* the only handle there is */
    uv_run(&rs.loop, UV_RUN_DEFAULT);
  }
  if (uv_loop_close(&rs.loop) != 0)
    cli_error("internal error: a handle was left open");
  remove_shims(&rs);
  free(rs.child_env);
  cli_trace_free(rs.trace);
  cli_answer_free(rs.answer);
  free(stub_path);
  close_files(&rs);
  return r;
}
