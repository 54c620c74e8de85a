/* SPDX-License-Identifier: MIT */
/* sb_internal.h - private declarations of the supervisor library.
 *
 * Every object here owns libuv handles, and, as in libuv, its memory is freed
 * only in the close callback of the last of them. The server keeps a list of
 * each kind of object it owns, and finishes its own close (sb_server_close's
 * callback) only when every list is empty and the listener is closed.
 */
#ifndef SB_SUPERVISOR_INTERNAL_H
#define SB_SUPERVISOR_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowlist.h"
#include "proto.h"
#include "socketbridge.h"

/* ---- defaults and limits ------------------------------------------------ */

#define SB__DEFAULT_HOST "127.0.0.1"     /* TCP bind address */
#define SB__DEFAULT_HANDSHAKE_MS 10000u  /* accept to complete hello */
#define SB__LINGER_MS 1000u              /* drain a rejected peer at most so long */
#define SB__LINGER_BYTES (1024u * 1024u) /* and at most so many of its bytes */
#define SB__READ_BUF_SIZE (64u * 1024u)  /* per-connection read buffer */
#define SB__PTY_BUF_SIZE (16u * 1024u)   /* a read of a delegated pty master */
#define SB__PTY_DRAIN_READS 64u          /* reads of a master after its program ended */
#define SB__UNAUTH_BYTES (56u << 20) /* held for peers without a valid token, at most */
#define SB__WRITE_POOL_MAX 256u      /* write requests kept for reuse */
#define SB__LISTEN_BACKLOG 4096      /* pending connections (the kernel caps it) */
#define SB__KILL_AFTER_MS 5000u      /* grace between the stop signal and KILL */
#define SB__MAX_RESTARTS 5u          /* restarts in a row before giving up */
#define SB__BACKOFF_MIN_MS 100u      /* the first restart's delay */
#define SB__BACKOFF_MAX_MS 30000u    /* the longest delay */
#define SB__BACKOFF_RESET_MS 10000u  /* a run this long resets the backoff */
#define SB__CAPTURE_BUF_SIZE (64u * 1024u) /* per-child read buffer for captures */

/* ---- intrusive doubly linked lists --------------------------------------- */

typedef struct sb__link {
  struct sb__link *prev, *next;
} sb__link;

#define sb__container_of(ptr, type, member)                                              \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

static inline void sb__list_init(sb__link *head) {
  head->prev = head->next = head;
}

static inline bool sb__list_empty(const sb__link *head) {
  return head->next == head;
}

static inline void sb__list_push(sb__link *head, sb__link *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}

static inline void sb__list_remove(sb__link *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = node;
}

/* ---- write requests ------------------------------------------------------ */

/* One uv_write: a data write (its frame headers live here, the payload is the
 * caller's), or a control frame the library built (owned). Pooled by the
 * server so the hot path does not allocate. */
typedef struct sb__write_req {
  uv_write_t req;
  sb_conn *conn;
  sb_write_cb cb; /* the caller's, or NULL */
  void *data;
  void *owned;  /* freed when the write ends: a copy, a control frame */
  void *frames; /* headers and buffers of a write cut into several frames */
  size_t bytes; /* the caller's payload, counted in sb_conn.queued */
  struct sb__write_req *next_free;
  uint8_t hdr[SB_FRAME_HEADER]; /* the header of a single-frame write */
} sb__write_req;

/* ---- objects ------------------------------------------------------------- */

typedef union sb__stream {
  uv_handle_t handle;
  uv_stream_t stream;
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} sb__stream;

