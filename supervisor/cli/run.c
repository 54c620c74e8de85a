/* run.c - `socketbridge run`: a bridge, one supervised child, the signals
 * that stop it, the events file, and the exit status it ends with. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "socketbridge.h"

/* The signals that stop the child gracefully (a second one: at once). */
static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
#define N_STOP_SIGNALS (sizeof stop_signals / sizeof stop_signals[0])

/* A run that stayed up this long starts the backoff over. */
#define BACKOFF_RESET_MS 10000

typedef struct run_state {
  const cli_options *o;
  uv_loop_t loop;
  sb_server *server;
  sb_child *child;    /* NULL while no run is alive */
  int stdio[3];       /* files of --stdin/--stdout/--stderr, or -1 */
  int events_fd;      /* --events, or -1 */
  bool events_failed; /* a write failed: reported once, then skipped */
  uv_signal_t signals[N_STOP_SIGNALS];
  /* TODO(issue 4): the library's timeout, stop sequence and restart policy
   * (sb_spawn_options.timeout_ms..., sb_child_stop) replace these. */
  uv_timer_t timeout, kill, backoff;
  uint64_t run_started;  /* uv_now() at the current run's spawn */
  unsigned restarts;     /* runs after the first */
  unsigned backoff_step; /* restarts since the backoff last reset */
  bool stopping;         /* the stop sequence has begun: no restart */
  bool timed_out;        /* --timeout fired */
  bool done;             /* finish() ran */
  int status;            /* the exit status of run */
} run_state;

/* ---- events ---------------------------------------------------------------- */

static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writes one line to the events file, whole: a reader never sees half an
 * event. */
static void write_line(run_state *rs, const char *json) {
  size_t len = strlen(json), off = 0;
  char *line;
  if (rs->events_fd < 0 || rs->events_failed)
    return;
  line = malloc(len + 1);
  if (line == NULL)
    return;
  memcpy(line, json, len);
  line[len++] = '\n';
  while (off < len) {
    ssize_t n = write(rs->events_fd, line + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      rs->events_failed = true;
      cli_error("--events: %s: %s", rs->o->events_path, strerror(n < 0 ? errno : EIO));
      break;
    }
    off += (size_t)n;
  }
  free(line);
}

/* TODO(issue 4): sb_server_options.on_event and sb_event_to_json replace
 * this; the field names here follow sb_event. Takes ownership of ev. */
static void emit(run_state *rs, cJSON *ev) {
  char *json;
  if (ev == NULL)
    return;
  json = cJSON_PrintUnformatted(ev);
  if (json != NULL)
    write_line(rs, json);
  cJSON_free(json);
  cJSON_Delete(ev);
}

static cJSON *event(run_state *rs, const char *type, int64_t pid) {
  cJSON *ev;
  char ts[24];
  if (rs->events_fd < 0 || rs->events_failed)
    return NULL;
  ev = cJSON_CreateObject();
  cJSON_AddStringToObject(ev, "type", type);
  /* Nanoseconds do not fit a double: written as an exact integer. */
  snprintf(ts, sizeof ts, "%" PRIu64, realtime_ns());
  cJSON_AddRawToObject(ev, "ts_ns", ts);
  if (pid > 0)
    cJSON_AddNumberToObject(ev, "pid", (double)pid);
  return ev;
}

static void add_status(cJSON *ev, int64_t status, int signum) {
  if (ev == NULL)
    return;
  if (signum > 0) {
    const char *name = sb_signal_name(signum);
    cJSON_AddNumberToObject(ev, "signal", signum);
    if (name != NULL)
      cJSON_AddStringToObject(ev, "signal_name", name);
  } else {
    cJSON_AddNumberToObject(ev, "status", (double)status);
  }
}

static void add_number(cJSON *ev, const char *name, double v) {
  if (ev != NULL)
    cJSON_AddNumberToObject(ev, name, v);
}

/* ---- the stub: what every connection is answered --------------------------- */

/* Decides how a stub that connected ends. The only rule so far: exit 0 with
 * no output. A later issue adds --rules here. */
static void answer_stub(run_state *rs, sb_conn *conn) {
  (void)rs;
  sb_conn_exit(conn, 0);
}

