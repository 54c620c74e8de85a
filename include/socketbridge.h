/* SPDX-License-Identifier: MIT */
/* socketbridge.h - the supervisor library.
 *
 * A server listens on a loopback bridge (TCP on 127.0.0.1 with a kernel-chosen
 * port, or a Unix socket in a fresh 0700 directory). Each child it spawns gets
 * a ticket: a fresh 256-bit token plus the bridge address, in its
 * environment. Whenever anything in that child's process tree runs the stub
 * (socketbridge-stub), the stub connects back, presents the token, and the
 * server hands the caller a connection (sb_conn) through which the caller
 * *is* that process: it sees its argv, env, cwd and pid, reads its stdin,
 * writes its stdout and stderr, and decides how it exits.
 *
 * Rules, as in libuv (which this runs on):
 * - Everything runs on the caller's uv_loop_t, on the loop's thread. No
 *   function here may be called from another thread.
 * - Functions that can fail return 0 or a negative errno value; sb_strerror()
 *   and sb_err_name() describe it.
 * - Objects are freed by the library only after every libuv handle they own
 *   has been closed; a close callback tells the caller when that is.
 * - The library never writes to stdout or stderr, and never reports a token:
 *   not in an error, a callback, or the env it hands out of a connection.
 * - Callbacks may call any function of this header, including the ones that
 *   close the object the callback is about.
 * - sb_server_new() sets SIGPIPE to SIG_IGN when it is SIG_DFL (a caller's
 *   own handler is kept): writing to a stub that died would otherwise kill
 *   the supervisor. Children start with every signal at its default.
 */
#ifndef SOCKETBRIDGE_H
#define SOCKETBRIDGE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* SB_WIRE_ONLY: the stub and lib/, built without libuv, see only the first
 * part of this header (errors, names, constants), which they share with the
 * library. */
#ifndef SB_WIRE_ONLY
#include <uv.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

#define SOCKETBRIDGE_VERSION_MAJOR 0
#define SOCKETBRIDGE_VERSION_MINOR 1
#define SOCKETBRIDGE_VERSION_PATCH 0

/* "0.1.0". */
const char *sb_version_string(void);

/* An enum and its names are one list, as libuv's UV_ERRNO_MAP: each
 * SB_*_MAP(X) below calls X(CONSTANT, value, "name") once per value; the
 * enum is made from it with SB__ENUM_ENTRY, and so is the table its name
 * function (sb_reason_name...) reads. */
#define SB__ENUM_ENTRY(id, value, name) id = value,

/* ---- errors ------------------------------------------------------------ */

/* The errors this layer produces, as negative errno values, with their
 * description (NULL: the system's fits). */
#define SB_ERRNO_MAP(X)                                                                  \
  X(SB_ENOMEM, -ENOMEM, NULL) /* allocation failed */                                    \
  X(SB_EINVAL, -EINVAL, NULL) /* bad argument or malformed value */                      \
  X(SB_EMSGSIZE, -EMSGSIZE, "frame too large (over max_bytes)")                          \
  X(SB_EBADMSG, -EBADMSG, "malformed frame or control message")                          \
  X(SB_EPROTO, -EPROTO, "protocol violation (message not allowed here)")                 \
  X(SB_EPROTONOSUPPORT, -EPROTONOSUPPORT, "no protocol version in common")               \
  X(SB_EACCES, -EACCES, NULL) /* bad token or peer not allowed */                        \
  X(SB_ENOENT, -ENOENT, NULL) /* required variable missing */
enum { SB_ERRNO_MAP(SB__ENUM_ENTRY) };

/* Describes any negative errno value (ours or the system's). Never NULL. */
const char *sb_strerror(int err);
/* The symbolic name of an error ("EMSGSIZE"), or "UNKNOWN". Never NULL. */
const char *sb_err_name(int err);

/* Human-readable detail for the last error of a call: what was wrong and
 * where ("hello.argv[2]: expected a string or {\"base64\": ...}"). */
typedef struct sb_diag {
  char msg[256];
} sb_diag;

/* ---- limits, names and constants -------------------------------------- */

#define SB_PROTOCOL_VERSION 1     /* the highest version this build speaks */
#define SB_PROTOCOL_MIN_VERSION 1 /* the lowest version this build speaks */

#define SB_DEFAULT_MAX_BYTES (1024u * 1024u)    /* default frame bound: 1 MiB */
#define SB_MIN_MAX_BYTES 4096u                  /* smallest accepted max_bytes */
#define SB_MAX_MAX_BYTES (256u * 1024u * 1024u) /* largest accepted max_bytes */

#define SB_TOKEN_BYTES 32 /* 256 bits of randomness */
#define SB_TOKEN_HEX 64   /* its lowercase hex spelling */

/* Environment variable names. */
#define SB_ENV_TOKEN "SOCKETBRIDGE_TOKEN"
#define SB_ENV_PORT "SOCKETBRIDGE_PORT"
#define SB_ENV_HOST "SOCKETBRIDGE_HOST"
#define SB_ENV_SOCKET "SOCKETBRIDGE_SOCKET"
#define SB_ENV_MAX_BYTES "SOCKETBRIDGE_MAX_BYTES"
#define SB_ENV_ALLOWLIST "SOCKETBRIDGE_ALLOWLIST"
#define SB_ENV_STUB "SOCKETBRIDGE_STUB"

/* PATH directories the stub is linked into as a shim, colon-separated. A
 * program lookup skips them, so a shim named `git` that forwards to `git`
 * never finds itself. */
#define SB_ENV_SHIMS "SOCKETBRIDGE_SHIMS"
/* The file in a shim directory (sb_shim_dir_make, sb_spawn's shims,
 * `socketbridge run --shim`) that names the run's bridge: "NAME=VALUE"
 * lines of the SOCKETBRIDGE_* variables (its own ticket), mode 0600. A
 * stub run as a shim from that directory connects there rather than to the
 * bridge of its environment, so each shim reaches the run that made it
 * (docs/protocol.md, section 5). */
#define SB_SHIM_BRIDGE_FILE ".socketbridge-bridge"
/* How many stubs a process descends from: each stub hands its count plus
 * one to the program it execs, runs or falls back to, and the supervisor
 * to a program it delegates to. A stub that finds SB_MAX_DEPTH or more
 * fails at once: a program it started ran the stub again (a rule's argv
 * that finds a shim, a wrapper script calling its own name), and without a
 * bound that chain never ends. */
#define SB_ENV_DEPTH "SOCKETBRIDGE_DEPTH"
#define SB_MAX_DEPTH 16
/* "exec": a stub that cannot reach its supervisor execs the real program
 * (looked up on PATH past the shims and the stub, as sb_program.path
 * says) instead of failing with 125. */
#define SB_ENV_FALLBACK "SOCKETBRIDGE_FALLBACK"