struct sb_server {
  uv_loop_t *loop;
  sb_transport transport;
  /* The listening socket (listener.c), accepted on by accept.c. */
  int listen_fd;
  uv_poll_t accept_poll;     /* readable: connections are waiting */
  uv_timer_t accept_retry;   /* while paused: when to try again */
  unsigned listener_handles; /* of those two, initialised and not yet closed */
  bool accept_paused;        /* an accept failed for want of fds or memory */
  uint64_t paused_at_ms;     /* uv_now() when it paused */
  char *address;             /* "127.0.0.1", "::1" or the Unix socket's path */
  char *sock_dir;            /* Unix: the mkdtemp directory, removed at close */
  int sock_dir_lock;         /* Unix: the directory, flock()ed while we live, or -1 */
  bool own_sock_file;        /* Unix: a socket_path file we bound, removed at close */
  dev_t sock_dev;            /* ... if it is still that file */
  ino_t sock_ino;
  char *stub_path; /* absolute */
  uint16_t port;
  uint32_t max_bytes;
  unsigned max_connections; /* 0: no bound but fds (accept pauses on EMFILE) */
  unsigned handshake_timeout_ms;
  sb_allowlist allow;
  bool have_allow; /* TCP peers are checked against allow */
  sb_connect_cb on_connect;
  sb_reject_cb on_reject;
  sb_event_cb on_event;
  void *data;
  sb_message_cb on_message; /* side-band messages (message.c), or NULL */
  uint64_t started_ns;      /* uv_hrtime() at sb_server_new: status uptime */
  uint64_t rng;             /* xorshift64 state for backoff jitter; never 0 */

  sb__link tickets;    /* sb_ticket.link */
  sb__link conns;      /* sb_conn.link, until freed */
  sb__link children;   /* sb_child.link, until reaped */
  uv_signal_t sigchld; /* SIGCHLD watcher, active while there are children */
  bool sigchld_open;   /* initialised and not yet closed */
  bool sigchld_closing;
  unsigned nactive; /* connections handshaking or welcomed */
  /* What peers that have not shown a valid token hold (conn_read.c): their
   * connections and the hello bytes buffered for them, at most
   * SB__UNAUTH_BYTES. Without room, reading them (starved) and accepting
   * more (accept_held) wait until some is freed. */
  size_t unauth_bytes;
  unsigned nstarved;
  bool accept_held;
  uint8_t *hs_rbuf; /* SB__READ_BUF_SIZE: the read buffer of connections not welcomed */
  sb_server_stats stats;

  sb__write_req *free_reqs;
  unsigned nfree_reqs;

  bool free_on_close; /* sb_server_new failed: the listener's close frees it */
  bool closing;       /* sb_server_close was called */
  bool finished;      /* the close callback ran or is running */
  sb_server_close_cb close_cb;
};

struct sb_ticket {
  sb_server *server;
  sb__link link;
  sb_child *child; /* the child it was made for, or NULL */
  void *data;
  char token[SB_TOKEN_HEX + 1];
  char *env[7]; /* "NAME=VALUE" strings, NULL-terminated */
};

/* How one of a child's stdin, stdout, stderr is set up, kept for every run
 * (restarts included). */
typedef struct sb__stdio_cfg {
  sb_stdio_mode mode;
  int fd;     /* FD: the caller's; FILE: ours, opened once by sb_spawn */
  char *data; /* BUFFER: our copy */
  size_t len; /* BUFFER */
} sb__stdio_cfg;

/* Where a child is in its life. */
typedef enum sb__child_state {
  SB__CHILD_RUNNING = 0, /* a run is alive: pid is ours to signal */
  SB__CHILD_REAPED,      /* a run ended: deciding what follows (callbacks run) */
  SB__CHILD_BACKOFF,     /* between runs: the timer starts the next one */
  SB__CHILD_ENDING,      /* ended for good: on_exit is due (timer, 0 ms) */
  SB__CHILD_ENDED,       /* on_exit ran: handles closing, then freed */
} sb__child_state;

struct sb_child {
  sb_server *server;
  sb__link link;     /* in server->children until freed */
  sb_ticket *ticket; /* NULL once revoked */
  sb_exit_cb on_exit;
  sb_output_cb on_output;
  void *data;

  /* What to run, copied from sb_spawn_options for restarts. */
  char *file;
  char **args;
  char *cwd;
  char **env; /* opts->env; the supervisor's is read again at each run */
  bool env_replace;
  char **stub_env;      /* "NAME=<stub path>" for each of opts->stub_vars, or NULL */
  char *shim_dir;       /* first on PATH and SOCKETBRIDGE_SHIMS (shim.c), or NULL */
  char **own_shims;     /* opts->shims: shim_dir is ours, removed when freed */
  uint64_t deadline_ms; /* the whole life's, or 0 */
  sb__stdio_cfg stdio[3];
  uint64_t timeout_ms, kill_after_ms;
  int stop_signal;
  sb_restart restart;
  unsigned max_restarts;
  uint64_t backoff_min_ms, backoff_max_ms, backoff_reset_ms;
  sb_terminal terminal;
  /* A terminal the program opens as its controlling one, in its new
   * session, on fds 0..2 unless they are given otherwise (the pty of a
   * delegated call; delegate.c), or NULL. */
  char *ctty;

