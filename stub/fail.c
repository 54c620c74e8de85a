/* SPDX-License-Identifier: MIT */
/* fail.c - the stub's only output of its own: one line on stderr, then an
 * exit code (125, or 126/127 when the program of an exec or run cannot be
 * started).
 *
 * Callers never pass the token; the line is built here so that whatever a
 * caller formats (including text that came from the supervisor) ends up as
 * exactly one line. */
#include "stub.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#define STUB_PREFIX "socketbridge-stub: "

/* Control characters (newlines above all) would split or garble the line. */
static void one_line(char *s) {
  for (; *s != '\0'; s++)
    if ((unsigned char)*s < 0x20 || *s == 0x7f)
      *s = ' ';
}

/* Writes the line without ever blocking for more than STUB_FAIL_WRITE_MS: a
 * stub that fails because its bridge is gone must exit even when nobody
 * reads its stderr. The fd is set up afresh, as in the relay, because fail
 * may be called before or after the relay set up its own. */
static void write_line(const char *p, size_t len) {
  stub_fd err;
  int64_t deadline = stub_now_ms() + STUB_FAIL_WRITE_MS;
  stub_fd_setup(&err, 2, true, false, -1);
  while (len > 0) {
    ssize_t n = stub_fd_write(&err, p, len);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n != -EAGAIN && n != -EINTR)
      break;
    struct pollfd pfd = {.fd = err.io, .events = POLLOUT};
    int left = stub_ms_left(deadline);
    if (left == 0 || poll(&pfd, 1, left) == 0)
      break;
  }
  if (err.io != err.fd && err.io >= 0)
    close(err.io);
}

void stub_say(const char *message) {
  char line[1024] = STUB_PREFIX;
  size_t n = strlen(line);
  /* Leave room for the newline; a longer message is cut. */
  sb__snprintf(line + n, sizeof line - n - 1, "%s", message);
  one_line(line);
  n = strlen(line);
  line[n++] = '\n';
  write_line(line, n);
}

_Noreturn void stub_fail_code(int code, const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  sb__vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  stub_tty_restore(); /* the line, and the shell after us, need a sane terminal */
  stub_say(message);
  _exit(code);
}