/* Machine-readable reasons of a reject. */
#define SB_REASON_MAP(X)                                                                 \
  X(SB_REASON_BAD_TOKEN, 1, "bad_token")                                                 \
  X(SB_REASON_VERSION, 2, "version")         /* no version in common */                  \
  X(SB_REASON_TOO_LARGE, 3, "too_large")     /* a frame over max_bytes */                \
  X(SB_REASON_NOT_ALLOWED, 4, "not_allowed") /* peer address or uid refused */           \
  X(SB_REASON_BUSY, 5, "busy")               /* too many connections */                  \
  X(SB_REASON_TIMEOUT, 6, "timeout")         /* no hello in time */                      \
  X(SB_REASON_PROTOCOL, 7, "protocol")       /* malformed or unexpected input */
typedef enum sb_reason { SB_REASON_MAP(SB__ENUM_ENTRY) } sb_reason;

/* "bad_token", ...; NULL for an unknown value. */
const char *sb_reason_name(sb_reason r);
/* 0 when the name is not a reason. */
sb_reason sb_reason_from_name(const char *name);

/* tty flags of hello: which of the stub's fds were terminals. */
#define SB_TTY_STDIN 1u
#define SB_TTY_STDOUT 2u
#define SB_TTY_STDERR 4u

/* A terminal's size in character cells (TIOCGWINSZ), 0..65535 each. */
typedef struct sb_winsize {
  uint16_t rows, cols;
} sb_winsize;

/* Signals go over the wire by name, without "SIG" ("TERM"). */
const char *sb_signal_name(int signum); /* NULL for a signal without a name here */
/* Accepts "TERM", "SIGTERM", "term" and "15". Returns the number or 0. */
int sb_signal_from_name(const char *name);

#ifndef SB_WIRE_ONLY

typedef struct sb_server sb_server;   /* a listening bridge */
typedef struct sb_ticket sb_ticket;   /* a token admitted by a server */
typedef struct sb_child sb_child;     /* a process the server spawned */
typedef struct sb_conn sb_conn;       /* one stub connected through a ticket */
typedef struct sb_event sb_event;     /* something that happened (see events) */
typedef struct sb_message sb_message; /* a side-band message awaiting its reply */

typedef void (*sb_event_cb)(sb_server *server, const sb_event *ev);

/* ---- server ------------------------------------------------------------- */

typedef enum sb_transport {
  SB_TRANSPORT_TCP = 0,  /* TCP on loopback (the default) */
  SB_TRANSPORT_UNIX = 1, /* a Unix socket in a fresh 0700 directory */
  /* No bridge: no listener, no tokens. The server only supervises: its
   * children get no SOCKETBRIDGE_* variable (inherited ones are dropped, as
   * always), on_connect is not needed, sb_ticket_new() is -ENOTSUP,
   * sb_server_address() NULL and sb_server_port() 0. */
  SB_TRANSPORT_NONE = 2,
} sb_transport;
/* Unix: the directory, socketbridge-XXXXXX under $TMPDIR (or /tmp), holds
 * the socket and a lock file, and is removed when the server closes. One a
 * server killed with SIGKILL left is removed by the next server that starts
 * there: each server holds an flock on its lock file while it lives, and a
 * directory of ours whose lock nobody holds is a dead server's. */

/* A peer refused before it became a connection (a peer that closes before
 * its hello counts as `protocol`, with no reject sent). Pointers are valid
 * during the callback only. */
typedef struct sb_reject_info {
  sb_reason reason;
  const char *message; /* what was wrong, for a log; never holds a token */
  sb_ticket *ticket;   /* the ticket the peer presented, if it was valid */
  int64_t pid;         /* the pid the peer claimed in hello, or 0 */
} sb_reject_info;

typedef void (*sb_connect_cb)(sb_server *server, sb_conn *conn);
typedef void (*sb_reject_cb)(sb_server *server, const sb_reject_info *info);
typedef void (*sb_server_close_cb)(sb_server *server);
/* A side-band message (`socketbridge send`, sb_send) of a type the server
 * does not answer itself (not ping or status). The handler owes it exactly
 * one sb_message_reply(), now or later. */
typedef void (*sb_message_cb)(sb_server *server, sb_message *msg);

/* The zero value of every field is its default. */
typedef struct sb_server_options {
  sb_transport transport;
  /* TCP: the address to bind, default "127.0.0.1". Anything but a loopback
   * address (127.0.0.0/8, ::1) is refused with -EADDRNOTAVAIL unless
   * allow_remote is set. */
  const char *host;
  uint16_t port; /* TCP: 0 lets the kernel choose */
  bool allow_remote;
  /* Comma-separated addresses or prefixes allowed to connect over TCP
   * ("127.0.0.1,::1/128"). NULL: any peer (the bind address already limits
   * TCP to loopback unless allow_remote). Unix peers must always have our
   * uid (SO_PEERCRED). */
  const char *allowlist;
  /* Unix: where the socket is. NULL: "sock" in a fresh 0700 directory of
   * its own. An absolute path: the socket file, made with socket_mode (0:
   * 0600) and removed at close; a socket file already there that nobody
   * listens on (connect gives ECONNREFUSED: left by a supervisor that was
   * killed) is replaced, a live one is -EADDRINUSE, anything else -EEXIST.
   * "@name": the Linux abstract socket "name", with no file (anyone in the
   * network namespace can reach it: the uid check and the token guard it).
   * Either way only peers with our uid are admitted. Children get it as
   * SOCKETBRIDGE_SOCKET. */
  const char *socket_path;
  unsigned socket_mode;
  /* At once, handshakes included; more are refused `busy`. 0 (the default):
   * no bound but the process's fds; when they run out, peers wait in the
   * listen backlog until some are freed (stats.accept_errors). */
  unsigned max_connections;
  unsigned handshake_timeout_ms; /* from accept to hello; default 10000 */
  uint32_t max_bytes;            /* frame bound; default SB_DEFAULT_MAX_BYTES */
  /* Absolute path of socketbridge-stub, handed to children as
   * SOCKETBRIDGE_STUB. NULL: $SOCKETBRIDGE_STUB when absolute, else the one
   * installed beside the library (or, linked statically, the program),
   * else the first on PATH, else the configured install path. Whether
   * that file exists is not checked here. */
  const char *stub_path;
  sb_connect_cb on_connect; /* required but for SB_TRANSPORT_NONE: a stub came */
  sb_reject_cb on_reject;   /* optional: a peer was refused */
  sb_event_cb on_event;     /* optional: everything that happens (see events) */
  void *data;               /* for the caller: sb_server_data() */
  /* optional: side-band messages other than ping and status; NULL: they
   * get {"type":"error","error":"no_handler",...}. See side-band messages. */
  sb_message_cb on_message;
} sb_server_options;

