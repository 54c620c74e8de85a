/* SPDX-License-Identifier: MIT */
/* main.c - socketbridge-stub: stands in for a program by relaying its
 * argv, environment, stdin, stdout, stderr and exit status over a bridge to
 * the supervisor that started the process tree it runs in.
 *
 * Here: configuration, the handshake, what the supervisor's control
 * messages make the stub do, and how it ends. The relay itself is relay.c.
 * docs/protocol.md is the contract; sections are cited as (proto 4). */
#include "stub.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Reads and checks SOCKETBRIDGE_*: from the shim directory we were started
 * from when its run left its bridge there (shimdir.c), else from the
 * environment. Without them there is no supervisor to reach. */
static void read_config(sb_config *cfg, const char *argv0) {
  sb_diag diag;
  int r = stub_shim_config(argv0, cfg, &diag);
  if (r == 0) {
    r = sb_config_from_env(NULL, cfg, &diag);
    if (r == 0)
      r = sb_config_require(cfg, &diag);
  }
  if (r < 0)
    stub_unreachable("%s", diag.msg);
}

_Noreturn static void rejected(const sb_msg *m) {
  const char *reason = sb_reason_name(m->u.reject.reason);
  const char *text = m->u.reject.message != NULL ? m->u.reject.message : "";
  stub_fail("rejected by the supervisor: %s (%s)", reason != NULL ? reason : "unknown",
            text);
}

_Noreturn static void protocol_error(const char *what, const sb_diag *diag) {
  stub_fail("protocol error from the supervisor: %s%s%s", what, diag != NULL ? ": " : "",
            diag != NULL ? diag->msg : "");
}

/* Parses a control payload, failing the stub when it is malformed. */
static void parse_control(const uint8_t *payload, size_t len, sb_msg *m) {
  sb_diag diag;
  if (sb_msg_parse(payload, len, m, &diag) < 0)
    protocol_error("bad control message", &diag);
}

/* Ends the stub as `exit` says. Everything received for fds 1/2 before it
 * has been written already: the relay handles frames in order and decodes
 * nothing while a data piece is unwritten (proto 4, step 4). */
_Noreturn static void exit_as_told(const sb_status *s) {
  if (s->signal != 0)
    stub_die_by_signal(s->signal);
  stub_tty_restore();
  _exit(s->code);
}

/* exec and run: one per call. An `exit` is obeyed at any time, even while
 * the program of a run still runs (it is left running). */
void stub_on_control(stub *st, const uint8_t *payload, size_t len) {
  sb_msg m;
  parse_control(payload, len, &m);
  if ((m.type == SB_MSG_EXEC || m.type == SB_MSG_RUN) && st->run != NULL)
    stub_fail("protocol error from the supervisor: '%s' after run",
              sb_msg_type_name(m.type));
  switch (m.type) {
  case SB_MSG_EXIT:
    exit_as_told(&m.u.exit);
  case SB_MSG_EXEC:
    stub_tty_restore(); /* a program of ours gets the terminal as it was */
    stub_exec(st, &m.u.launch);
  case SB_MSG_RUN:
    stub_fds_ready(st);
    stub_tty_restore();
    stub_run_start(st, &m.u.launch);
    sb_msg_free(&m);
    return;
  case SB_MSG_PTY:
    stub_tty_raw();
    return;
  case SB_MSG_REJECT:
    rejected(&m);
  default:
    stub_fail("protocol error from the supervisor: unexpected '%s' after welcome",
              sb_msg_type_name(m.type));
  }
}

/* Acts on the first event from the supervisor: welcome (returns whether
 * stdin is to be held) or reject. */
static bool on_answer(const sb_frame *ev, bool hello_sent) {
  sb_msg m;
  if (ev->kind != SB_KIND_CONTROL)
    stub_fail("protocol error from the supervisor: %s data before welcome",
              sb_kind_name((int)ev->kind));
  parse_control(ev->data, ev->len, &m);
  if (m.type == SB_MSG_REJECT)
    rejected(&m);
  if (m.type != SB_MSG_WELCOME)
    stub_fail("protocol error from the supervisor: '%s' instead of welcome",
              sb_msg_type_name(m.type));
  if (!hello_sent)
    stub_fail("protocol error from the supervisor: welcome before the whole hello");
  if (m.u.welcome.version < SB_PROTOCOL_MIN_VERSION ||
      m.u.welcome.version > SB_PROTOCOL_VERSION)
    stub_fail("the supervisor chose protocol version %d; this stub speaks %d to %d",
              m.u.welcome.version, SB_PROTOCOL_MIN_VERSION, SB_PROTOCOL_VERSION);
  bool hold = m.u.welcome.hold_stdin;
  sb_msg_free(&m);
  return hold;
}