  sb__child_state state;
  pid_t pid;           /* the current run's, or 0 */
  uint64_t started_ns; /* uv_hrtime() at the current run's start */
  bool stopping;       /* sb_child_stop, a timeout or sb_server_close: no restart */
  bool timed_out;      /* this run's deadline passed */
  bool term_sent;      /* this run got the stop signal */
  bool kill_sent;      /* this run got SIGKILL */
  unsigned restarts;   /* in all */
  unsigned backoff_k;  /* restarts since the backoff was last reset */
  int64_t last_status; /* the last run's end, for on_exit */
  int last_signal;
  /* FOREGROUND: this run's terminal (/dev/tty, ours), which the run's group
   * has been given; -1 when the run is detached. child.c owns it. */
  int tty_fd;

  /* Handles: the timer (deadline, grace, backoff, or the deferred on_exit)
   * lives as long as the child; the pipes live for one run. The child is
   * freed when the last of them has closed after on_exit. */
  uv_timer_t timer;
  uv_timer_t deadline; /* deadline_ms, from sb_spawn on */
  uv_pipe_t out[2];    /* CAPTURE of stdout, stderr */
  bool out_open[2];
  uv_pipe_t in; /* BUFFER stdin */
  uv_write_t in_req;
  bool in_open;
  int open_handles;
  char *rbuf;          /* SB__CAPTURE_BUF_SIZE bytes, when a stream is captured */
  uint64_t last_ts_ns; /* output timestamps never go backwards */
};

/* What the caller chose for a connection with the one-call functions. */
typedef enum sb__dispo_kind {
  SB__DISPO_NONE = 0, /* the caller drives it byte by byte, or has not chosen */
  SB__DISPO_RESPOND,
  SB__DISPO_DELEGATE,
  SB__DISPO_EXEC,
  SB__DISPO_RUN,
} sb__dispo_kind;

/* The state of a disposition that outlives the call choosing it: a delayed
 * response, or a delegated program. Its handles belong to the connection
 * (their data is the sb_conn, they count in open_handles, and the
 * connection's close closes them); it is freed with the connection. */
typedef struct sb__dispo {
  /* respond with a delay */
  uv_timer_t timer;
  bool timer_open;
  char *out, *err;
  size_t out_len, err_len;
  int code, signum;
  /* delegate */
  sb_child *child; /* the program, until it has ended */
  /* A spawn that failed for want of fds or processes, tried again on timer
   * (copies: the caller's sb_program lives only during its call). */
  char *spawn_file, *spawn_cwd;
  sb_strv spawn_args, spawn_env;
  uv_pipe_t in;     /* our end of the program's stdin */
  bool in_open;     /* in is initialised and not closing */
  bool in_eof;      /* the stub's stdin ended: close in once written */
  bool in_broken;   /* the program closed its stdin: drop the rest */
  size_t in_queued; /* stdin bytes written to in, not yet taken */
  bool conn_paused; /* we paused the connection: in is full */
  bool out_paused;  /* we paused the program's output: the stub is slow */
  /* delegate on a pseudo-terminal (pty.c): `in` is its master, read too */
  bool on_pty;
  char *pty_buf; /* SB__PTY_BUF_SIZE bytes, for reads of the master */
} sb__dispo;

/* What a disposition does with its connection's events; conn.c calls them
 * (a NULL member, or no table: the default). */
typedef struct sb__dispo_ops {
  void (*on_stdin)(sb_conn *conn, const char *buf, size_t len); /* len 0: its end */
  void (*on_signal)(sb_conn *conn, int signum);                 /* the stub got it */
  void (*on_winsize)(sb_conn *conn);                            /* call.winsize changed */
  void (*on_exited)(sb_conn *conn, const sb_status *st);        /* run, exec: `exited` */
} sb__dispo_ops;

