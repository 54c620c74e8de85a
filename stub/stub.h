/* stub.h - declarations shared between the files of socketbridge-stub. Not
 * installed; everything here is internal to the stub executable.
 *
 * The stub is one process with one thread and one poll() loop. It owns:
 * - the bridge: one stream socket to the supervisor (bridge.c), the frames
 *   read from it (decoded by lib/, zero copy) and the frames queued for it;
 * - its fds 0, 1, 2 (fdout.c), written through private non-blocking
 *   descriptions where it can get them, so a stuck reader never stops the
 *   loop from noticing a lost bridge;
 * - a self-pipe that turns caught signals into bytes (sig.c).
 */
#ifndef SB_STUB_H
#define SB_STUB_H

#include "sb_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The exit code of a stub that cannot do its job (as env(1), timeout(1)). */
#define STUB_EXIT_FAILURE 125
/* How long connect + hello + the supervisor's answer may take in all. */
#define STUB_HANDSHAKE_TIMEOUT_MS 30000
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
 * replaced, so it stays one line) and exits STUB_EXIT_FAILURE. */
_Noreturn void stub_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- fdout.c: the stub's fds 0, 1, 2 --------------------------------------- */

/* How the stub does I/O on one of its standard fds. */
typedef enum stub_io_mode {
  STUB_IO_PLAIN = 0, /* read()/write() that may block: files, /dev/null, fallbacks */
  STUB_IO_NONBLOCK,  /* an O_NONBLOCK description: EAGAIN means wait for poll() */
  STUB_IO_SOCKET,    /* a socket: recv()/send() with MSG_DONTWAIT per call */
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
 * that were closed. */
unsigned stub_guard_std_fds(void);
/* Chooses how to do I/O on fd (see stub_io_mode); may open a private
 * non-blocking description of it. was_closed: fd is only a placeholder. */
void stub_fd_setup(stub_fd *f, int fd, bool writing, bool was_closed);
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
/* Reads up to max caught signal numbers from the self-pipe, in order. */
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
  uint8_t *rbuf;     /* STUB_RBUF_SIZE bytes */
  const uint8_t *in; /* received and not yet decoded: in[0..in_len) */
  size_t in_len;
  bool rd_eof;                    /* the peer will send nothing more */
  int rd_err;                     /* negative errno of a failed recv, or 0 */
  stub_outframe q[STUB_OUTQ_LEN]; /* ring of frames to send */
  size_t q_head, q_len;
  bool q_dirty; /* frames were queued since the last send attempt */
  bool wr_dead; /* sending failed: nothing more goes up */
} stub_bridge;

/* Takes the connected socket; allocates the read buffer. */
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

/* True when an `exit` message may be among the bytes not yet decoded: the
 * rest of the read buffer plus what the kernel still holds. Only meaningful
 * once the peer has closed, when nothing more can arrive. */
bool stub_exit_ahead(const stub_bridge *br);

/* ---- the stub as a whole -------------------------------------------------- */

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
} stub;

/* main.c: acts on one control message from the supervisor after welcome.
 * Returns only when the stub goes on. */
void stub_on_control(stub *st, const uint8_t *payload, size_t len);

/* relay.c: the poll loop; ends by exit, signal or failure, never returns. */
_Noreturn void stub_relay(stub *st);

#endif