/* Creates a server listening on loop. The server copies what it needs from
 * opts. Errors: -EINVAL (bad option; no on_connect; a host that is not an
 * IPv4/IPv6 literal; a malformed allowlist; max_bytes outside
 * SB_MIN_MAX_BYTES..SB_MAX_MAX_BYTES; a socket_path neither absolute nor
 * "@name", or given for TCP), -EADDRNOTAVAIL (non-loopback host without
 * allow_remote), -EADDRINUSE and -EEXIST (socket_path taken, see there),
 * -ENAMETOOLONG, socket errors, -ENOMEM. */
int sb_server_new(uv_loop_t *loop, const sb_server_options *opts, sb_server **out);

/* Stops listening, closes every connection (reason SB_CLOSE_SERVER), stops
 * every child it spawned (SIGKILL to its process group at once, a STOP
 * event each; a child waiting to restart just ends) and frees every ticket,
 * then the server itself. Each child's on_exit still runs, once, from the
 * loop; every child is reaped before cb, so none is left as a zombie. cb
 * (may be NULL) runs once everything is freed; until then the loop must
 * keep running. Tickets and children must not be used after this call,
 * except from their own callbacks. */
void sb_server_close(sb_server *server, sb_server_close_cb cb);

void *sb_server_data(const sb_server *server);
uv_loop_t *sb_server_loop(const sb_server *server);
/* The TCP port bound, or 0 for a Unix socket or no bridge. */
uint16_t sb_server_port(const sb_server *server);
/* The bound host ("127.0.0.1") or the Unix socket's path; NULL without a
 * bridge. Owned by the server. */
const char *sb_server_address(const sb_server *server);
/* The stub path handed to children. Owned by the server. */
const char *sb_server_stub_path(const sb_server *server);

/* ---- the stub's default path -------------------------------------------- */

/* The stub path a server made now without stub_path would hand its
 * children (see sb_server_options.stub_path: $SOCKETBRIDGE_STUB when
 * absolute, else the one installed beside the library, else the first on
 * PATH, else the configured install path), absolute, into buf (size bytes,
 * the NUL included). No server is needed, and whether the file exists is
 * not checked. Errors: -EINVAL (buf NULL), -ENAMETOOLONG (buf too small;
 * PATH_MAX is enough), getcwd(3) errors, -ENOMEM. */
int sb_default_stub_path(char *buf, size_t size);

/* Counters, for monitoring and tests. */
typedef struct sb_server_stats {
  uint64_t accepted;                         /* connections accepted */
  uint64_t welcomed;                         /* handshakes that succeeded */
  uint64_t rejected[SB_REASON_PROTOCOL + 1]; /* by sb_reason */
  uint64_t lost;          /* connections closed with SB_CLOSE_PEER_LOST */
  uint64_t accept_errors; /* accept calls that failed (EMFILE...; see ACCEPT_PAUSED) */
  unsigned open;          /* connections open now, handshakes included */
  uint64_t messages;      /* side-band messages accepted (see sb_send) */
} sb_server_stats;

void sb_server_stats_get(const sb_server *server, sb_server_stats *out);

/* ---- tickets: who may connect ------------------------------------------ */

/* Creates a ticket: a fresh token admitted by the server. sb_spawn() makes
 * one per child; call this directly to let a process that someone else
 * spawns connect (a Python or shell harness). Errors: -ENOMEM, getrandom(2)
 * errors, -ECANCELED (sb_server_close was called), -ENOTSUP (a server
 * without a bridge, SB_TRANSPORT_NONE). */
int sb_ticket_new(sb_server *server, sb_ticket **out);

/* Revokes and frees the ticket: later stubs presenting it are rejected with
 * bad_token; connections already open stay open. */
void sb_ticket_free(sb_ticket *ticket);

/* The variables a child needs, as a NULL-terminated array of "NAME=VALUE"
 * strings owned by the ticket: SOCKETBRIDGE_TOKEN, SOCKETBRIDGE_HOST and
 * SOCKETBRIDGE_PORT (or SOCKETBRIDGE_SOCKET), SOCKETBRIDGE_MAX_BYTES when not
 * the default, SOCKETBRIDGE_STUB. It holds the token: hand it to the child
 * and nowhere else. */
char *const *sb_ticket_env(const sb_ticket *ticket);

void sb_ticket_set_data(sb_ticket *ticket, void *data);
void *sb_ticket_data(const sb_ticket *ticket);

/* ---- children ----------------------------------------------------------- */

/* How the child's last run ended: exit_status is the code (0..255) when
 * term_signal is 0; -1 in the rare case the status was lost because
 * something else in the process reaped the child (SIGCHLD set to SIG_IGN, a
 * waitpid(-1) elsewhere). A deadline or a stop is seen here as what it did
 * (SIGTERM, SIGKILL, or the code of a child that handled the signal); the
 * TIMEOUT event tells a deadline apart. */
typedef void (*sb_exit_cb)(sb_child *child, int64_t exit_status, int term_signal);

/* What a child's stdin, stdout or stderr is. The zero value inherits the
 * supervisor's. Every run of a restarted child gets the same.
 * - FD: the caller keeps owning .fd and keeps it open as long as the child
 *   may restart.
 * - FILE: sb_spawn opens .path (stdin O_RDONLY; stdout/stderr
 *   O_WRONLY|O_CREAT|O_TRUNC, mode 0644 less the umask) and keeps it open
 *   until the child ends for good: restarts append to what earlier runs
 *   wrote, and read stdin again from its start. Open errors are sb_spawn's.
 * - CAPTURE (stdout/stderr only; on_output required): a pipe read by the
 *   loop. Everything the run wrote before it exited reaches on_output
 *   before its EXIT event and on_exit; once the run's leader is reaped, the
 *   pipe is drained and closed, so what a surviving grandchild writes later
 *   is lost (it gets EPIPE).
 * - BUFFER (stdin only): .data/.len (at most UINT_MAX bytes) are copied by
 *   sb_spawn, written to each run's stdin through a pipe, then closed so the
 *   child sees EOF. A child that does not read it all is not an error.
 * A mode used on the wrong stream, or CAPTURE without on_output, is -EINVAL
 * from sb_spawn. */
typedef enum sb_stdio_mode {
  SB_STDIO_INHERIT = 0, /* the supervisor's own fd */
  SB_STDIO_NULL,        /* /dev/null */
  SB_STDIO_FD,          /* .fd, which the caller keeps owning */
  SB_STDIO_FILE,        /* .path: stdin reads it; stdout/stderr create or truncate it */
  SB_STDIO_CAPTURE,     /* stdout/stderr: chunks go to on_output, never to our fds */
  SB_STDIO_BUFFER,      /* stdin: .data/.len (copied by sb_spawn) are fed, then EOF */
} sb_stdio_mode;

typedef struct sb_stdio {
  sb_stdio_mode mode;
  int fd;
  const char *path;
  const void *data;
  size_t len;
} sb_stdio;

/* When a child that ended is started again. */
typedef enum sb_restart {
  SB_RESTART_NO = 0,     /* never (the default) */
  SB_RESTART_ON_FAILURE, /* when it exits non-zero or by a signal */
  SB_RESTART_ALWAYS,     /* whenever it ends, until stopped or max_restarts */
} sb_restart;