/* Where a connection is in its life; conn.c's diagram has the transitions. */
typedef enum sb__conn_state {
  SB__CONN_HANDSHAKE = 0, /* waiting for hello (or a side-band send) */
  SB__CONN_OPEN,          /* accepted: the caller (or message.c) has it */
  SB__CONN_ENDING,        /* its end is told (exit, kill, exec, a reply): nothing more
                             is written; read on until the peer closes */
  SB__CONN_REJECTING,     /* reject sent; draining the peer until it closes */
  SB__CONN_CLOSING,       /* handles closing; freed in the last close callback */
} sb__conn_state;

/* What the read layer (conn_read.c) and the write layer (wire.c) report to
 * the state's owner (conn.c): callbacks, so that calls between the files
 * go one way, down. */
typedef struct sb__conn_events {
  /* head_len grew: true when head is decided and goes on to the decoder;
   * false while more is needed, or when the peer was refused. */
  bool (*head)(sb_conn *conn);
  void (*frame)(sb_conn *conn, const sb_frame *f);
  void (*decode_error)(sb_conn *conn, int err, const sb_diag *diag);
  /* The peer closed (UV_EOF), a read failed, or a rejected peer's drain is
   * over. */
  void (*read_end)(sb_conn *conn, int err);
  /* Reading or writing failed on our side or the peer's: close, unless
   * the connection is past talking (rejecting, closing). */
  void (*failed)(sb_conn *conn, sb_close_reason reason, int err);
} sb__conn_events;

struct sb_conn {
  sb_server *server;
  sb__link link;
  sb__stream io;
  uv_timer_t timer; /* handshake timeout, then deferred reads, or the linger */
  uv_shutdown_t shutdown_req;
  int open_handles; /* handles whose close callback has not run */
  const sb__conn_events *ev;

  /* The state machine: assigned in conn.c only, by its transitions and the
   * verbs the other files call. */
  sb__conn_state state;
  bool welcomed;   /* on_connect ran: on_close will too */
  bool paused;     /* the caller paused reading */
  bool stdin_done; /* the stub's stdin ended */
  bool out_closed[3];
  bool have_hello;
  bool head_done; /* decided: head went on to the decoder */
  bool authed;    /* the hello began with a live token: not charged */
  /* welcome goes out after on_connect returns, or before the first frame
   * the caller queues from it: by then an exec or run chosen in on_connect
   * tells the stub to leave its stdin alone. */
  bool welcome_pending;
  bool hold_stdin;
  bool held; /* sb_conn_hold: the welcome waits for the caller */
  bool told; /* the stub was told how to end (told_code, told_signal): by
                sb_conn_exit or sb_conn_kill, or a failed exec's report */
  int told_code;
  int told_signal;
  sb__dispo_kind dispo;
  const sb__dispo_ops *ops; /* the disposition's, or NULL */
  sb__dispo *dp;            /* NULL unless a disposition needs state */
  bool prog_out_end[3];     /* run: the stub's relay of stdout, stderr ended */
  bool prog_exited;         /* run, exec: `exited` came */
  sb_close_reason close_reason;
  int close_err;
  int version;  /* chosen in the handshake */
  sb_msg hello; /* owns what call points to */
  sb_call call;
  sb_ticket *ticket;
  sb_child *child;
  sb_message *msg; /* a side-band sender: its message, until replied */
  sb_conn_callbacks cbs;
  void *data;

  /* Reading (conn_read.c). The stream's first bytes gather in head until
   * they tell whether the hello begins with a token (SB_HELLO_PREFIX); only
   * then do they go on to the decoder. */
  uint8_t head[SB_FRAME_HEADER + SB_HELLO_PREFIX_LEN];
  size_t head_len;
  bool reading;    /* uv_read_start is in effect */
  bool in_process; /* frames are being dispatched (reentrancy guard) */
  bool starved;    /* not read for want of room in server->unauth_bytes */
  size_t charged;  /* this connection's part of server->unauth_bytes */
  size_t drained;  /* bytes of a rejected peer read and dropped */
  sb_decoder dec;
  uint8_t *rbuf;       /* SB__READ_BUF_SIZE bytes, reused for every read */
  const uint8_t *pend; /* bytes of rbuf read but not dispatched (paused) */
  size_t pend_len;

  /* Writing (wire.c). */
  size_t queued; /* payload bytes of writes whose callback has not run */
};

