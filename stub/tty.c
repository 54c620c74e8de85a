/* SPDX-License-Identifier: MIT */
/* tty.c - the stub's terminal, for a call whose program runs on a
 * pseudo-terminal on the supervisor's side (`pty`, proto 2 and 4): its
 * size, sent in hello and on every SIGWINCH after `pty`; and raw mode, as
 * ssh -t sets it, so that keys (^C, ^Z, ^D included) travel as bytes to
 * the pseudo-terminal, whose line discipline acts on them there. The
 * terminal's settings are restored on every way the stub ends: exit,
 * death by signal, failure, or a program it starts (exec, run). */
#include "stub.h"

#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* The fd whose terminal we set raw, and its settings before; -1 while
 * nothing is to restore. */
static int stub_raw_fd = -1;
static struct termios stub_saved;

/* The first of fds 0, 1, 2 that is a terminal, or -1. */
static int first_tty(void) {
  for (int fd = 0; fd <= 2; fd++)
    if (isatty(fd))
      return fd;
  return -1;
}

bool stub_tty_size(sb_winsize *ws) {
  struct winsize w;
  int fd = first_tty();
  if (fd < 0 || ioctl(fd, TIOCGWINSZ, &w) != 0)
    return false;
  ws->rows = w.ws_row;
  ws->cols = w.ws_col;
  return true;
}

void stub_tty_raw(void) {
  struct termios raw;
  /* The keys come from stdin: its terminal is the one to set. */
  int fd = isatty(0) ? 0 : first_tty();
  if (stub_raw_fd >= 0 || fd < 0 || tcgetattr(fd, &stub_saved) != 0)
    return;
  raw = stub_saved;
  cfmakeraw(&raw);
  if (tcsetattr(fd, TCSANOW, &raw) == 0)
    stub_raw_fd = fd;
  stub_signals_catch_winch();
}

void stub_tty_restore(void) {
  if (stub_raw_fd < 0)
    return;
  tcsetattr(stub_raw_fd, TCSANOW, &stub_saved);
  stub_raw_fd = -1;
}

void stub_tty_resized(stub *st) {
  sb_msg m;
  memset(&m, 0, sizeof m);
  m.type = SB_MSG_WINSIZE;
  if (stub_tty_size(&m.u.winsize))
    stub_bridge_push_msg(&st->br, &m);
}