/* Whether a child gets the supervisor's terminal.
 * - DETACH (the default): a session of its own, without a controlling
 *   terminal (setsid). Terminal fds it inherits as stdio still work, but
 *   /dev/tty cannot be opened, so ssh, git and sudo use an askpass helper or
 *   fail instead of prompting, and no key of the terminal signals it.
 * - FOREGROUND: when the supervisor's process group is the foreground group
 *   of its controlling terminal as a run starts, the run gets that terminal
 *   as a shell's job does: it stays in the supervisor's session, in a
 *   process group of its own (so the stop sequence still reaches the whole
 *   group), which is made the terminal's foreground group before the
 *   program runs (no window for a race). /dev/tty works, and ^C, ^\, ^Z
 *   and window size changes signal the run's group, not the supervisor.
 *   When the run ends (or stops), the library gives the terminal back to
 *   the supervisor's process group, if the run's group (or a group its
 *   processes made) still has it: not if the session leader took it.
 *   Job control, as a shell's job: a run stopped by SIGTSTP, SIGTTIN or
 *   SIGTTOU (^Z; TTIN and TTOU only while the supervisor is not in the
 *   foreground itself) stops the supervisor's process too, with the same
 *   signal, so the shell that started it sees its job stop; once the supervisor is
 *   continued (fg, bg), the run gets the terminal back if the supervisor
 *   is in the foreground, and SIGCONT. (Where the kernel discards the stop,
 *   the supervisor's process group being orphaned, e.g. a session leader
 *   under script(1), the run is continued at once.) A run stopped by
 *   SIGSTOP (someone's kill) only gives the terminal back; it gets it again
 *   when continued.
 *   While the supervisor is stopped its loop is too: deadlines count the
 *   time stopped (a deadline past due fires on SIGCONT).
 *   When the supervisor has no controlling terminal, or is not in its
 *   foreground (`socketbridge run ... &`), the run is detached as with
 *   DETACH; each run (a restart) decides again.
 *   Limit: the terminal belongs to one process group, so other processes
 *   of the supervisor's own job that read the terminal (`... | less`) are
 *   in its background while the run has it (they stop on SIGTTIN). */
typedef enum sb_terminal {
  SB_TERMINAL_DETACH = 0, /* a new session without a terminal */
  SB_TERMINAL_FOREGROUND, /* the supervisor's terminal, in the foreground */
} sb_terminal;

/* A chunk of a captured stream (1 stdout, 2 stderr); buf is valid during
 * the call only. ts_ns (CLOCK_REALTIME, taken when the chunk was read)
 * orders stdout and stderr chunks against each other: it never goes below
 * the child's previous chunk's, even if the clock is set back. Two writes
 * the child made before the loop read either may arrive in one chunk, or
 * in either order across the two streams. */
typedef void (*sb_output_cb)(sb_child *child, int stream, const char *buf, size_t len,
                             uint64_t ts_ns);

/* The zero value of every field is its default. Where 0 is also a value
 * one may want (kill_after_ms, max_restarts), a bool NAME_set beside the
 * field says whether it is given: false, and 0 means the default; true, and
 * the field is taken as it is, 0 included. */
typedef struct sb_spawn_options {
  const char *file;  /* required; looked up in PATH when it has no slash */
  char *const *args; /* argv, NULL-terminated; NULL: { file, NULL } */
  const char *cwd;   /* NULL: the supervisor's */
  /* Variables added to (or with env_replace, replacing) the supervisor's
   * environment, "NAME=VALUE", NULL-terminated. The ticket's variables are
   * always added last, so a child cannot be given another child's token. */
  char *const *env;
  bool env_replace;
  /* Names of variables set to the stub's path (sb_server_stub_path) in the
   * child's environment, after env: {"GIT_EDITOR", "SSH_ASKPASS", NULL}
   * makes each such call of the child's tree a stub call. NULL: none. */
  char *const *stub_vars;
  /* Shims: names ("git", "cc") linked to the stub in a fresh directory
   * ($TMPDIR, else /tmp; socketbridge-shims.XXXXXX) with the child's bridge
   * file (SB_SHIM_BRIDGE_FILE: its ticket's variables, mode 0600), put
   * first on the child's PATH and in its SOCKETBRIDGE_SHIMS; any process of
   * its tree that runs one by name makes a stub call, and a stub that looks
   * the real program up skips the directory. The directory is removed when
   * the child ends for good. Needs a bridge. NULL: none. */
  char *const *shims;
  /* Or a directory of shims the caller made (sb_shim_dir_make) and keeps,
   * put first on PATH and in SOCKETBRIDGE_SHIMS the same way. Not with
   * shims. NULL: none. */
  const char *shim_dir;
  sb_stdio stdio[3];      /* stdin, stdout, stderr */
  sb_output_cb on_output; /* required when a stream is SB_STDIO_CAPTURE */
  sb_terminal terminal;   /* see sb_terminal; an unknown value is -EINVAL */
  /* Supervision. A deadline (TIMEOUT event) or sb_child_stop() runs the stop
   * sequence: stop_signal to the child's process group, kill_after_ms of
   * grace, then SIGKILL to the group (a STOP event for each signal sent).
   * Once a stop has begun and the child itself has exited, whatever is left
   * of its process group gets SIGKILL too (no event), so no grandchild
   * outlives a stop, a deadline or sb_server_close. Limit: a grandchild that
   * moved to a session or process group of its own (a daemon) escapes; a
   * normal exit leaves the group alone. No restart follows a stop or a
   * deadline. */
  uint64_t timeout_ms; /* 0: no deadline; else per run, from its start */
  /* 0: none; else a deadline for the child's whole life, from sb_spawn:
   * every run, restart and backoff (as timeout(1) bounds a command). When
   * it passes: a TIMEOUT event, then the stop sequence for a run, or the
   * end for a child waiting to restart; no restart follows. */
  uint64_t deadline_ms;
  uint64_t kill_after_ms; /* 0: 5000, unless kill_after_set */
  bool kill_after_set;    /* given: 0 is SIGKILL right after the stop signal */
  int stop_signal;        /* 0: SIGTERM */
  sb_restart restart;
  /* Restarts in a row: the count starts again, with the backoff, after a run
   * that stayed up backoff_reset_ms. When it is reached, GIVE_UP and
   * on_exit. */
  unsigned max_restarts; /* 0: 5, unless max_restarts_set */
  bool max_restarts_set; /* given: 0 never restarts (GIVE_UP after one run) */
  /* The k-th delay in a row (k = 0, 1, ...) is d = min(max, min * 2^k),
   * with jitter: uniform in [max(min, d / 2), d] ms. So the first restart
   * waits backoff_min_ms exactly. min > max (both given) is -EINVAL; a min
   * above the default max raises the max to it. */
  uint64_t backoff_min_ms;   /* 0: 100 */
  uint64_t backoff_max_ms;   /* 0: 30000 */
  uint64_t backoff_reset_ms; /* 0: 10000; a run that stayed up this long resets it */
  /* Runs once, when the child has ended for good (no restart follows). */
  sb_exit_cb on_exit; /* required */
  void *data;
} sb_spawn_options;