/* Past the handshake and not closing: OPEN or ENDING. */
static inline bool sb__conn_accepted(const sb_conn *conn) {
  return conn->state == SB__CONN_OPEN || conn->state == SB__CONN_ENDING;
}

/* Reading and dispatching what it reads: HANDSHAKE, OPEN or ENDING. */
static inline bool sb__conn_live(const sb_conn *conn) {
  return conn->state == SB__CONN_HANDSHAKE || sb__conn_accepted(conn);
}

/* What an unauthenticated connection costs by itself (conn_read.c), with the
 * allocator's and libuv's share. */
#define SB__CONN_COST (sizeof(sb_conn) + 512u)
/* Room an unauthenticated connection needs to be read: one read's growth,
 * and a reserve of 1 MiB for accepting new peers meanwhile (conn_read.c). */
#define SB__READ_ROOM (SB_DECODER_GROWTH(SB__READ_BUF_SIZE) + (1u << 20))

/* ---- server.c ------------------------------------------------------------ */

void sb__server_free(sb_server *server);
/* Finishes sb_server_close once nothing it owns is left. */
void sb__server_maybe_finish(sb_server *server);
sb__write_req *sb__req_get(sb_server *server);
void sb__req_put(sb_server *server, sb__write_req *req);

/* ---- listener.c ---------------------------------------------------------- */

/* Binds and listens as opts say; fills address, port, sock_dir. On error no
 * socket or directory is left; if a handle had to be closed (never seen on
 * Linux), free_on_close is set and its close callback frees the server. */
int sb__listener_start(sb_server *server, const sb_server_options *opts);
void sb__listener_close(sb_server *server);
/* Whether the peer of an accepted connection may talk to us; on refusal,
 * fills msg. */
bool sb__listener_peer_allowed(sb_server *server, sb_conn *conn, char *msg, size_t msgsz);

/* ---- accept.c ------------------------------------------------------------ */

/* Starts accepting on fd, a listening socket; on success the two handles
 * own nothing but the server must close them (sb__accept_stop), then fd. */
int sb__accept_start(sb_server *server, int fd);
/* Closes both handles; cb runs for each. */
void sb__accept_stop(sb_server *server, uv_close_cb cb);
/* An fd of ours was freed: if accepting is paused, try again now. */
void sb__accept_kick(sb_server *server);

/* ---- token.c ------------------------------------------------------------- */

/* Fills out with SB_TOKEN_HEX lowercase hex digits of 256 random bits from
 * getrandom(2), and a NUL. Returns 0 or a negative errno. */
int sb_token_new(char out[SB_TOKEN_HEX + 1]);

/* True when a is exactly b; time depends only on the lengths, never on where
 * the two differ. */
bool sb_token_equal(const char *a, const char *b);

/* ---- ticket.c ------------------------------------------------------------ */

int sb__ticket_create(sb_server *server, sb_child *child, sb_ticket **out);
/* The ticket whose token is token, or NULL. Compares every ticket in
 * constant time each. */
sb_ticket *sb__ticket_lookup(sb_server *server, const char *token);
void sb__tickets_free_all(sb_server *server);

/* ---- child.c: options and spawning -------------------------------------- */

/* Starts one run of the child (first or restart): pipes, posix_spawn. On
 * success the child is RUNNING with its pid (the caller then calls
 * sb__supervise_started); exec errors are returned. */
int sb__child_start(sb_child *child);
/* What execve would say of path without running it: 0 or -errno. */
int sb__can_exec(const char *path);
/* Sends signum to the run's process group, or to the leader alone when it
 * left the group (a setsid or setpgid of its own). Returns 0 or -errno
 * (-ESRCH: neither is there). The child must have a pid. */
int sb__child_signal(sb_child *child, int signum);
/* Frees what sb_spawn copied; the child itself too. */
void sb__child_free(sb_child *child);
/* sb_spawn with ctty (see sb_child.ctty; may be NULL). */
int sb__spawn(sb_server *server, const sb_spawn_options *opts, const char *ctty,
              sb_child **out);
/* FOREGROUND runs (child->tty_fd >= 0): the run ended, stopped by signum,
 * or was continued. Ending and stopping give the terminal back to our own
 * process group; a stop by a job-control signal stops us too, and
 * continues the run once we are continued. */