/* Sends what the socket takes of the hello now. Returns 0 or an errno. */
static int send_some(int sock, const uint8_t *frame, size_t len, size_t *sent) {
  while (*sent < len) {
    ssize_t n = send(sock, frame + *sent, len - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      *sent += (size_t)n;
    else if (errno == EAGAIN)
      return 0;
    else if (errno != EINTR)
      return errno;
  }
  return 0;
}

/* Sends hello (one send() unless it exceeds the socket buffer) and waits
 * for the answer, all before deadline. Reading goes on while sending: a
 * supervisor may reject a hello it refuses to read to the end (too_large),
 * and its reason is worth more than our EPIPE. Caught signals wait in the
 * self-pipe until the relay forwards them, after welcome. Returns whether
 * the supervisor holds stdin for a program (welcome "stdin": false). A
 * connection that ends or stays silent before the answer is a supervisor
 * not reached; a reject is an answer. */
static bool handshake(stub *st, const uint8_t *frame, size_t len, int64_t deadline) {
  stub_bridge *br = &st->br;
  size_t sent = 0;
  int send_err = 0;
  for (;;) {
    sb_frame ev;
    sb_diag diag;
    if (send_err == 0)
      send_err = send_some(br->sock, frame, len, &sent);
    int r = stub_bridge_next(br, &ev, &diag);
    if (r > 0)
      return on_answer(&ev, sent == len);
    if (r < 0)
      protocol_error("bad frame", &diag);
    if (br->rd_eof || br->rd_err != 0) {
      int err = br->rd_err != 0 ? -br->rd_err : send_err;
      if (err != 0)
        stub_unreachable("connection to the supervisor lost during the handshake: %s",
                         strerror(err));
      stub_unreachable("the supervisor closed the connection during the handshake");
    }
    struct pollfd pfd = {.fd = br->sock, .events = POLLIN};
    if (sent < len && send_err == 0)
      pfd.events |= POLLOUT;
    int left = stub_ms_left(deadline);
    int n = left > 0 ? poll(&pfd, 1, left) : 0;
    if (n == 0)
      stub_unreachable("no answer from the supervisor within %d s",
                       STUB_HANDSHAKE_TIMEOUT_MS / 1000);
    if (n < 0 && errno != EINTR)
      stub_fail("poll: %s", strerror(errno));
    if (n > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
      stub_bridge_recv(br);
  }
}

int main(int argc, char **argv) {
  stub st;
  sb_config cfg;
  uint8_t *hello;
  size_t hello_len;

  /* Before anything else: the trampoline touches nothing of its own. */
  if (argc > 1 && strcmp(argv[1], SB_TRAMPOLINE_ARG) == 0)
    stub_trampoline(argc, argv);
  memset(&st, 0, sizeof st);
  unsigned tty;
  st.std_closed = stub_guard_std_fds(&tty);
  st.std_tty = tty;
  stub_depth_check();
  st.sigfd = stub_signals_init();
  stub_fallback_init(argv);
  read_config(&cfg, argc > 0 ? argv[0] : NULL);
  /* The hello first: one that cannot be built (too large) should not cost
   * the supervisor a connection. */
  stub_hello_encode(&cfg, argc, argv, tty, &hello, &hello_len);
  int64_t deadline = stub_now_ms() + STUB_HANDSHAKE_TIMEOUT_MS;
  int sock = stub_connect(&cfg, deadline);
  stub_bridge_init(&st.br, sock, cfg.max_bytes);
  sb_config_free(&cfg); /* wipes the token: it is in the hello alone now */

  st.hold_stdin = handshake(&st, hello, hello_len, deadline);
  explicit_bzero(hello, hello_len);
  free(hello);
  stub_relay(&st);
}
