/* SPDX-License-Identifier: MIT */
/* relay.c - the poll loop of proxy mode (proto 4, step 3).
 *
 * One poll() with no timeout: the stub sleeps until a fd is ready, and asks
 * only for what it can act on, so neither direction buffers without bound:
 * - the socket is read only when the last piece of data read from it is
 *   written to fd 1/2 (the decoder hands pieces pointing into our read
 *   buffer; nothing is copied, and nothing is read over them);
 * - stdin is read only when the send queue is empty (the stdin frame points
 *   into the stdin buffer until the socket has taken it);
 * - signals are read only while the send queue has room for them.
 * While fd 1/2 is full the socket is still watched for the peer's close,
 * so a lost bridge is noticed however long the reader of fd 1 sleeps
 * (TCP: the supervisor resets a live connection it closes, or that the
 * kernel closes when it dies, so its FIN never waits behind unsent data).
 * In run mode the program's pipes join the loop (run.c). */
#include "stub.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Send-queue slots kept free for the two stream_errors there can be. */
#define STUB_OUTQ_RESERVED 2

/* The bridge is lost: the stub fails now (in run mode, after killing its
 * program: run.c). */
_Noreturn static void lost(stub *st) {
  const stub_bridge *br = &st->br;
  if (st->run != NULL)
    stub_run_lost(st);
  if (br->rd_err != 0)
    stub_fail("connection to the supervisor lost before exit: %s", strerror(-br->rd_err));
  if (!sb_decoder_idle(&br->dec))
    stub_fail("connection to the supervisor lost before exit, in the middle of a frame");
  stub_fail("connection to the supervisor lost: it closed before sending exit");
}

void stub_stream_failed(stub *st, int stream, int err) {
  char text[128];
  sb_msg m;
  sb__snprintf(text, sizeof text, "%s", strerror(err));
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_STREAM_ERROR;
  m.u.stream_error.stream = stream;
  m.u.stream_error.err = -err;
  m.u.stream_error.message = text;
  st->std[stream].failed = true;
  stub_bridge_push_msg(&st->br, &m);
}

/* Writes what fd 1/2 takes of the pending piece. Returns true when the piece
 * is done (written, or dropped after a failure), false when we must wait for
 * POLLOUT (or, after EINTR, look at the self-pipe first). */
static bool piece_write(stub *st) {
  stub_fd *f = &st->std[st->piece_stream];
  if (st->run != NULL && stub_run_tee_busy(st, st->piece_stream))
    return false; /* the program's chunk goes first; POLLOUT brings us back */
  while (st->piece_len > 0 && !f->failed) {
    ssize_t n = stub_fd_write(f, st->piece, st->piece_len);
    if (n > 0) {
      st->piece += n;
      st->piece_len -= (size_t)n;
    } else if (n == -EAGAIN || n == -EINTR) {
      return false;
    } else {
      stub_stream_failed(st, st->piece_stream, (int)-n);
    }
  }
  st->piece_len = 0;
  return true;
}

/* A piece of a stdout/stderr frame: becomes the pending piece. */
static void on_data(stub *st, const sb_frame *ev) {
  int stream = sb_kind_stream((int)ev->kind);
  if (stream != 1 && stream != 2)
    stub_fail("protocol error from the supervisor: %s data sent to the stub",
              sb_kind_name((int)ev->kind));
  stub_fds_ready(st);
  if (st->std[stream].done)
    stub_fail("protocol error from the supervisor: %s data after its end",
              sb_kind_name((int)ev->kind));
  if (ev->len == 0) {
    stub_fd_close(&st->std[stream]);
    return;
  }
  st->piece_stream = stream;
  st->piece = ev->data;
  st->piece_len = ev->len;
}

/* Handles received frames in order until a piece has to wait for fd 1/2 or
 * every received byte is used. An exit handled here comes after all the
 * data before it has been written: frames are never handled ahead. */