void sb__child_tty_ended(sb_child *child);
void sb__child_tty_stopped(sb_child *child, int signum);
void sb__child_tty_continued(sb_child *child);

/* ---- child_stdio.c: stdio modes and capture -------------------------------- */

/* The fds one run's stdin, stdout and stderr come from (-1: inherit ours),
 * and our ends of its pipes. All >= 3 and close-on-exec. */
typedef struct sb__stdio_plan {
  int child_fd[3];        /* dup2'd onto 0..2 in the child */
  bool close_child_fd[3]; /* ours to close after the spawn */
  int parent_fd[3];       /* BUFFER stdin, CAPTURE stdout/stderr: our end, or -1 */
} sb__stdio_plan;

/* Checks opts->stdio and copies it into child; opens FILE paths. */
int sb__stdio_setup(sb_child *child, const sb_spawn_options *opts);
/* Opens what a run needs before the spawn (pipes, /dev/null). */
int sb__stdio_plan_open(sb_child *child, sb__stdio_plan *plan);
/* After the spawn: closes the child's ends; on success (spawned) starts
 * capturing and feeding stdin through our ends, else closes them too. */
void sb__stdio_plan_finish(sb_child *child, sb__stdio_plan *plan, bool spawned);
/* The run's leader was reaped: delivers what its pipes still hold, then
 * closes them. */
void sb__stdio_run_ended(sb_child *child);
/* Closes the FILE fds sb_spawn opened; frees the BUFFER copy. */
void sb__stdio_cleanup(sb_child *child);

/* ---- supervise.c: reaping, stop sequence, timeout, restart ---------------- */
void sb__child_handle_closed(uv_handle_t *handle);

/* A run started: arms the deadline, emits SPAWN. */
void sb__supervise_started(sb_child *child);
/* sb_spawn: arms deadline_ms, the whole life's (before the first SPAWN). */
void sb__supervise_deadline(sb_child *child);
/* Starts watching SIGCHLD (before the first spawn). */
int sb__children_watch(sb_server *server);
void sb__children_kill_all(sb_server *server);
/* Closes the SIGCHLD watcher once no child is left; true when it is closed
 * (sb__server_maybe_finish is called again from its close callback). */
bool sb__children_close(sb_server *server);

/* ---- event.c --------------------------------------------------------------- */

/* Stamps ev with the time and hands it to the server's on_event, if any. */
void sb__emit(sb_server *server, sb_event *ev);
/* An event about child, of type, with its pid and restarts filled in. */
void sb__emit_child(sb_child *child, sb_event_type type, sb_event *ev);
uint64_t sb__realtime_ns(void);

/* ---- conn.c: a connection's state and every transition of it ------------- */

/* A connection on fd, an accepted socket of the server's transport (and,
 * for tests/fuzz/fuzz_conn.c, any connected Unix socket on a Unix
 * server): counted in the stats, checked, handshake timer armed, reading.
 * On error (-EINVAL: the server is closing; -ENOMEM; uv_*_open's) the fd is
 * still the caller's. *out may be rejected already (busy); it is freed by
 * the loop, like any connection, once closed. */
int sb__conn_adopt_fd(sb_server *server, int fd, sb_conn **out);
/* Begins closing: on_close runs (for a welcomed connection) once every
 * handle has closed. Idempotent. */
void sb__conn_close(sb_conn *conn, sb_close_reason reason, int err);
/* Refuses a peer that has not been welcomed: reject frame (when send), then
 * a bounded drain, then close. */
