/* SPDX-License-Identifier: MIT */
/* connect.c - the socket to the supervisor, and the clock its deadlines use.
 * A supervisor that cannot be reached is stub_unreachable (the fallback may
 * apply); failing to make a socket at all is the stub's own failure.
 *
 * Every socket is close-on-exec (nothing of the bridge leaks into a program
 * a later `exec` starts) and ends up non-blocking: it is ours alone, and the
 * relay never waits anywhere but in poll(). */
#include "stub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The system call, not the vDSO: the stub reads the clock a few times in
 * its life, and the vDSO's first use (finding the symbol, then faulting in
 * its code and data pages) costs more than all of them. */
int64_t stub_now_ms(void) {
  struct timespec ts;
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int stub_ms_left(int64_t deadline) {
  int64_t left = deadline - stub_now_ms();
  if (left <= 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int)left;
}

/* A Unix connect() waits only when the listener's backlog is full. So the
 * socket is made non-blocking, and almost always connects at once; only
 * after EAGAIN does a blocking connect() wait, bounded by SO_SNDTIMEO (a
 * non-blocking one could only be retried). */
static int connect_unix(const char *path, int64_t deadline) {
  struct sockaddr_un sa;
  uint32_t salen;
  /* A path, or "@name" for an abstract socket. */
  if (sb_unix_address(path, &sa, &salen) != 0)
    stub_unreachable("%s: not a path or @name that fits a Unix socket address",
                     SB_ENV_SOCKET);

  /* The path comes from the environment: quoted as every value a message
   * repeats is (a token pasted there shows as <hex digits>). */
  char shown[160];
  sb__quote(shown, sizeof shown, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    stub_fail("cannot create a Unix socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&sa, (socklen_t)salen) == 0)
    return fd;
  if (errno != EAGAIN)
    stub_unreachable("cannot connect to %s: %s", shown, strerror(errno));
  if (fcntl(fd, F_SETFL, 0) < 0)
    stub_fail("cannot make the socket blocking: %s", strerror(errno));
  for (;;) {
    int left = stub_ms_left(deadline);
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    if (left == 0)
      stub_unreachable("timed out connecting to %s", shown);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, (socklen_t)salen) == 0)
      break;
    if (errno == EINTR)
      continue; /* a caught signal; it is forwarded after welcome */
    if (errno == EAGAIN || errno == EINPROGRESS)
      stub_unreachable("timed out connecting to %s", shown);
    stub_unreachable("cannot connect to %s: %s", shown, strerror(errno));
  }
  if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
    stub_fail("cannot make the socket non-blocking: %s", strerror(errno));
  return fd;
}

/* Waits for a non-blocking TCP connect() to complete, before deadline. */
static int connect_wait(int fd, int64_t deadline) {
  struct pollfd pfd = {.fd = fd, .events = POLLOUT};
  int r, err = 0;
  socklen_t len = sizeof err;
  do
    r = poll(&pfd, 1, stub_ms_left(deadline));
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return errno;
  if (r == 0)
    return ETIMEDOUT;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
    return errno;
  return err;
}

static int connect_tcp(const char *host, uint16_t port, int64_t deadline) {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  } addr;
  socklen_t alen;
  memset(&addr, 0, sizeof addr);
  if (inet_pton(AF_INET, host, &addr.in4.sin_addr) == 1) {
    addr.in4.sin_family = AF_INET;
    addr.in4.sin_port = htons(port);
    alen = sizeof addr.in4;
  } else if (inet_pton(AF_INET6, host, &addr.in6.sin6_addr) == 1) {
    addr.in6.sin6_family = AF_INET6;
    addr.in6.sin6_port = htons(port);
    alen = sizeof addr.in6;
  } else {
    stub_unreachable("%s: not an IPv4 or IPv6 address", SB_ENV_HOST);
  }
  bool v6 = addr.sa.sa_family == AF_INET6;
  char name[80];
  sb__snprintf(name, sizeof name, "%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
               (unsigned)port);

  int fd = socket(addr.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    stub_fail("cannot create a TCP socket: %s", strerror(errno));
  /* Frames are small and interactive (a prompt, a keystroke, an exit):
   * Nagle's algorithm would hold them back waiting for an ACK. */
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int err = 0;
  if (connect(fd, &addr.sa, alen) < 0)
    err = errno == EINPROGRESS ? connect_wait(fd, deadline) : errno;
  if (err == ETIMEDOUT)
    stub_unreachable("timed out connecting to %s", name);
  if (err != 0)
    stub_unreachable("cannot connect to %s: %s", name, strerror(err));
  return fd;
}

int stub_connect(const sb_config *cfg, int64_t deadline) {
  if (cfg->socket_path[0] != '\0')
    return connect_unix(cfg->socket_path, deadline);
  return connect_tcp(cfg->host, cfg->port, deadline);
}