/* Spawns a child with its own ticket, in a new session and process group
 * (setsid: it has no controlling terminal, so ssh and git use an askpass
 * helper, while terminal fds it inherits as stdio still work), or with
 * SB_TERMINAL_FOREGROUND in a process group of its own that gets the
 * supervisor's terminal (see sb_terminal). The child
 * gets fds 0, 1 and 2 only: every other fd of the supervisor's process is
 * closed in it, whoever opened it. Errors: -ENOENT (not found), -EACCES (not
 * executable), -ENOENT/-ENOTDIR for a bad cwd, other exec and fork errors,
 * reported here and never as a fake exit status (nothing is written to the
 * child's stderr either); -EINVAL for a bad option (see sb_stdio_mode;
 * stop_signal not a signal; an unknown restart; env strings without '=');
 * errors opening a FILE path (-ENOENT, -EACCES...); -EINVAL for a
 * stub_vars name that is empty or holds '='; shims: -EINVAL (with
 * shim_dir, without a bridge, a name that is not a file name, a shim_dir
 * not absolute) and the errors of sb_shim_dir_make; -ECANCELED after
 * sb_server_close. The SPAWN event is emitted from inside this call. A
 * restart that cannot exec is not an exit: it counts as a failed restart
 * (BACKOFF or GIVE_UP with a message), and on_exit reports the last run
 * that did run. The child object lives until on_exit has returned; its
 * ticket (the same for every run) is revoked then. */
int sb_spawn(sb_server *server, const sb_spawn_options *opts, sb_child **out);

/* The current run's pid; 0 while waiting to restart; the last run's during
 * on_exit. */
pid_t sb_child_pid(const sb_child *child);
sb_ticket *sb_child_ticket(const sb_child *child);
void *sb_child_data(const sb_child *child);
/* Sends signum to the current run's process group. Errors: -EINVAL,
 * -ESRCH (no run alive: between runs, or ended). */
int sb_child_kill(sb_child *child, int signum);
/* Stops the child with the stop sequence; no restart follows. A child
 * waiting to restart ends at once (on_exit runs from the loop, reporting its
 * last run). Calling it again does nothing. Errors: -ESRCH once on_exit has
 * begun. */
int sb_child_stop(sb_child *child);
/* How many times the child has been restarted so far, in all. */
unsigned sb_child_restarts(const sb_child *child);

/* ---- shims: a directory of links to the stub ------------------------------
 *
 * sb_spawn_options.shims makes one per child and removes it after; these
 * make one that outlives a child (`socketbridge shim DIR NAME...`, a build
 * configured under a run that must keep its compiler's path). */

/* Makes a directory of shims: for each of names (NULL-terminated file
 * names: no '/', not "." or ".."), a symbolic link NAME -> stub_path (an
 * absolute path; a link already there to the same stub is kept). dir: the
 * directory, made (one level, 0755) when missing; NULL: a fresh one in
 * $TMPDIR (else /tmp), socketbridge-shims.XXXXXX, 0700. ticket (may be
 * NULL): its variables go to the directory's bridge file
 * (SB_SHIM_BRIDGE_FILE, mode 0600, one written before is replaced), so
 * the stub run as a shim from there reaches that ticket's server even
 * under a nested supervisor. *path: the directory's absolute path,
 * malloc'd, the caller frees it (may be NULL when not wanted). Blocking
 * (a few small file operations; the bridge file is one write of a new
 * regular file). Errors, with diag (may be NULL) saying what and where:
 * -EINVAL (a bad name, stub_path not absolute), -EEXIST (something that is
 * not a link to stub_path is there), -ENOTDIR, -E2BIG (the ticket's
 * variables over 4 KiB), errors of mkdir, mkdtemp, symlink and open;
 * -ENOMEM. On error a fresh directory is removed again. */
int sb_shim_dir_make(const char *dir, char *const *names, const char *stub_path,
                     const sb_ticket *ticket, char **path, sb_diag *diag);
/* Removes dir's bridge file, and with names (NULL: none) the links of
 * names and then dir itself, if that left it empty. Errors are ignored. */
void sb_shim_dir_remove(const char *dir, char *const *names);

/* ---- running a command whole: sb_run ---------------------------------------
 *
 * The simple case in one call, as system(3) with a timeout: sb_run makes a
 * loop of its own, a server on it (with a bridge only when
 * server.on_connect is set), spawns argv, runs the loop until the command
 * has ended for good and everything is closed, and returns how it ended
 * with what it wrote. */

#define SB_RUN_MAX_OUTPUT (16u * 1024u * 1024u) /* default bound per captured stream */

/* The zero value of every field is its default. */
typedef struct sb_run_options {
  /* How to run it, as for sb_spawn: env, cwd, stdio (stdin: SB_STDIO_BUFFER
   * feeds bytes), timeout_ms, deadline_ms, the stop sequence, restarts,
   * stub_vars, shims. file and args are argv's; on_exit, on_output and data
   * are sb_run's own (ignored). */
  sb_spawn_options spawn;
  /* The bridge, made only when on_connect is set (then as sb_server_new;
   * server.data is yours: sb_server_data); else the command runs without
   * one (SB_TRANSPORT_NONE), and transport is ignored. Stubs still
   * connected when the command has ended are closed (SB_CLOSE_SERVER). */
  sb_server_options server;
  /* Capture stdout and stderr into the result (spawn.stdio[1] and [2] are
   * then ignored); false: they are as spawn.stdio says (inherited by
   * default). */
  bool capture;
  size_t max_output; /* bytes kept per captured stream; 0: SB_RUN_MAX_OUTPUT */
} sb_run_options;

typedef struct sb_run_result {
  /* How the command ended, as on_exit says: status (0..255; -1 when lost)
   * when signal is 0, else the signal that killed it. */
  int64_t status;
  int signal;
  bool timed_out;    /* a deadline (timeout_ms or deadline_ms) stopped it */
  unsigned restarts; /* how many times it was restarted (spawn.restart) */
  /* With capture: malloc'd, NUL-terminated (the bytes may hold NULs too),
   * the first max_output bytes of each stream; truncated when it wrote
   * more (the rest was read and dropped; or memory ran out). NULL without
   * capture. */
  char *out, *err;
  size_t out_len, err_len;
  bool out_truncated, err_truncated;
} sb_run_result;