void sb__conn_reject(sb_conn *conn, sb_reason reason, bool send, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Clears what connections know of a ticket or child about to disappear. */
void sb__conns_forget(sb_server *server, const sb_ticket *ticket, const sb_child *child);
/* The checks hello and send share: the version range the peer speaks
 * against ours, then its token. On success sets conn->ticket and returns
 * the version chosen; else rejects the peer and returns 0. The token is
 * wiped either way. */
int sb__conn_check_peer(sb_conn *conn, int version, int min_version, char *token);
/* message.c: the checked side-band sender is accepted (OPEN, not
 * welcomed), and msg is its message until replied (or NULL). */
void sb__conn_accept_sender(sb_conn *conn, int version);
void sb__conn_set_message(sb_conn *conn, sb_message *msg);
/* message.c: the reply was queued; nothing follows it (ENDING): FIN, and
 * read until the sender closes. */
void sb__conn_replied(sb_conn *conn);
/* Sends the deferred welcome now, if it is still due (else 0). Nothing
 * may precede it: every write calls it first. */
int sb__conn_welcome(sb_conn *conn);
/* Whether the caller may write to stream (1, 2) now: 0, -EINVAL,
 * -ENOTCONN, -EPIPE (ended, exec or run, or that stream closed). */
int sb__conn_writable(const sb_conn *conn, int stream);
/* Queue a whole frame the library built (taking frame), or a control
 * message; the welcome, if due, goes first. */
int sb__conn_send_owned(sb_conn *conn, void *frame, size_t len);
int sb__conn_send_msg(sb_conn *conn, const sb_msg *m);
/* A handle of a disposition becomes the connection's: its data is conn,
 * and the connection is freed only after its close. */
void sb__conn_own_handle(sb_conn *conn, uv_handle_t *handle);
void sb__conn_handle_closed(uv_handle_t *handle);

/* Dispositions. Whether one may be chosen now: 0, -EINVAL, -ENOTCONN,
 * -EALREADY. */
int sb__dispo_check(const sb_conn *conn);
/* The disposition's state, allocated on first use; NULL when out of memory. */
sb__dispo *sb__dispo_get(sb_conn *conn);
/* The caller chose kind; ops (static, or NULL) get its events from now on. */
void sb__conn_choose(sb_conn *conn, sb__dispo_kind kind, const sb__dispo_ops *ops);
/* exec, run: sends the launch message m (welcome first, saying the stub is
 * to leave its stdin alone when it was still due), and chooses kind. exec
 * reads on whatever the caller paused, and is ENDING, told nothing. */
int sb__conn_launch(sb_conn *conn, const sb_msg *m, sb__dispo_kind kind,
                    const sb__dispo_ops *ops);

/* ---- conn_hello.c: what a handshake's bytes say (no state) ---------------- */

/* The frame length the first 4 bytes of head say. */
uint32_t sb__head_length(const uint8_t *head);
/* Whether head[0..len) says enough to go on: the decoder refuses the
 * header, the frame cannot hold SB_HELLO_PREFIX, the bytes left it, or the
 * prefix is whole (len == SB_FRAME_HEADER + SB_HELLO_PREFIX_LEN). */
bool sb__head_decided(const uint8_t *head, size_t len, uint32_t ctl_max);
/* Whether a whole head begins with a token of a live ticket; the copy of
 * the token is wiped. */
bool sb__head_token_live(sb_server *server, const uint8_t *head, size_t len);
/* docs/protocol.md section 3: the highest version both sides speak, or 0;
 * on 0, why into msg. */
int sb__version_choose(int version, int min_version, char *msg, size_t len);
/* The call a hello describes; strings borrowed from h. */
void sb__hello_call(const sb_hello *h, sb_call *c);

/* ---- conn_read.c: reading, and what peers without a token cost ------------ */

/* Starts libuv reading the stream (idempotent). */
int sb__conn_start_reading(sb_conn *conn);
/* The caller paused (stops reading and deferred dispatch) or resumed:
 * first what was left undispatched, on the next loop iteration, then the
 * socket. A resume that fails returns its error (the caller closes). */
void sb__read_pause(sb_conn *conn);
int sb__read_resume(sb_conn *conn);
/* The connection is closing (closing its stream stops reading): nothing
 * more is read or dispatched, and it holds no room any more. */
void sb__read_closed(sb_conn *conn);
/* Reads and dispatches, without waiting, what the kernel already holds for
 * the connection (at most limit bytes), as libuv's read callback would. For
 * a deadline that is about when bytes arrived: after a stall of the loop,
 * expired timers run before the reads that were waiting. */
void sb__conn_read_pending(sb_conn *conn, size_t limit);
/* Brings server->unauth_bytes up to date with what conn holds, and stops
 * reading it when there is no room for one more read. */
void sb__conn_account(sb_conn *conn);
/* Whether unauthenticated peers may take `more` bytes now. */
bool sb__unauth_room(const sb_server *server, size_t more);
/* accept.c: there is room again for a connection. */
void sb__accept_unhold(sb_server *server);
#ifdef SB_FUZZ
/* Only in the fuzz build (tests/fuzz/CMakeLists.txt defines SB_FUZZ), for
 * tests/fuzz/fuzz_conn.c: what libuv does on a read, without a socket.
 * sb__conn_feed copies up to SB__READ_BUF_SIZE bytes of p[0..n) into the
 * connection's read buffer and dispatches them exactly as a read of them;
 * sb__conn_feed_end delivers a read error or UV_EOF. Both do nothing (0,
 * false) when libuv would not read now: the connection is paused, has bytes
 * left from before a pause, or is closing. Returns the bytes taken. */
size_t sb__conn_feed(sb_conn *conn, const uint8_t *p, size_t n);
bool sb__conn_feed_end(sb_conn *conn, int err);
#endif

/* ---- wire.c: frames and write requests ------------------------------------ */

/* Frames buf[0..len) as data of kind, cut at max_bytes - 1, in one
 * uv_write. len 0 sends one empty frame (the end of that stream). owned, if
 * not NULL, is freed when the write ends, or now on error. cb, if not NULL,
 * runs when the write ends (after a failed one has closed the connection). */
int sb__wire_write(sb_conn *conn, sb_kind kind, const void *buf, size_t len,
                   sb_write_cb cb, void *data, void *owned);
/* A write of nothing: its callback runs in order with the writes before. */
int sb__wire_nothing(sb_conn *conn, sb_write_cb cb, void *data);
/* A whole frame the library built; takes ownership of frame. */
int sb__wire_send_owned(sb_conn *conn, void *frame, size_t len);
/* Encodes and queues a control message. */
int sb__wire_send_msg(sb_conn *conn, const sb_msg *m);

/* ---- message.c: side-band messages --------------------------------------- */

/* A first frame that failed to parse as hello: when it is a side-band
 * `send`, handles it (rejects it, or accepts and answers it) and returns
 * true; false when it is not one (the caller rejects it as before). */
bool sb__message_first_frame(sb_conn *conn, const sb_frame *f);
/* The sender's connection is gone: its message can no longer be replied. */
void sb__message_detach(sb_message *msg);

/* ---- dispo.c, program.c, delegate.c: dispositions ------------------------- */

/* sb__dispo_check, then the checks of an sb_program. */
int sb__program_check(const sb_conn *conn, const sb_program *p);
/* set (borrowed) plus SOCKETBRIDGE_DEPTH: the call's depth plus one, as a
 * stub gives the programs it starts; the entry is malloc'd into *entry.
 * Free both; NULL when out of memory. */
char **sb__set_with_depth(char *const *call_env, char *const *set, char **entry);
/* Delegate: the program wrote buf/len to stream (1, 2): on to the stub. */
void sb__delegate_output(sb_conn *conn, int stream, const char *buf, size_t len);

/* ---- pty.c: a delegated program on a pseudo-terminal ---------------------- */

/* Opens a pseudo-terminal sized ws: fds[0] its slave (for the program),
 * fds[1] its master (ours), both close-on-exec; the slave's path into name.
 * Returns 0 or a negative errno. */
int sb__pty_open(const sb_winsize *ws, int fds[2], char *name, size_t len);
/* The master (dp->in) is open: reads it into sb__delegate_output. */
int sb__pty_start(sb_conn *conn);
/* Stops or resumes reading the master (backpressure). */
void sb__pty_pause(sb_conn *conn, bool paused);
/* The program ended: reads what the master still holds, without waiting. */
void sb__pty_drain(sb_conn *conn);
/* Applies conn->call.winsize to a delegated program's master, if there is
 * one: the program gets SIGWINCH. */
void sb__pty_resize(sb_conn *conn);

/* ---- child_stdio.c, for delegate ------------------------------------------ */

/* Stops (paused) or resumes reading a child's captured stdout and stderr. */
void sb__child_capture_pause(sb_child *child, bool paused);

/* ---- server.c: small helpers ------------------------------------------------ */

char *sb__strdup(const char *s);
/* size bytes, page-aligned, freed with free(); NULL when out of memory. The
 * kernel copies into a buffer 16 bytes into a page (where malloc puts a
 * large block) at a third of the speed: docs/performance.md, delegate. */
void *sb__page_alloc(size_t size);
char *sb__strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