static void on_conn_close(sb_conn *conn, sb_close_reason reason, int err) {
  run_state *rs = sb_conn_data(conn);
  cJSON *ev = event(rs, "stub_exit", sb_conn_call(conn)->pid);
  if (ev != NULL) {
    cJSON_AddStringToObject(ev, "close_reason", sb_close_reason_name(reason));
    if (reason == SB_CLOSE_EXITED)
      add_status(ev, 0, 0);
    if (err < 0)
      cJSON_AddStringToObject(ev, "message", sb_strerror(err));
  }
  emit(rs, ev);
}

static void on_connect(sb_server *server, sb_conn *conn) {
  run_state *rs = sb_server_data(server);
  const sb_call *call = sb_conn_call(conn);
  cJSON *ev = event(rs, "stub_connect", call->pid);
  if (ev != NULL) {
    cJSON *argv = cJSON_AddArrayToObject(ev, "argv");
    for (size_t i = 0; i < call->argc; i++)
      cJSON_AddItemToArray(argv, cJSON_CreateString(call->argv[i]));
  }
  emit(rs, ev);
  sb_conn_set_callbacks(conn, &(sb_conn_callbacks){.on_close = on_conn_close}, rs);
  answer_stub(rs, conn);
}

static void on_reject(sb_server *server, const sb_reject_info *info) {
  run_state *rs = sb_server_data(server);
  cJSON *ev = event(rs, "stub_reject", info->pid);
  if (ev != NULL) {
    cJSON_AddStringToObject(ev, "reason", sb_reason_name(info->reason));
    if (info->message != NULL)
      cJSON_AddStringToObject(ev, "message", info->message);
  }
  emit(rs, ev);
}

/* ---- opening files ------------------------------------------------------- */

static int open_file(const char *option, const char *path, int flags) {
  int fd;
  do
    fd = open(path, flags | O_CLOEXEC, 0666);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    cli_error("%s: %s: %s", option, path, strerror(errno));
  return fd;
}

/* Opens every file the options name, before anything runs. */
static int open_files(run_state *rs) {
  const cli_options *o = rs->o;
  const int wr = O_WRONLY | O_CREAT | O_TRUNC;
  if (o->stdin_path && (rs->stdio[0] = open_file("--stdin", o->stdin_path, O_RDONLY)) < 0)
    return -1;
  if (o->stdout_path && (rs->stdio[1] = open_file("--stdout", o->stdout_path, wr)) < 0)
    return -1;
  if (o->stderr_path && (rs->stdio[2] = open_file("--stderr", o->stderr_path, wr)) < 0)
    return -1;
  if (o->events_path && (rs->events_fd = open_file("--events", o->events_path, wr)) < 0)
    return -1;
  return 0;
}

static void close_files(run_state *rs) {
  for (int i = 0; i < 3; i++)
    if (rs->stdio[i] >= 0)
      close(rs->stdio[i]);
  if (rs->events_fd >= 0)
    close(rs->events_fd);
}

/* ---- stopping ------------------------------------------------------------ */

static void finish(run_state *rs);

static void send_stop(run_state *rs, int signum) {
  cJSON *ev = event(rs, "stop", sb_child_pid(rs->child));
  add_number(ev, "signal", signum);
  emit(rs, ev);
  sb_child_kill(rs->child, signum);
}

static void on_kill_timer(uv_timer_t *t) {
  run_state *rs = t->data;
  if (rs->child != NULL)
    send_stop(rs, SIGKILL);
}

/* The stop sequence: the stop signal to the child's group, SIGKILL after
 * the grace; no restart follows. While waiting to restart, it just ends. */
static void stop_child(run_state *rs) {
  if (rs->stopping || rs->done)
    return;
  rs->stopping = true;
  if (rs->child == NULL) {
    finish(rs);
    return;
  }
  send_stop(rs, rs->o->stop_signal);
  uv_timer_start(&rs->kill, on_kill_timer, rs->o->kill_after_ms, 0);
}