/* Runs argv (NULL-terminated; argv[0] is looked up in PATH when it has no
 * slash, in the child's environment) to its end, and fills *result. Blocks
 * the calling thread (its own loop: do not call it from a callback of
 * another loop's server unless blocking that loop is fine). opts may be
 * NULL (all defaults: inherited stdio, no bridge, no deadline). Returns 0
 * once the command ran, whatever its status: the result then owns out and
 * err (sb_run_result_free). Errors: sb_spawn's (-ENOENT not found,
 * -EACCES, -EINVAL...), sb_server_new's, uv_loop_init's, -ENOMEM; the
 * result then owns nothing (and sb_run_result_free is still safe). */
int sb_run(char *const *argv, const sb_run_options *opts, sb_run_result *result);
/* Frees out and err and sets them NULL. result may be NULL. */
void sb_run_result_free(sb_run_result *result);

/* ---- connections -------------------------------------------------------- */

/* What the stub told about itself in its hello. Owned by the connection. */
typedef struct sb_call {
  int64_t pid, ppid;
  size_t argc;
  char *const *argv; /* argc strings then NULL; bytes, not necessarily UTF-8 */
  size_t envc;
  char *const *env; /* "NAME=VALUE" x envc then NULL; the token is never here */
  const char *cwd;  /* NULL when the stub could not tell */
  const char *exe;  /* the path the stub was started by (execve's), made
                     * absolute: a shim's own; NULL when unknown */
  unsigned tty;     /* SB_TTY_STDIN | SB_TTY_STDOUT | SB_TTY_STDERR */
  /* The size of the stub's terminal, when it has one (has_winsize: a stub
   * that speaks `pty`); kept up to date while a delegated program runs on
   * a pseudo-terminal (see sb_conn_delegate). */
  bool has_winsize;
  sb_winsize winsize;
} sb_call;

#define SB_CLOSE_REASON_MAP(X)                                                           \
  X(SB_CLOSE_EXITED, 1, "exited") /* the stub was told how to end and did */             \
  /* the stub went away before being told (killed...) */                                 \
  X(SB_CLOSE_PEER_LOST, 2, "peer_lost")                                                  \
  X(SB_CLOSE_PROTOCOL, 3, "protocol") /* the stub broke the protocol; err says how */    \
  X(SB_CLOSE_SERVER, 4, "server")     /* sb_server_close() */                            \
  /* the stub became the program of sb_conn_exec() */                                    \
  X(SB_CLOSE_EXEC, 5, "exec")
typedef enum sb_close_reason { SB_CLOSE_REASON_MAP(SB__ENUM_ENTRY) } sb_close_reason;

/* "exited", "peer_lost", "protocol", "server", "exec"; "unknown". */
const char *sb_close_reason_name(sb_close_reason r);

/* buf/len: bytes of the stub's stdin; len == 0 means its end. */
typedef void (*sb_stdin_cb)(sb_conn *conn, const char *buf, size_t len);
/* The stub received signum (INT, TERM, HUP, QUIT). When this callback is
 * NULL, the library tells the stub to die by that signal. */
typedef void (*sb_signal_cb)(sb_conn *conn, int signum);
/* Writing to the stub's stdout (1) or stderr (2) failed there with err
 * (negative errno, -EPIPE for a closed reader). The stub goes on. */
typedef void (*sb_stream_error_cb)(sb_conn *conn, int stream, int err);
/* The connection is gone; the sb_conn is freed when this returns. err is 0
 * or a negative errno saying what went wrong. */
typedef void (*sb_conn_close_cb)(sb_conn *conn, sb_close_reason reason, int err);
/* A write finished (status 0) or was dropped (negative errno) because the
 * connection closed. */
typedef void (*sb_write_cb)(sb_conn *conn, int status, void *data);

/* sb_conn_run and sb_conn_delegate: the program wrote buf/len to its
 * stdout (1) or stderr (2), on its way to the stub's; for a log or a record.
 * len == 0: that stream ended. */
typedef void (*sb_program_output_cb)(sb_conn *conn, int stream, const char *buf,
                                     size_t len);
/* sb_conn_run, sb_conn_delegate, and an sb_conn_exec that failed: the
 * program ended with code (when signum is 0; 126 or 127 when it could not
 * be started, as the shell says; -1 when its status was lost) or died by
 * signum. The stub is then told to end the same way, unless this callback
 * told it otherwise (sb_conn_exit, sb_conn_kill); after a failed exec the
 * stub has already ended so. */
typedef void (*sb_program_exit_cb)(sb_conn *conn, int64_t code, int signum);

typedef struct sb_conn_callbacks {
  sb_stdin_cb on_stdin;
  sb_signal_cb on_signal;
  sb_stream_error_cb on_stream_error;
  sb_conn_close_cb on_close;
  sb_program_output_cb on_program_output; /* optional */
  sb_program_exit_cb on_program_exit;     /* optional */
} sb_conn_callbacks;

/* Sets the callbacks (copied) and the caller's data. Call from on_connect
 * before returning to see every event. */
void sb_conn_set_callbacks(sb_conn *conn, const sb_conn_callbacks *cbs, void *data);
void *sb_conn_data(const sb_conn *conn);

const sb_call *sb_conn_call(const sb_conn *conn);
/* The value of an env variable of the stub's, or NULL. */
const char *sb_conn_getenv(const sb_conn *conn, const char *name);
sb_ticket *sb_conn_ticket(const sb_conn *conn);
/* The child whose ticket the stub presented, or NULL for a ticket made with
 * sb_ticket_new() or a child already gone. */
sb_child *sb_conn_child(const sb_conn *conn);
sb_server *sb_conn_server(const sb_conn *conn);

/* Queues len bytes for the stub's stdout (stream 1) or stderr (stream 2).
 * The library does not copy buf: it must stay valid until cb (may be NULL)
 * runs. Bytes are written in order, framed by max_bytes. len 0 is a no-op
 * that still calls cb. Errors: -EINVAL (bad stream), -EPIPE (that stream was
 * closed, or exit was already sent), -ENOTCONN (connection closing). */
int sb_conn_write(sb_conn *conn, int stream, const void *buf, size_t len, sb_write_cb cb,
                  void *data);
/* Like sb_conn_write() but copies buf first: nothing to keep alive. */
int sb_conn_write_copy(sb_conn *conn, int stream, const void *buf, size_t len);
/* Bytes queued for the stub and not yet written: the len of every
 * sb_conn_write()/sb_conn_write_copy() whose callback has not run yet (frame
 * headers not counted). Stop writing above your high-water mark, resume from
 * a write callback (its bytes are no longer counted there). */
size_t sb_conn_queued(const sb_conn *conn);

/* Closes the stub's stdout (1) or stderr (2) once what was queued before is
 * written. Closing a closed stream does nothing. Errors: -EINVAL, -ENOTCONN,
 * -EPIPE (exit or kill already sent). */
int sb_conn_close_stream(sb_conn *conn, int stream);

/* stdin is delivered to on_stdin from the welcome on; pausing stops reading
 * the connection, so the stub stops reading its stdin (backpressure), and
 * control messages wait too. Once exit or kill is sent the connection reads
 * on until the stub closes (a pause is lifted, and pausing does nothing), so
 * its end is always seen. Errors: -ENOTCONN. */