static void pump(stub *st) {
  while (st->piece_len == 0) {
    sb_frame ev;
    sb_diag diag;
    int r = stub_bridge_next(&st->br, &ev, &diag);
    if (r < 0)
      stub_fail("protocol error from the supervisor: %s", diag.msg);
    if (r == 0) {
      if (st->br.rd_eof || st->br.rd_err != 0)
        lost(st);
      return;
    }
    if (ev.kind == SB_KIND_CONTROL) {
      stub_on_control(st, ev.data, ev.len);
    } else {
      on_data(st, &ev);
      if (!piece_write(st))
        return;
    }
  }
}

static void stdin_eof(stub *st) {
  stub_fd *f = &st->std[0];
  stub_bridge_push_data(&st->br, SB_KIND_STDIN, NULL, 0);
  if (f->io >= 0 && f->io != f->fd)
    close(f->io);
  f->io = -1;
  f->done = true;
}

static void read_stdin(stub *st) {
  ssize_t n = stub_fd_read(&st->std[0], st->ibuf, st->ibuf_len);
  if (n == -EAGAIN || n == -EINTR)
    return;
  if (n > 0)
    stub_bridge_push_data(&st->br, SB_KIND_STDIN, st->ibuf, (size_t)n);
  else
    stdin_eof(st); /* EOF, or an error that ends the stream all the same (EIO) */
}

/* Sets up fds 0/1/2 for the relay, and the stdin buffer, bounded by one
 * frame. A held stdin is never touched: not even re-opened; one closed when
 * we started has ended already. The masks are the ones stub_guard_std_fds
 * gave (fds 0-2 have not changed since). */
void stub_fds_ready(stub *st) {
  if (st->fds_set)
    return;
  st->fds_set = true;
  for (int fd = st->hold_stdin ? 1 : 0; fd <= 2; fd++)
    stub_fd_setup(&st->std[fd], fd, fd != 0, (st->std_closed & (1u << fd)) != 0,
                  (st->std_tty & (1u << fd)) != 0);
  if (st->hold_stdin)
    st->std[0] = (stub_fd){.fd = 0, .io = -1, .done = true};
  st->ibuf_len = STUB_IBUF_SIZE;
  if (st->ibuf_len > st->br.max_bytes - 1)
    st->ibuf_len = st->br.max_bytes - 1;
  st->ibuf = malloc(st->ibuf_len);
  if (st->ibuf == NULL)
    stub_fail("out of memory");
  if (st->std[0].io < 0 && !st->std[0].done)
    stdin_eof(st); /* fd 0 was closed when we started */
}

/* Forwards caught signals: to the program while one runs (run.c), else up.
 * When the supervisor can no longer hear (send side dead) or answer (it
 * closed: we only wait to write what it sent before its exit), there is
 * nobody to ask what to do, so the signal does what it would have done to
 * any program. */
static void forward_signals(stub *st, size_t max) {
  int sigs[STUB_OUTQ_LEN];
  size_t n = stub_signals_take(st->sigfd, sigs, max);
  for (size_t i = 0; i < n; i++) {
    int sig = sigs[i] & ~STUB_SIG_KERNEL;
    if (sig == SIGWINCH) { /* caught only after `pty` (tty.c) */
      stub_tty_resized(st);
      continue;
    }
    if (stub_run_signal(st, sigs[i]))
      continue;
    if (st->br.wr_dead || st->peer_checked)
      stub_die_by_signal(sig);
    /* Only when a program ended within this batch (its signals took no
     * room): dropped, as the kernel merges pending signals. */
    if (stub_bridge_room(&st->br) <= STUB_OUTQ_RESERVED)
      continue;
    sb_msg m;
    memset(&m, 0, sizeof m);
    m.type = SB_MSG_SIGNAL;
    m.u.signal.signal = sig;
    stub_bridge_push_msg(&st->br, &m);
  }
}

enum { P_SOCK, P_SIG, P_STDIN, P_OUT, P_RUN, P_COUNT = P_RUN + STUB_RUN_POLLS };

/* The socket's events. While a piece waits for fd 1/2 the socket is not
 * read, but POLLRDHUP (and POLLHUP, POLLERR, always reported) tell us the
 * peer closed; once we know an exit may follow, the socket is left out, or
 * its standing hang-up would wake poll() in a loop. */