static void on_timeout(uv_timer_t *t) {
  run_state *rs = t->data;
  if (rs->done)
    return;
  rs->timed_out = true;
  rs->status = CLI_EXIT_TIMEOUT;
  emit(rs, event(rs, "timeout", rs->child ? sb_child_pid(rs->child) : 0));
  stop_child(rs);
}

static void on_signal(uv_signal_t *handle, int signum) {
  run_state *rs = handle->data;
  (void)signum;
  if (rs->stopping && rs->child != NULL)
    send_stop(rs, SIGKILL);
  else
    stop_child(rs);
}

/* ---- the end ------------------------------------------------------------- */

static void on_handle_closed(uv_handle_t *handle) {
  (void)handle;
}

static void on_server_closed(sb_server *server) {
  (void)server;
}

/* Closes everything on the loop; uv_run returns once it is all gone. */
static void finish(run_state *rs) {
  if (rs->done)
    return;
  rs->done = true;
  for (size_t i = 0; i < N_STOP_SIGNALS; i++)
    uv_close((uv_handle_t *)&rs->signals[i], on_handle_closed);
  uv_close((uv_handle_t *)&rs->timeout, on_handle_closed);
  uv_close((uv_handle_t *)&rs->kill, on_handle_closed);
  uv_close((uv_handle_t *)&rs->backoff, on_handle_closed);
  sb_server_close(rs->server, on_server_closed);
}

/* ---- spawning and restarting ----------------------------------------------- */

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

/* The delay before restart number step+1: MIN_MS doubled per step up to
 * MAX_MS, then "equal jitter": a uniform draw from [delay/2, delay] (half
 * rounded up). So
 * delays never shrink while doubling, and restarts of many supervisors do
 * not line up. */
static uint64_t backoff_delay(const cli_options *o, unsigned step) {
  uint64_t d = o->backoff_min_ms, r = 0;
  for (unsigned i = 0; i < step && d < o->backoff_max_ms; i++)
    d *= 2;
  if (d > o->backoff_max_ms)
    d = o->backoff_max_ms;
  if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
    r = (uint64_t)realtime_ns();
  return (d + 1) / 2 + r % (d - (d + 1) / 2 + 1);
}

static bool wants_restart(const cli_options *o, int64_t status, int signum) {
  if (o->restart == CLI_RESTART_ALWAYS)
    return true;
  return o->restart == CLI_RESTART_ON_FAILURE && (signum > 0 || status != 0);
}

static void on_child_exit(sb_child *child, int64_t status, int signum);

/* The files are opened here, not by the library (SB_STDIO_FILE), so an
 * unopenable one fails before anything runs, and every run after a restart
 * appends to the same --stdout/--stderr rather than truncating it. */
static sb_stdio stdio_of(int fd) {
  return fd >= 0 ? (sb_stdio){.mode = SB_STDIO_FD, .fd = fd}
                 : (sb_stdio){.mode = SB_STDIO_INHERIT};
}

static int spawn_child(run_state *rs) {
  const cli_options *o = rs->o;
  int r = sb_spawn(rs->server,
                   &(sb_spawn_options){
                       .file = o->command[0],
                       .args = o->command,
                       .env = o->env,
                       .stdio = {stdio_of(rs->stdio[0]), stdio_of(rs->stdio[1]),
                                 stdio_of(rs->stdio[2])},
                       .on_exit = on_child_exit,
                       .data = rs,
                   },
                   &rs->child);
  if (r < 0) {
    rs->child = NULL;
    return r;
  }
  rs->run_started = uv_now(&rs->loop);
  cJSON *ev = event(rs, "spawn", sb_child_pid(rs->child));
  add_number(ev, "restarts", rs->restarts);
  emit(rs, ev);
  return 0;
}

static void on_backoff(uv_timer_t *t) {
  run_state *rs = t->data;
  int r;
  rs->restarts++;
  rs->backoff_step++;
  cJSON *ev = event(rs, "restart", 0);
  add_number(ev, "restarts", rs->restarts);
  emit(rs, ev);
  /* A restarted --stdin is read from its start again. */
  if (rs->stdio[0] >= 0)
    lseek(rs->stdio[0], 0, SEEK_SET);
  r = spawn_child(rs);
  if (r < 0) {
    rs->status = spawn_failure(rs->o->command[0], r);
    finish(rs);
  }
}