int sb_conn_pause(sb_conn *conn);
int sb_conn_resume(sb_conn *conn);

/* Tells the stub to exit with code (0..255) once every byte queued before
 * has been written to its stdout/stderr. Nothing may be written after.
 * Errors: -EINVAL (code out of range), -EALREADY (exit or kill sent),
 * -ENOTCONN. */
int sb_conn_exit(sb_conn *conn, int code);
/* Tells the stub to die by signum (after writing what was queued), so its
 * parent sees WIFSIGNALED. Same errors. */
int sb_conn_kill(sb_conn *conn, int signum);

/* Holds a stub that just connected: call from on_connect. The welcome is
 * not sent, so the stub waits with its stdin untouched, until sb_conn_open()
 * or the first function that writes to it or answers it (a write, exit,
 * kill, a disposition) sends it; an exec or run chosen then gets the stdin
 * whole, whenever it is chosen. The stub waits 30 s at most for its
 * welcome (then it fails or falls back): a caller that holds a call answers
 * or opens it sooner. sb_conn_respond and sb_conn_delegate send nothing
 * at once: follow them with sb_conn_open. Errors: -ENOTCONN. */
int sb_conn_hold(sb_conn *conn);
/* Sends a held stub its welcome now: its stdin starts to flow to on_stdin.
 * Does nothing for a stub not held, or already welcomed. Errors: -ENOTCONN,
 * and write errors (the connection is then closing). */
int sb_conn_open(sb_conn *conn);

/* Closes the connection now (the stub exits 125, as when the bridge is
 * lost); on_close runs with SB_CLOSE_SERVER. */
void sb_conn_close(sb_conn *conn);

/* How the stub was told to end, by the caller, a disposition, or the
 * default answer to a signal: true with *code (when *signum is 0) or
 * *signum; false when it has not been told (yet), or exec'd a program.
 * code and signum may be NULL. */
bool sb_conn_told(const sb_conn *conn, int *code, int *signum);

/* ---- dispositions: what a call gets, in one call --------------------------
 *
 * The functions above make the caller the process, byte by byte. These hand
 * a whole call one answer:
 * - respond: canned stdout, stderr and exit (or signal), after a delay;
 * - delegate: the supervisor spawns a program and splices it to the stub
 *   (stub stdin -> program stdin, program stdout/stderr -> stub stdout/
 *   stderr, with backpressure both ways); the stub ends as the program did;
 * - exec: the stub execve()s the program in place, and the connection
 *   closes (SB_CLOSE_EXEC): the supervisor sees nothing more of it;
 * - run: the stub spawns the program itself, feeds it its own stdin, relays
 *   its stdout and stderr up (on_program_output; with tee, also to its own
 *   fds), reports how it ended (on_program_exit), and ends the same way.
 * Choose exec and run from on_connect: the stub then leaves its stdin
 * untouched for the program. Chosen later (and for delegate, chosen after
 * stdin began to flow), stdin the stub has already sent went to on_stdin
 * and does not reach the program.
 * Each may be given once per connection, before sb_conn_exit/sb_conn_kill;
 * after exec and run the caller writes nothing (-EPIPE). Errors common to
 * all: -EINVAL (bad argument), -EALREADY (a disposition, exit or kill was
 * given already), -ENOTCONN, -ENOMEM. */

typedef struct sb_response {
  const void *out; /* stdout bytes (copied); may be NULL when out_len is 0 */
  size_t out_len;
  const void *err; /* stderr bytes (copied) */
  size_t err_len;
  int code;          /* exit code 0..255, when signum is 0 */
  int signum;        /* or die by this signal */
  uint64_t delay_ms; /* answer after this long (stdin keeps flowing meanwhile) */
} sb_response;

/* A program for delegate, exec and run. Strings are copied. */
typedef struct sb_program {
  char *const *argv; /* required, NULL-terminated, argv[0] not empty */
  /* The file to run. NULL: argv[0] looked up as execvp(3) does in the
   * PATH of the program's environment, skipping the directories in its
   * SOCKETBRIDGE_SHIMS and the stub itself (the recursion guard); the
   * program then gets the path found as its argv[0], as `exec /usr/bin/cc
   * "$@"` gives it (gcc finds its own parts from it). Given, argv is passed
   * as it is. */
  const char *path;
  const char *cwd;    /* NULL: the call's cwd */
  char *const *set;   /* "NAME=VALUE" set in the call's environment, or NULL */
  char *const *unset; /* names removed from it, or NULL */
  bool tee;           /* run: the stub also writes the output to its own fds */
} sb_program;

/* Writes out and err, then ends the stub with code or signum. Also -EINVAL
 * for a code out of range or an unknown signal. */
int sb_conn_respond(sb_conn *conn, const sb_response *r);
/* Spawns the program as a child of the server (events SPAWN and EXIT; its
 * own ticket, so stubs it runs connect too; environment: the call's, edited
 * as p says). When the call's stdin and stdout are both terminals (and the
 * stub speaks `pty`, docs/protocol.md), the program gets a terminal too, as
 * `ssh -t` gives: a pseudo-terminal is its controlling terminal and its
 * stdin and stdout (and stderr, when the call's is a terminal; else stderr
 * stays a pipe to the stub's stderr), sized as the stub's terminal and
 * resized with it; the stub puts its own terminal in raw mode until it
 * exits, so keys (^C included) reach the pseudo-terminal, whose line
 * discipline does the rest. What the program writes there reaches the
 * stub's stdout (on_program_output, stream 1); what a process it left
 * behind writes after it ended is lost. Also -ENOENT/-EACCES when the program is not
 * found or not executable, and sb_spawn's errors: the connection is then untouched and
 * the caller answers the call otherwise. If the stub goes away first, the
 * program is stopped (SIGTERM, then SIGKILL 5 s later). It never outlives
 * the supervisor: it is started through the stub, which sets
 * PR_SET_PDEATHSIG (SIGKILL) and execs it in place (same pid), so it dies
 * with the thread that runs the loop, even one killed with SIGKILL. A
 * failure to exec that only shows then (a race, E2BIG) ends the program
 * with 126 or 127 and the stub's line on its stderr. */
int sb_conn_delegate(sb_conn *conn, const sb_program *p);
/* Tells the stub to exec the program. */
int sb_conn_exec(sb_conn *conn, const sb_program *p);
/* Tells the stub to run the program. */
int sb_conn_run(sb_conn *conn, const sb_program *p);

/* ---- events ------------------------------------------------------------- */

/* What happened, for a log or a UI: one callback for the whole server. It
 * may be called from inside sb_spawn (SPAWN) and sb_server_close (STOP).
 * ev and what it points to are valid during the callback only. */