static void watch_socket(const stub *st, bool blocked, struct pollfd *p) {
  bool sending = st->br.q_len > 0 && !st->br.wr_dead;
  p->fd = st->br.sock;
  p->events = sending ? POLLOUT : 0;
  if (!blocked)
    p->events |= POLLIN;
  else if (!st->peer_checked)
    p->events |= POLLRDHUP;
  else if (!sending)
    p->fd = -1;
}

/* The peer closed while a piece waits for fd 1/2: fail now, unless what is
 * left holds an exit (then the data before it must still be written). */
static void peer_closed(stub *st) {
  st->peer_checked = true;
  if (!stub_exit_ahead(&st->br))
    lost(st);
}

/* Sleeps in poll() until something can be done, and does it. */
static void wait_and_handle(stub *st) {
  struct pollfd p[P_COUNT];
  stub_bridge *br = &st->br;
  bool blocked = st->piece_len > 0;
  size_t room = stub_bridge_room(br);
  /* While a program runs its signals go to it, and need no room. */
  bool running = st->run != NULL && st->run->pid > 0;
  size_t sig_room = running                           ? STUB_OUTQ_LEN
                    : br->wr_dead || st->peer_checked ? 1
                    : room > STUB_OUTQ_RESERVED       ? room - STUB_OUTQ_RESERVED
                                                      : 0;
  bool want_stdin = !st->std[0].done && br->q_len == 0 && !br->wr_dead;

  watch_socket(st, blocked, &p[P_SOCK]);
  p[P_SIG] = (struct pollfd){.fd = sig_room > 0 ? st->sigfd : -1, .events = POLLIN};
  p[P_STDIN] = (struct pollfd){.fd = want_stdin ? st->std[0].io : -1, .events = POLLIN};
  p[P_OUT] = (struct pollfd){.fd = blocked ? st->std[st->piece_stream].io : -1,
                             .events = POLLOUT};
  nfds_t np = P_RUN;
  if (st->run != NULL) {
    stub_run_poll(st, &p[P_RUN]);
    np = P_COUNT;
  }
  if (poll(p, np, -1) < 0) {
    if (errno == EINTR)
      return; /* the signal's byte is in the self-pipe */
    stub_fail("poll: %s", strerror(errno));
  }

  /* A signal that came while poll() returned for stdin has its byte in
   * the self-pipe by now (the handler runs before poll() returns to us),
   * though poll() did not see it: it went first (a resize before the keys
   * typed after it), and goes up first. */
  if (p[P_SIG].revents != 0 || (sig_room > 0 && p[P_STDIN].revents != 0))
    forward_signals(st, sig_room);
  if (np > P_RUN)
    stub_run_handle(st, &p[P_RUN]);
  if (p[P_OUT].revents != 0)
    piece_write(st);
  if (p[P_STDIN].revents != 0)
    read_stdin(st);
  short rs = p[P_SOCK].revents;
  if ((rs & (POLLOUT | POLLERR | POLLHUP)) && br->q_len > 0)
    stub_bridge_flush(br);
  if (!blocked && (rs & (POLLIN | POLLHUP | POLLERR)))
    stub_bridge_recv(br);
  if (blocked && !st->peer_checked && (rs & (POLLRDHUP | POLLHUP | POLLERR)))
    peer_closed(st);
}

/* Before the first wait: the answer may be in already (an `exit` right
 * behind the welcome, in another segment), and is read before fds it would
 * not need are set up. Returns true when there is more to pump. */
static bool first_wait(stub *st) {
  if (!st->br.rd_eof && st->br.rd_err == 0 && stub_bridge_recv(&st->br) > 0)
    return true;
  stub_fds_ready(st);
  return false;
}

_Noreturn void stub_relay(stub *st) {
  for (;;) {
    pump(st);
    stub_run_step(st);
    if (st->br.q_dirty)
      stub_bridge_flush(&st->br);
    if (!st->fds_set && first_wait(st))
      continue;
    wait_and_handle(st);
  }
}
