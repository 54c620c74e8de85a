/* SPDX-License-Identifier: MIT */
/* floors.c - the raw floors: what this machine's kernel does for the same
 * job with no socketbridge code, no event loop and no protocol. Each one has
 * the shape of the figure it is the floor of. */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- stub-shaped cycle ------------------------------------------------------ */

#define TINY_TOKEN "5e0b7d1f3a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a5c7e9b2d4f6a8c0e1b"

/* A listener of the transport: TCP on 127.0.0.1 (kernel's port) or a Unix
 * socket in a fresh directory. Fills the BENCH_ADDR value. */
static int listen_on(int transport, char *addr, size_t addrsz, char *dir, size_t dirsz) {
  int fd;
  if (transport == BT_TCP) {
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0 ||
        getsockname(fd, (struct sockaddr *)&in, &len) < 0)
      b_die("tcp listener: %s", strerror(errno));
    snprintf(addr, addrsz, "tcp:%u", (unsigned)ntohs(in.sin_port));
    dir[0] = '\0';
  } else {
    struct sockaddr_un un;
    snprintf(dir, dirsz, "/tmp/sbbench.XXXXXX");
    if (mkdtemp(dir) == NULL)
      b_die("mkdtemp: %s", strerror(errno));
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    snprintf(un.sun_path, sizeof un.sun_path, "%s/sock", dir);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0)
      b_die("unix listener: %s", strerror(errno));
    snprintf(addr, addrsz, "unix:%s", un.sun_path);
  }
  if (listen(fd, 128) < 0)
    b_die("listen: %s", strerror(errno));
  return fd;
}

static void unlisten(int fd, const char *addr, const char *dir) {
  close(fd);
  if (dir[0] != '\0') {
    unlink(addr + 5);
    rmdir(dir);
  }
}

double floor_cycle_us(int transport, int n) {
  return floor_cycle_us_with(transport, n, BENCH_TINYSTUB);
}

double floor_cycle_us_with(int transport, int n, const char *tiny) {
  char addr[160], dir[64], addrvar[200];
  int l = listen_on(transport, addr, sizeof addr, dir, sizeof dir);
  snprintf(addrvar, sizeof addrvar, "BENCH_ADDR=%s", addr);

  /* The supervisor's environment plus the two variables, as a ticket's. */
  size_t ne = 0;
  while (environ[ne] != NULL)
    ne++;
  char **env = calloc(ne + 3, sizeof *env);
  if (env == NULL)
    b_die("out of memory");
  memcpy(env, environ, ne * sizeof *env);
  env[ne] = addrvar;
  env[ne + 1] = "BENCH_TOKEN=" TINY_TOKEN;

  char *args[] = {(char *)tiny, NULL};
  static const unsigned char reply[16] = {0,   0,   0,   12,  1,   'w',
                                          'e', 'l', 'c', 'o', 'm', 'e'};
  unsigned char hello[300];
  int warm = n / 10 + 2;
  uint64_t *ns = calloc((size_t)n, sizeof *ns);
  if (ns == NULL)
    b_die("out of memory");
  for (int i = 0; i < warm + n; i++) {
    uint64_t t0 = b_now_ns();
    pid_t pid;
    int e = posix_spawn(&pid, tiny, NULL, NULL, args, env);
    if (e != 0)
      b_die("posix_spawn: %s", strerror(e));
    int c;
    do
      c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
    while (c < 0 && errno == EINTR);
    if (c < 0)
      b_die("accept: %s", strerror(errno));
    if (transport == BT_TCP) {
      int one = 1;
      setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (b_read_full(c, hello, sizeof hello) != sizeof hello)
      b_die("tiny stub: short hello");
    if (hello[3] != (unsigned char)(sizeof hello - 4) ||
        memcmp(hello + 5, TINY_TOKEN, sizeof TINY_TOKEN - 1) != 0)
      b_die("tiny stub: bad hello");
    b_write_full(c, reply, sizeof reply);
    b_wait_ok(pid, "tiny stub");
    close(c);
    if (i >= warm)
      ns[i - warm] = b_now_ns() - t0;
  }
  free(env);
  unlisten(l, addr, dir);
  double us = b_median_us(ns, n);
  free(ns);
  return us;
}

/* ---- streams ---------------------------------------------------------------- */

/* Relay B of the relay floors: copies in to out, 64 KiB at a time, until
 * in ends. */
_Noreturn static void relay_pipe(int in, int out) {
  static char buf[BENCH_CHUNK];
  for (;;) {
    ssize_t r = read(in, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    b_write_full(out, buf, (size_t)r);
  }
  _exit(0);
}

/* Reads fd to its end in 64 KiB reads; exits 0 when it got `total` bytes. */
_Noreturn static void discard_all(int fd, size_t total) {
  static char buf[BENCH_CHUNK];
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    got += (size_t)r;
  }
  _exit(got == total ? 0 : 3);
}

static void write_chunks(int fd, size_t total) {
  static char buf[BENCH_CHUNK];
  memset(buf, 'x', sizeof buf);
  for (size_t sent = 0; sent < total; sent += sizeof buf)
    b_write_full(fd, buf, sizeof buf);
}

double floor_relay_gbs(int transport, size_t total) {
  int p[2], s[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    b_die("pipe: %s", strerror(errno));
  b_sock_pair(transport, s);
  pid_t c = fork();
  if (c < 0)
    b_die("fork: %s", strerror(errno));
  if (c == 0) { /* C: reads the socket, discards */
    close(p[0]);
    close(p[1]);
    close(s[0]);
    discard_all(s[1], total);
  }
  close(s[1]);
  pid_t b = fork();
  if (b < 0)
    b_die("fork: %s", strerror(errno));
  if (b == 0) { /* B: pipe -> socket */
    close(p[1]);
    relay_pipe(p[0], s[0]);
  }
  close(p[0]);
  close(s[0]);
  uint64_t t0 = b_now_ns();
  write_chunks(p[1], total); /* A */
  close(p[1]);
  b_wait_ok(b, "relay B");
  b_wait_ok(c, "relay C");
  uint64_t t1 = b_now_ns();
  return (double)total / (double)(t1 - t0);
}

/* Reads fd to its end in 64 KiB reads, writing each read to /dev/null (the
 * stub's stdout in the delegate figure); exits 0 when it got `total`. */
_Noreturn static void relay_to_null(int fd, size_t total) {
  static char buf[BENCH_CHUNK];
  size_t got = 0;
  int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null < 0)
    _exit(4);
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    b_write_full(null, buf, (size_t)r);
    got += (size_t)r;
  }
  _exit(got == total ? 0 : 3);
}