#define SB_EVENT_TYPE_MAP(X)                                                             \
  X(SB_EVENT_SPAWN, 1, "spawn") /* child, pid, restarts (0 for the first run) */         \
  X(SB_EVENT_EXIT, 2, "exit")   /* child, pid, status or signal, restarts */             \
  /* child, pid, signal sent (the stop signal, later KILL) */                            \
  X(SB_EVENT_STOP, 3, "stop")                                                            \
  X(SB_EVENT_TIMEOUT, 4, "timeout") /* child, pid: its deadline passed */                \
  X(SB_EVENT_BACKOFF, 5, "backoff") /* child: waiting delay_ms before the next start */  \
  /* child: starting again now; restarts counts this one */                              \
  X(SB_EVENT_RESTART, 6, "restart")                                                      \
  X(SB_EVENT_GIVE_UP, 7, "give_up") /* child: max_restarts reached, no restart */        \
  X(SB_EVENT_STUB_CONNECT, 8, "stub_connect") /* conn, pid (the stub's) */               \
  /* reason, message, pid if it claimed one */                                           \
  X(SB_EVENT_STUB_REJECT, 9, "stub_reject")                                              \
  /* conn, pid, close_reason, status or signal it was told */                            \
  X(SB_EVENT_STUB_EXIT, 10, "stub_exit")                                                 \
  /* The server could not accept a connection for want of fds or memory                  \
   * (error: -EMFILE, -ENFILE, -ENOBUFS, -ENOMEM). It stops accepting until              \
   * an fd of its own is freed, or for 100 ms: waiting peers stay in the                 \
   * kernel's backlog, nothing is dropped, everything else is served. Once               \
   * per pause. */                                                                       \
  X(SB_EVENT_ACCEPT_PAUSED, 11, "accept_paused")                                         \
  /* accepting again; delay_ms: how long it paused */                                    \
  X(SB_EVENT_ACCEPT_RESUMED, 12, "accept_resumed")
typedef enum sb_event_type { SB_EVENT_TYPE_MAP(SB__ENUM_ENTRY) } sb_event_type;

struct sb_event {
  sb_event_type type;
  uint64_t ts_ns;  /* CLOCK_REALTIME */
  sb_child *child; /* or NULL */
  sb_conn *conn;   /* or NULL; valid during the callback only */
  int64_t pid;
  /* EXIT, STUB_EXIT: the code when signal == 0 (-1: unknown; for
   * STUB_EXIT, the stub was never told how to end). */
  int64_t status;
  int signal;
  unsigned restarts;
  uint64_t delay_ms;            /* BACKOFF, ACCEPT_RESUMED */
  int error;                    /* ACCEPT_PAUSED: a negative errno */
  sb_reason reason;             /* STUB_REJECT */
  sb_close_reason close_reason; /* STUB_EXIT */
  const char *message;          /* or NULL; never holds a token */
};

/* "spawn", "exit", "stop", "timeout", "backoff", "restart", "give_up",
 * "stub_connect", "stub_reject", "stub_exit", "accept_paused",
 * "accept_resumed". */
const char *sb_event_type_name(sb_event_type t);
/* The event as one JSON object on one line, without a newline, for JSON
 * Lines logs; malloc'd, the caller frees it. Holds no token and no env.
 * Members, present only where they apply:
 *   "event": sb_event_type_name(); "ts": seconds since the epoch as a number
 *   with microseconds (1732245600.123456); "pid" (when known);
 *   "status" (a number, null when unknown) or "signal" ("TERM"; a number for
 *   a signal without a name) for EXIT and STUB_EXIT; "signal" for STOP;
 *   "restarts" for child events; "delay_ms" for BACKOFF and
 *   ACCEPT_RESUMED; "error" ("EMFILE", uv_err_name) for ACCEPT_PAUSED; "reason"
 *   (sb_reason_name) for STUB_REJECT; "close_reason" for STUB_EXIT;
 *   "message"; "argv" of the stub for STUB_CONNECT and STUB_EXIT, each a
 *   string when UTF-8, else {"base64": ...} as in the wire protocol.
 * Returns 0, -EINVAL (ev or out NULL) or -ENOMEM. */
int sb_event_to_json(const sb_event *ev, char **out);

/* ---- side-band messages and status --------------------------------------
 *
 * A program in a child's tree sends one JSON object (with a string "type")
 * and gets one JSON object back, over the bridge, with the checks a stub
 * gets (token, max_bytes, allowlist, handshake timeout): docs/protocol.md
 * section 7. The server answers {"type":"ping"} with {"type":"pong"} and
 * {"type":"status"} with sb_server_status_json(); any other type goes to
 * on_message, else gets {"type":"error","error":"no_handler",...}. */

/* The message's JSON text, as compact JSON (owned by msg), and its "type". */
const char *sb_message_json(const sb_message *msg);
const char *sb_message_type(const sb_message *msg);
/* The pid the sender claimed. */
int64_t sb_message_pid(const sb_message *msg);
/* The ticket the sender presented; NULL once it was freed. */
sb_ticket *sb_message_ticket(const sb_message *msg);
/* Sends json (a JSON object; copied) as the reply, then closes the sender's
 * connection once it has read it, and frees msg: call it exactly once per
 * message, also when the sender has gone or the server is closing (msg is
 * freed all the same). A reply over max_bytes is replaced by a too_large
 * error reply. Errors: -EINVAL (json is not a JSON object: nothing was sent,
 * msg is freed), -ENOTCONN (the sender went away), -ENOMEM. */
int sb_message_reply(sb_message *msg, const char *json);

/* The server's status as one JSON object (docs/control.md section 9):
 * type "status", version, protocol, pid, uptime_ms, children (pid, argv,
 * state, restarts), calls (open, served), connections (sb_server_stats).
 * malloc'd, the caller frees it. Holds no token and no env. Returns 0,
 * -EINVAL or -ENOMEM. */
int sb_server_status_json(const sb_server *server, char **out);

/* The client side, for a program in a child's tree: sends message (a JSON
 * object with a string "type", NUL-terminated) to the supervisor its
 * environment names (SOCKETBRIDGE_TOKEN and the bridge address, as the
 * stub reads them) and waits for the reply, at most timeout_ms (< 0: no
 * limit). Blocking; uses no loop. On success *reply is the reply (a JSON
 * object, compact, malloc'd: the caller frees it); an error reply
 * ({"type":"error",...}) is a success here. Errors, with diag (may be NULL)
 * saying what and where: -ENOENT (no supervisor in the environment),
 * -EINVAL (message is not a JSON object with a string "type", or a
 * malformed SOCKETBRIDGE_* variable), -EACCES (rejected: bad_token or
 * not_allowed; diag names the reason), -EMSGSIZE (the message is over
 * max_bytes, or rejected too_large), -EPROTO (any other reject, or a reply
 * that breaks the protocol), -ETIMEDOUT, connect and I/O errors
 * (-ECONNREFUSED...), -ENOMEM. Never reports the token. */
int sb_send(const char *message, int timeout_ms, char **reply, sb_diag *diag);

#endif /* SB_WIRE_ONLY */

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif
