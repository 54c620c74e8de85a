/* SPDX-License-Identifier: MIT */
/* stub.h - declarations shared between the files of socketbridge-stub. Not
 * installed; everything here is internal to the stub executable.
 *
 * The stub is one process with one thread and one poll() loop. It owns:
 * - the bridge: one stream socket to the supervisor (bridge.c), the frames
 *   read from it (decoded by lib/, zero copy) and the frames queued for it;
 * - its fds 0, 1, 2 (fdout.c), written through private non-blocking
 *   descriptions where it can get them, so a stuck reader never stops the
 *   loop from noticing a lost bridge;
 * - a self-pipe that turns caught signals into bytes (sig.c);
 * - after `exec` or `run` (launch.c, run.c), a program: exec'd in place, or
 *   spawned with its stdout/stderr on pipes the same loop relays up.
 */
#ifndef SB_STUB_H
#define SB_STUB_H

/* lib/'s internals too: the stub reads and writes control messages with
 * sb_msg_parse / sb_msg_encode, as the supervisor does. */
#include "proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/types.h>
#include <sys/uio.h>

/* For functions that run at most once per process (starting a program,
 * failing): compiled for size, not speed, so the stub stays small. */
#define STUB_COLD __attribute__((cold))

/* The exit code of a stub that cannot do its job (as env(1), timeout(1)). */
#define STUB_EXIT_FAILURE 125
/* The program of an exec or run (or of the fallback) was found but could
 * not be started; was not found (as a shell says). */
#define STUB_EXIT_CANNOT_RUN 126
#define STUB_EXIT_NOT_FOUND 127
/* How long connect + hello + the supervisor's answer may take in all. */
#define STUB_HANDSHAKE_TIMEOUT_MS 30000
/* How long a lost run waits for its killed program to be reaped. */
#define STUB_REAP_MS 200
/* How long the failure line may wait for a full stderr before we exit anyway. */
#define STUB_FAIL_WRITE_MS 1000
/* Bytes read from the socket at once; data is written to fds 1/2 from here.
 * 128 KiB: two 64 KiB frames per recv; the stub's peak RSS while streaming
 * stays under 2 MiB (docs/performance.md). */
#define STUB_RBUF_SIZE (128u * 1024u)
/* Bytes of stdin read at once: the payload of at most one stdin frame. */
#define STUB_IBUF_SIZE (64u * 1024u)
/* Frames waiting for the socket: one stdin frame, signals, 2 stream_errors. */
#define STUB_OUTQ_LEN 8

/* ---- fail.c: the one line the stub ever writes of its own ---------------- */

/* Writes "socketbridge-stub: <message>\n" to stderr (control characters
 * replaced, so it stays one line), waiting STUB_FAIL_WRITE_MS at most. */
STUB_COLD void stub_say(const char *message);
/* Writes the line (printf-style), then exits with code. */
STUB_COLD _Noreturn void stub_fail_code(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes the line, then exits STUB_EXIT_FAILURE. */
#define stub_fail(...) stub_fail_code(STUB_EXIT_FAILURE, __VA_ARGS__)

/* ---- fdout.c: the stub's fds 0, 1, 2 --------------------------------------- */

/* How the stub does I/O on one of its standard fds. */
typedef enum stub_io_mode {
  STUB_IO_PLAIN = 0, /* read()/write() that may block: files, /dev/null, fallbacks */
  STUB_IO_NONBLOCK,  /* an O_NONBLOCK description: EAGAIN means wait for poll() */
  STUB_IO_SOCKET,    /* a socket: recv()/send() with MSG_DONTWAIT per call */
  STUB_IO_POLLED,    /* a pipe or terminal we could not re-open: blocking, so
                        used only when poll() says it is ready, PIPE_BUF at most */
} stub_io_mode;

typedef struct stub_fd {
  int fd; /* 0, 1 or 2 */
  int io; /* the fd read or written: fd, our private re-open, or -1 */
  stub_io_mode mode;
  bool done;   /* stdin: EOF sent up; stdout/stderr: closed by the supervisor */
  bool failed; /* stdout/stderr: a write failed, later data is dropped */
} stub_fd;

/* Makes sure fds 0, 1 and 2 are open (on /dev/null where they were not), so
 * no socket or pipe of ours lands on them. Returns a bit mask of the ones
 * that were closed, also kept in stub_std_closed; *tty gets the mask of
 * the ones that are terminals (bit fd: SB_TTY_STDIN, _STDOUT, _STDERR). */
unsigned stub_guard_std_fds(unsigned *tty);
extern unsigned stub_std_closed;
/* Closes the placeholders again: a program we exec gets the fds we got. */
STUB_COLD void stub_unguard_std_fds(void);
/* Chooses how to do I/O on fd (see stub_io_mode); may open a private
 * non-blocking description of it. was_closed: fd is only a placeholder.
 * tty: whether fd is a terminal, as stub_guard_std_fds found; -1 to ask. */
void stub_fd_setup(stub_fd *f, int fd, bool writing, bool was_closed, int tty);
/* One write or read attempt: bytes moved, or a negative errno (-EAGAIN when
 * the fd is not ready). */
ssize_t stub_fd_write(const stub_fd *f, const void *buf, size_t len);
ssize_t stub_fd_read(const stub_fd *f, void *buf, size_t len);
/* Closes the stream for good: our private description and the fd itself,
 * so the reader sees EOF. */
void stub_fd_close(stub_fd *f);

/* ---- sig.c: signals ------------------------------------------------------- */

/* Ignores SIGPIPE and catches INT, TERM, HUP and QUIT (unless inherited as
 * ignored) into a self-pipe. Returns the pipe's read end. */
int stub_signals_init(void);
/* Catches SIGCHLD into the self-pipe too (run mode: reaping). */
STUB_COLD void stub_signals_catch_child(void);
/* Catches SIGWINCH into the self-pipe too (after `pty`: resizes go up). */
STUB_COLD void stub_signals_catch_winch(void);
/* Before an execve: puts the signals whose action we changed back to
 * their default (the ones we catch, and SIGPIPE unless our parent had it
 * ignored), so the program finds them as it would without us. */
STUB_COLD void stub_signals_restore(void);
/* Set in a byte of the self-pipe when the kernel sent the signal (a
 * terminal's ^C or hang-up): it went to the whole process group. */
#define STUB_SIG_KERNEL 0x80
/* Reads up to max caught signal bytes from the self-pipe, in order: the
 * signal number, with STUB_SIG_KERNEL or'ed in as above. */
size_t stub_signals_take(int sigfd, int *out, size_t max);
/* Dies by sig's default action, so the parent sees WIFSIGNALED; exits
 * 128 + sig when that action does not end the process. */
_Noreturn void stub_die_by_signal(int sig);

/* ---- connect.c: the socket and deadlines --------------------------------- */

/* CLOCK_MONOTONIC in milliseconds. */
int64_t stub_now_ms(void);
/* Milliseconds until deadline, as a poll() timeout (0 when past). */
int stub_ms_left(int64_t deadline);
/* Connects to the supervisor named by cfg before deadline. Returns a
 * close-on-exec, non-blocking stream socket; fails the stub otherwise. */
int stub_connect(const sb_config *cfg, int64_t deadline);

/* ---- tty.c: the stub's terminal, for a call on a pty ----------------------- */

/* The size of the first of fds 0, 1, 2 that is a terminal; false if none. */
bool stub_tty_size(sb_winsize *ws);
/* `pty`: puts the terminal (stdin's, else the first) in raw mode, and
 * catches SIGWINCH. */
STUB_COLD void stub_tty_raw(void);
/* Puts the terminal back as it was, if stub_tty_raw changed it. Called on
 * every way out: exit, death by signal, failure, exec and run. */
void stub_tty_restore(void);

/* ---- hello.c -------------------------------------------------------------- */

/* Encodes the hello frame (the caller wipes and frees it: it holds the
 * token). tty: SB_TTY_* of the fds as the stub found them. */
void stub_hello_encode(const sb_config *cfg, int argc, char **argv, unsigned tty,
                       uint8_t **frame, size_t *len);

/* ---- peek.c: frame boundaries beside the decoder ------------------------- */

/* Where the bytes consumed so far left us in the frame structure. The
 * decoder keeps this privately; we keep our own copy so that, once the peer
 * has closed, we can look ahead in what is left for an `exit`. */
typedef struct stub_track {
  uint8_t hdr[SB_FRAME_HEADER];
  size_t hdr_have;    /* header bytes of the current frame seen */
  uint32_t body_left; /* payload bytes of the current frame still to come */
} stub_track;

/* Moves t past n bytes of the stream. */
void stub_track_feed(stub_track *t, const uint8_t *p, size_t n);

/* ---- bridge.c: the socket to the supervisor ------------------------------- */

/* One frame waiting to be sent: iov points into hdr, a stdin buffer, or owned. */
typedef struct stub_outframe {
  struct iovec iov[2];
  int niov;
  uint8_t hdr[SB_FRAME_HEADER];
  uint8_t *owned; /* freed once sent */
} stub_outframe;

typedef struct stub_bridge {
  int sock;
  uint32_t max_bytes;
  sb_decoder dec;
  stub_track track;  /* mirrors how far dec has consumed */
  uint8_t *rbuf;     /* STUB_RBUF_SIZE bytes, static */
  const uint8_t *in; /* received and not yet decoded: in[0..in_len) */
  size_t in_len;
  bool rd_eof;                    /* the peer will send nothing more */
  int rd_err;                     /* negative errno of a failed recv, or 0 */
  stub_outframe q[STUB_OUTQ_LEN]; /* ring of frames to send */
  size_t q_head, q_len;
  bool q_dirty; /* frames were queued since the last send attempt */
  bool wr_dead; /* sending failed: nothing more goes up */
} stub_bridge;

/* Takes the connected socket; points at the (one, static) read buffer. */
void stub_bridge_init(stub_bridge *br, int sock, uint32_t max_bytes);
/* The next decoded event from what was received (see sb_decoder_next). */
int stub_bridge_next(stub_bridge *br, sb_frame *ev, sb_diag *diag);
/* Receives into the read buffer, which must be fully decoded. Returns the
 * byte count, 0 at EOF, -EAGAIN, or another negative errno (kept in rd_err). */
ssize_t stub_bridge_recv(stub_bridge *br);
/* Free slots in the send queue. */
size_t stub_bridge_room(const stub_bridge *br);
/* Queues a data frame; payload must stay valid until the frame is sent. */
void stub_bridge_push_data(stub_bridge *br, sb_kind kind, const uint8_t *payload,
                           size_t len);
/* Encodes and queues a control message. */
void stub_bridge_push_msg(stub_bridge *br, const sb_msg *m);
/* Sends what the socket takes now. Returns 0 when the queue is empty,
 * -EAGAIN, or the negative errno that made the bridge's send side dead. */
int stub_bridge_flush(stub_bridge *br);
/* Sends the whole queue, waiting until deadline at most (best effort). */
void stub_bridge_drain(stub_bridge *br, int64_t deadline);

/* True when an `exit` message may be among the bytes not yet decoded: the
 * rest of the read buffer plus what the kernel still holds. Only meaningful
 * once the peer has closed, when nothing more can arrive. */
bool stub_exit_ahead(const stub_bridge *br);

/* ---- the stub as a whole -------------------------------------------------- */

/* run mode: one of the program's output pipes. */
typedef struct stub_pipe {
  int fd;       /* our (non-blocking) read end; -1 once at EOF */
  uint8_t *buf; /* the last chunk read: its queued frame and the tee point here */
  size_t len;   /* bytes in buf */
  size_t teed;  /* of them, written to our own fd (all of them without tee) */
} stub_pipe;

/* run mode: the program. */
typedef struct stub_run {
  pid_t pid;        /* 0 once reaped (or never spawned) */
  int status;       /* its wait status, once reaped; a spawn failure as an exit */
  bool tee;         /* its output also goes to our own fds 1/2 */
  bool exited_sent; /* `exited` is queued */
  stub_pipe out[2]; /* its stdout, stderr */
} stub_run;

typedef struct stub {
  stub_bridge br;
  stub_fd std[3];
  int sigfd;       /* self-pipe read end */
  uint8_t *ibuf;   /* stdin is read here; a queued stdin frame points here */
  size_t ibuf_len; /* at most max_bytes - 1: one frame's payload */
  /* The piece of a data frame being written to fd 1 or 2. While it is not
   * written, the decoder is not called and the socket is not read. */
  int piece_stream;
  const uint8_t *piece;
  size_t piece_len;
  bool peer_checked; /* the peer closed, and an exit may be in what is left */
  stub_run *run;     /* after `run`: the program and its pipes (run.c) */
  /* fds 0-2 as the stub found them (stub_guard_std_fds), set up for the
   * relay on first need (stub_fds_ready): an answer that is `exit` alone
   * never touches them. */
  unsigned std_closed, std_tty;
  bool hold_stdin; /* welcome "stdin": false */
  bool fds_set;
} stub;

/* relay.c: sets fds 0-2 up for the relay, and the stdin buffer; once. */
void stub_fds_ready(stub *st);

/* main.c: acts on one control message from the supervisor after welcome.
 * Returns only when the stub goes on. */
void stub_on_control(stub *st, const uint8_t *payload, size_t len);

/* tty.c: SIGWINCH after `pty`: sends the new size up as `winsize`. */
void stub_tty_resized(stub *st);

/* relay.c: the poll loop; ends by exit, signal or failure, never returns. */
_Noreturn void stub_relay(stub *st);
/* A write to fd 1/2 failed (err > 0): tells the supervisor once; later
 * data for that stream is dropped. */
void stub_stream_failed(stub *st, int stream, int err);

/* ---- launch.c: exec, and what exec and run share --------------------------- */

/* ---- shimdir.c: which supervisor a shim reaches ------------------------- */

/* When the stub was started as a shim from a directory of `socketbridge
 * run` (argv0 as given), reads that run's bridge from the directory's
 * SB_SHIM_BRIDGE_FILE into cfg. Returns 1 when it did, 0 when there is no
 * such file (use the environment), -1 with diag for a file that is there
 * but malformed. */
STUB_COLD int stub_shim_config(const char *argv0, sb_config *cfg, sb_diag *diag);

/* Reads SOCKETBRIDGE_DEPTH: fails the stub when it is malformed or
 * SB_MAX_DEPTH or more; otherwise every program the stub starts gets one
 * more. */
STUB_COLD void stub_depth_check(void);
/* Reads SOCKETBRIDGE_FALLBACK (fails the stub when it is neither unset,
 * empty nor "exec") and keeps argv for stub_unreachable. */
STUB_COLD void stub_fallback_init(char **argv);
/* The supervisor cannot be reached (configuration missing or malformed,
 * connect failed, connection lost or no answer before welcome): with
 * SOCKETBRIDGE_FALLBACK=exec, execs the real program; otherwise writes the
 * line and exits STUB_EXIT_FAILURE. */
STUB_COLD _Noreturn void stub_unreachable(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* A program to start, ready for execve (exec; run after fork). */
typedef struct stub_prog {
  char **env;         /* environ less unset plus set; borrows every string */
  const char *file;   /* the path to start: l->path or the lookup's result */
  const char *name;   /* for messages: l->path or argv[0] */
  const char *where;  /* what failed, for messages: NULL (the program) or cwd */
  char buf[PATH_MAX]; /* the lookup's result */
} stub_prog;

/* Builds the environment, enters l->cwd, finds the program (a program
 * looked up gets the path found as its argv[0]: l->argv.v[0] is replaced).
 * Returns 0 or a negative errno (p->where says what failed). */
STUB_COLD int stub_prog_prepare(stub_prog *p, sb_launch *l);
/* A start that failed with err: the exit code, 127 for a program not found
 * (ENOENT, ENOTDIR), else 126 (a directory that cannot be entered
 * included); and the line "cannot VERB 'NAME': ...". */
STUB_COLD int stub_prog_exit_code(const stub_prog *p, int err);
STUB_COLD void stub_prog_say(const stub_prog *p, const char *verb, int err);
/* exec: replaces the stub by the program, or reports why not and exits
 * 126/127 (proto 4, step 5). */
STUB_COLD _Noreturn void stub_exec(stub *st, sb_launch *l);

/* ---- trampoline.c: how a delegated program starts ------------------------- */

/* Run as `stub SB_TRAMPOLINE_ARG PPID FILE ARGV0 [ARG...]` (proto.h):
 * sets PR_SET_PDEATHSIG (SIGKILL), checks the parent is PPID, and execs
 * FILE with ARGV0...; exits 126/127 with the line when it cannot. */
STUB_COLD _Noreturn void stub_trampoline(int argc, char **argv);

/* ---- run.c: run mode --------------------------------------------------------- */

/* Spawns the program with its stdout/stderr on pipes. On failure: the line,
 * then `exited` 126/127 follows as for a program that ended. */
STUB_COLD void stub_run_start(stub *st, sb_launch *l);
/* Poll entries for the pipes and the tee (STUB_RUN_POLLS of them). */
#define STUB_RUN_POLLS 4
void stub_run_poll(const stub *st, struct pollfd *p);
void stub_run_handle(stub *st, const struct pollfd *p);
/* A caught signal (a self-pipe byte): true when run mode took it (SIGCHLD;
 * or forwarded to the program while it runs). */
bool stub_run_signal(stub *st, int b);
/* Called once per loop turn: sends `exited` once the program has ended and
 * both pipes are at EOF. */
void stub_run_step(stub *st);
/* The bridge is lost: kills the program if it still runs, and ends the
 * stub (see run.c). */
_Noreturn void stub_run_lost(stub *st);
/* True while the tee has bytes for stream (1 or 2) not yet written: the
 * supervisor's data for that stream waits, so the two never interleave. */
bool stub_run_tee_busy(const stub *st, int stream);

#endif