double floor_relay3_gbs(int transport, size_t total) {
  int p[2], s[2];
  if (pipe2(p, O_CLOEXEC) < 0)
    b_die("pipe: %s", strerror(errno));
  b_sock_pair(transport, s);
  pid_t c = fork();
  if (c < 0)
    b_die("fork: %s", strerror(errno));
  if (c == 0) { /* C: socket -> /dev/null */
    close(p[0]);
    close(p[1]);
    close(s[0]);
    relay_to_null(s[1], total);
  }
  close(s[1]);
  pid_t b = fork();
  if (b < 0)
    b_die("fork: %s", strerror(errno));
  if (b == 0) { /* B: pipe -> socket */
    close(p[1]);
    relay_pipe(p[0], s[0]);
  }
  close(p[0]);
  close(s[0]);
  /* A: the delegate figure's program itself, its stdout on the pipe. */
  char bytes[32];
  snprintf(bytes, sizeof bytes, "%zu", total);
  char *args[] = {BENCH_GEN, bytes, "0", NULL};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  pid_t a;
  uint64_t t0 = b_now_ns();
  int e = posix_spawn(&a, BENCH_GEN, &fa, NULL, args, environ);
  if (e != 0)
    b_die("posix_spawn %s: %s", BENCH_GEN, strerror(e));
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  b_wait_ok(a, "relay A (bench_gen)");
  b_wait_ok(b, "relay B");
  b_wait_ok(c, "relay C");
  uint64_t t1 = b_now_ns();
  return (double)total / (double)(t1 - t0);
}

double floor_stream_gbs(int transport, size_t total) {
  int s[2];
  b_sock_pair(transport, s);
  pid_t c = fork();
  if (c < 0)
    b_die("fork: %s", strerror(errno));
  if (c == 0) {
    close(s[0]);
    discard_all(s[1], total);
  }
  close(s[1]);
  uint64_t t0 = b_now_ns();
  write_chunks(s[0], total);
  close(s[0]);
  b_wait_ok(c, "stream reader");
  uint64_t t1 = b_now_ns();
  return (double)total / (double)(t1 - t0);
}

/* ---- round trips ------------------------------------------------------------ */

/* Relays a -> b and b -> a (both directions, whatever is there) until a
 * ends; the shape of the stub's loop, with one poll() per wakeup. */
_Noreturn static void relay_both(int in, int out, int sock) {
  char buf[BENCH_CHUNK];
  struct pollfd p[2] = {{.fd = in, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
  for (;;) {
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      _exit(4);
    }
    if (p[0].revents != 0) {
      ssize_t r = read(in, buf, sizeof buf);
      if (r <= 0)
        _exit(0);
      b_write_full(sock, buf, (size_t)r);
    }
    if (p[1].revents != 0) {
      ssize_t r = read(sock, buf, sizeof buf);
      if (r <= 0)
        _exit(0);
      b_write_full(out, buf, (size_t)r);
    }
  }
}

double floor_rtt_us(int transport, int n, bool with_pipes) {
  int s[2], up[2], down[2];
  b_pinger pg = {.n = n, .warm = n / 10 + 100};
  pid_t r = -1;
  b_sock_pair(transport, s);
  if (with_pipes) {
    if (pipe2(up, O_CLOEXEC) < 0 || pipe2(down, O_CLOEXEC) < 0)
      b_die("pipe: %s", strerror(errno));
    r = fork();
    if (r < 0)
      b_die("fork: %s", strerror(errno));
    if (r == 0) {
      close(up[1]);
      close(down[0]);
      close(s[0]);
      relay_both(up[0], down[1], s[1]);
    }
    close(up[0]);
    close(down[1]);
    close(s[1]);
    pg.wr = up[1];
    pg.rd = down[0];
  } else {
    pg.wr = s[1];
    pg.rd = s[1];
  }

  pthread_t th;
  if (pthread_create(&th, NULL, b_ping, &pg) != 0)
    b_die("pthread_create");
  /* The echo (the supervisor's place), on this thread. */
  unsigned char buf[16];
  for (;;) {
    ssize_t k = read(s[0], buf, sizeof buf);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      break;
    b_write_full(s[0], buf, (size_t)k);
  }
  pthread_join(th, NULL);
  close(s[0]);
  if (with_pipes) {
    close(down[0]);
    b_wait_ok(r, "rtt relay");
  }
  return (double)pg.ns / n / 1e3;
}