static void on_child_exit(sb_child *child, int64_t status, int signum) {
  run_state *rs = sb_child_data(child);
  const cli_options *o = rs->o;
  cJSON *ev = event(rs, "exit", sb_child_pid(child));
  add_status(ev, status, signum);
  add_number(ev, "restarts", rs->restarts);
  emit(rs, ev);

  rs->child = NULL;
  uv_timer_stop(&rs->kill);
  if (rs->timed_out) {
    rs->status = CLI_EXIT_TIMEOUT;
  } else if (signum > 0) {
    rs->status = 128 + signum;
  } else if (status >= 0 && status <= 255) {
    rs->status = (int)status;
  } else {
    cli_error("the exit status of %s was lost", o->command[0]);
    rs->status = CLI_EXIT_FAILURE;
  }

  if (!rs->stopping && wants_restart(o, status, signum)) {
    if (rs->restarts < o->max_restarts) {
      uint64_t delay;
      if (uv_now(&rs->loop) - rs->run_started >= BACKOFF_RESET_MS)
        rs->backoff_step = 0;
      delay = backoff_delay(o, rs->backoff_step);
      ev = event(rs, "backoff", 0);
      add_number(ev, "delay_ms", (double)delay);
      add_number(ev, "restarts", rs->restarts);
      emit(rs, ev);
      uv_timer_start(&rs->backoff, on_backoff, delay, 0);
      return;
    }
    ev = event(rs, "give_up", 0);
    add_number(ev, "restarts", rs->restarts);
    emit(rs, ev);
  }
  finish(rs);
}

static int start(run_state *rs, const char *stub_path) {
  const cli_options *o = rs->o;
  int r;

  r = sb_server_new(&rs->loop,
                    &(sb_server_options){
                        .transport = o->transport == CLI_TRANSPORT_UNIX
                                         ? SB_TRANSPORT_UNIX
                                         : SB_TRANSPORT_TCP,
                        .stub_path = stub_path,
                        .on_connect = on_connect,
                        .on_reject = on_reject,
                        .data = rs,
                    },
                    &rs->server);
  if (r < 0) {
    cli_error("cannot open the bridge: %s", sb_strerror(r));
    return CLI_EXIT_FAILURE;
  }

  /* Watched before the child exists, so a signal right after the spawn
   * still stops it. */
  for (size_t i = 0; i < N_STOP_SIGNALS; i++) {
    uv_signal_init(&rs->loop, &rs->signals[i]);
    rs->signals[i].data = rs;
    uv_signal_start(&rs->signals[i], on_signal, stop_signals[i]);
  }
  uv_timer_init(&rs->loop, &rs->timeout);
  uv_timer_init(&rs->loop, &rs->kill);
  uv_timer_init(&rs->loop, &rs->backoff);
  rs->timeout.data = rs->kill.data = rs->backoff.data = rs;

  r = spawn_child(rs);
  if (r < 0) {
    rs->status = spawn_failure(o->command[0], r);
    finish(rs);
    return 0;
  }
  /* One deadline for the whole run, restarts included, as timeout(1). */
  if (o->timeout_ms > 0)
    uv_timer_start(&rs->timeout, on_timeout, o->timeout_ms, 0);
  return 0;
}

int cli_run(const cli_options *o) {
  run_state rs = {.o = o, .stdio = {-1, -1, -1}, .events_fd = -1};
  char *stub_path = NULL;
  int r;

  if (open_files(&rs) < 0) {
    close_files(&rs);
    return CLI_EXIT_FAILURE;
  }
  r = uv_loop_init(&rs.loop);
  if (r < 0) {
    cli_error("uv_loop_init: %s", uv_strerror(r));
    close_files(&rs);
    return CLI_EXIT_FAILURE;
  }
  stub_path = cli_stub_sibling();
  r = start(&rs, stub_path);
  if (r == 0) {
    uv_run(&rs.loop, UV_RUN_DEFAULT);
    r = rs.status;
  }
  if (uv_loop_close(&rs.loop) != 0)
    cli_error("internal error: a handle was left open");
  free(stub_path);
  close_files(&rs);
  return r;
}
