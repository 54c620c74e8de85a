/* SPDX-License-Identifier: MIT */
/* rawpeer MODE: a hostile or broken peer. Connects to the bridge named by the
 * SOCKETBRIDGE_* environment, misbehaves as MODE says, and prints what the
 * supervisor answered: the reject reason ("bad_token"), "welcome", or
 * "closed" when the connection ended without a reject. Exits 0 when it got
 * an answer, 1 on its own failure.
 *
 * Modes: badtoken, badversion, oversize, silent, garbage, datafirst,
 * hellotwice, badjson, unknownkind (datafirst and unknownkind send a valid
 * hello as a stdin frame, or as a frame of kind 9).
 *
 * More modes, for the hostile tests:
 * - envtoken: a valid hello presenting $RAWPEER_TOKEN (a revoked token...).
 * - shorttoken: a hello whose token is ours less its last hex digit.
 * - zerolen: a frame header of length 0.
 * - maxlen: a frame header of length 2^32-1.
 * - badutf8: a hello, otherwise valid, with an overlong UTF-8 form in argv.
 * - deepjson: a hello, otherwise valid, with a member nested 10,000 deep.
 * - flood: 100 MB of pseudo-random bytes as fast as the socket takes them
 *   (stops at the first failed send), then the answer; "sent N sndbuf M" on
 *   stderr: bytes the socket took, and its SO_SNDBUF (what can be queued in
 *   the kernel beyond what the supervisor read).
 * - drip: a valid hello, one byte every 100 ms (at most 50 bytes, then
 *   waits), answered as soon as the supervisor says anything.
 * - deaf: a valid hello, then never reads its socket; exits 0 after 60 s
 *   (the test kills it first).
 * - churn: connects and closes $RAWPEER_COUNT times (at most 100,000, within
 *   30 s times SB_TEST_TIMEOUT_SCALE) as fast as it can, every other one
 *   with a reset (SO_LINGER 0); prints "churned N".
 * - stalled: opens $RAWPEER_COUNT connections (at most 1000) and prints
 *   "connected"; waits for a line on stdin; sends a valid hello on each and
 *   prints "sent"; then prints the answer of each, one a line (the test
 *   stalls the supervisor's loop between the two).
 * - hog: opens $RAWPEER_COUNT connections (at most 1000), no token, and on
 *   each sends all but the last byte of a control frame of max_bytes, round
 *   robin, as far as the supervisor reads; prints "stalled N" (bytes the
 *   sockets took) once no socket took a byte for 1 s, then "closed" once
 *   the supervisor has closed them all. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <poll.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"
#include "stream.h"

static int dial(const sb_config *cfg) {
  int fd;
  if (cfg->socket_path[0]) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", cfg->socket_path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
      return -1;
    return fd;
  }
  struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(cfg->port)};
  struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(cfg->port)};
  if (inet_pton(AF_INET, cfg->host, &s4.sin_addr) == 1) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&s4, sizeof s4) != 0)
      return -1;
    return fd;
  }
  if (inet_pton(AF_INET6, cfg->host, &s6.sin6_addr) != 1)
    return -1;
  fd = socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&s6, sizeof s6) != 0)
    return -1;
  return fd;
}

static int send_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return -1; /* the supervisor may close first: that is an answer too */
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

static int send_hello(int fd, const sb_config *cfg, int version, const char *token) {
  static char *argv[] = {"rawpeer", NULL};
  static char *env[] = {"RAWPEER=1", NULL};
  sb_msg m = {.type = SB_MSG_HELLO};
  m.u.hello.version = version;
  m.u.hello.min_version = version;
  snprintf(m.u.hello.token, sizeof m.u.hello.token, "%s", token);
  m.u.hello.pid = getpid();
  m.u.hello.ppid = getppid();
  m.u.hello.argv = (sb_strv){argv, 1};
  m.u.hello.env = (sb_strv){env, 1};
  uint8_t *frame;
  size_t len;
  if (sb_msg_encode(&m, cfg->max_bytes, &frame, &len) != 0)
    return -1;
  int r = send_all(fd, frame, len);
  free(frame);
  return r;
}

static int send_frame(int fd, int kind, const void *payload, uint32_t len) {
  uint8_t hdr[SB_FRAME_HEADER];
  sb_frame_header(hdr, (sb_kind)kind, len);
  if (send_all(fd, hdr, sizeof hdr) != 0)
    return -1;
  return len ? send_all(fd, payload, len) : 0;
}

/* Reads frames until a control message or the end; prints what it was. */
static int report(int fd) {
  sb_decoder d;
  sb_decoder_init(&d, 0);
  uint8_t buf[4096];
  const char *what = "closed";
  int done = 0;
  while (!done) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    const uint8_t *p = buf;
    size_t left = (size_t)n;
    sb_frame f;
    while (!done && sb_decoder_next(&d, &p, &left, &f, NULL) > 0) {
      sb_msg m;
      if (f.kind != SB_KIND_CONTROL || sb_msg_parse(f.data, f.len, &m, NULL) != 0)
        continue;
      if (m.type == SB_MSG_REJECT) {
        printf("%s\n", sb_reason_name(m.u.reject.reason));
        done = 1;
      } else if (m.type == SB_MSG_WELCOME) {
        what = "welcome";
      } else if (m.type == SB_MSG_EXIT) {
        done = 2; /* the call is over: no need to wait for the close */
      }
      sb_msg_free(&m);
    }
  }
  if (done != 1)
    printf("%s\n", what);
  sb_decoder_free(&d);
  return 0;
}

/* A hello built by hand, for what the encoder refuses to make: the token as
 * given, argv[0] as given (raw bytes), and an extra member "x" (raw JSON, or
 * NULL). Returns the frame (header included); the caller frees. */
static uint8_t *raw_hello(const char *token, const char *arg0, const char *extra,
                          size_t *len) {
  size_t cap = 1024 + strlen(token) + strlen(arg0) + (extra ? strlen(extra) : 0);
  uint8_t *f = malloc(cap);
  if (!f)
    return NULL;
  int n = snprintf((char *)f + SB_FRAME_HEADER, cap - SB_FRAME_HEADER,
                   "{\"type\":\"hello\",\"version\":%d,\"token\":\"%s\",\"pid\":%d,"
                   "\"ppid\":%d,\"argv\":[\"%s\"],\"env\":[\"RAWPEER=1\"],\"cwd\":null,"
                   "\"exe\":null,\"tty\":{\"stdin\":false,\"stdout\":false,"
                   "\"stderr\":false}%s%s}",
                   SB_PROTOCOL_VERSION, token, (int)getpid(), (int)getppid(), arg0,
                   extra ? ",\"x\":" : "", extra ? extra : "");
  if (n < 0 || (size_t)n >= cap - SB_FRAME_HEADER) {
    free(f);
    return NULL;
  }
  sb_frame_header(f, SB_KIND_CONTROL, (uint32_t)n);
  *len = SB_FRAME_HEADER + (size_t)n;
  return f;
}

static int send_raw_hello(int fd, const char *token, const char *arg0,
                          const char *extra) {
  size_t len;
  uint8_t *f = raw_hello(token, arg0, extra, &len);
  if (!f)
    return -1;
  int r = send_all(fd, f, len);
  free(f);
  return r;
}

/* A valid hello with our token, framed as another kind: only the kind is
 * wrong, so a server that skipped the kind check would welcome it. */
static int send_hello_as_kind(int fd, const char *token, sb_kind kind) {
  size_t len;
  uint8_t *f = raw_hello(token, "rawpeer", NULL, &len);
  if (!f)
    return -1;
  sb_frame_header(f, kind, (uint32_t)(len - SB_FRAME_HEADER));
  int r = send_all(fd, f, len);
  free(f);
  return r;
}

static int send_deep(int fd, const sb_config *cfg) {
  enum { DEPTH = 10000 };
  char *nest = malloc(2 * DEPTH + 1);
  if (!nest)
    return -1;
  memset(nest, '[', DEPTH);
  memset(nest + DEPTH, ']', DEPTH);
  nest[2 * DEPTH] = '\0';
  int r = send_raw_hello(fd, cfg->token, "rawpeer", nest);
  free(nest);
  return r;
}

static void send_flood(int fd) {
  static uint8_t buf[1 << 16];
  const uint64_t total = 100ull * 1000 * 1000;
  uint64_t sent = 0;
  tstream g;
  tstream_init(&g, 100);
  while (sent < total) {
    size_t n = total - sent < sizeof buf ? (size_t)(total - sent) : sizeof buf;
    tstream_fill(&g, buf, n);
    if (send_all(fd, buf, n) != 0)
      break;
    sent += n;
  }
  int sndbuf = 0;
  socklen_t optlen = sizeof sndbuf;
  getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &optlen);
  fprintf(stderr, "sent %llu sndbuf %d\n", (unsigned long long)sent, sndbuf);
}

static void drip(int fd, const sb_config *cfg) {
  size_t len;
  uint8_t *f = raw_hello(cfg->token, "rawpeer", NULL, &len);
  if (!f)
    return;
  for (size_t i = 0; i < len && i < 50; i++) {
    if (send_all(fd, f + i, 1) != 0)
      break;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 100) != 0)
      break; /* the supervisor said something (or closed): report it */
  }
  free(f);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int churn(const sb_config *cfg) {
  const char *s = getenv("RAWPEER_COUNT");
  long want = s ? atol(s) : 0, done = 0;
  if (want <= 0 || want > 100000)
    return 1;
  /* Bounded, so a slow server cannot hang the test; slower builds
   * (valgrind) scale it as the harness's deadlines. */
  const char *scale = getenv("SB_TEST_TIMEOUT_SCALE");
  double limit = 30.0 * (scale != NULL && atof(scale) > 1 ? atof(scale) : 1.0);
  double start = now_s();
  for (; done < want && now_s() - start < limit; done++) {
    int fd = dial(cfg);
    if (fd < 0)
      return 1;
    if (done % 2) {
      struct linger lg = {1, 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
  }
  printf("churned %ld\n", done);
  return 0;
}

/* Connections first, hellos on a cue: so that the hellos arrive while the
 * supervisor's loop is stalled, after it armed their handshake timers. */
static int stalled(const sb_config *cfg) {
  enum { MAX_FDS = 1000 };
  static int fds[MAX_FDS];
  const char *s = getenv("RAWPEER_COUNT");
  long n = s ? atol(s) : 0;
  char line[16];
  if (n <= 0 || n > MAX_FDS)
    return 1;
  for (long i = 0; i < n; i++)
    if ((fds[i] = dial(cfg)) < 0)
      return 1;
  printf("connected\n");
  fflush(stdout);
  if (fgets(line, sizeof line, stdin) == NULL)
    return 1;
  for (long i = 0; i < n; i++)
    if (send_hello(fds[i], cfg, SB_PROTOCOL_VERSION, cfg->token) != 0)
      return 1;
  printf("sent\n");
  fflush(stdout);
  for (long i = 0; i < n; i++) {
    report(fds[i]);
    close(fds[i]);
  }
  return 0;
}

/* Many tokenless peers, each holding a control frame nearly whole. */
static int hog(const sb_config *cfg) {
  enum { MAX_FDS = 1000 };
  static struct pollfd pfd[MAX_FDS];
  static size_t sent[MAX_FDS];
  static uint8_t body[64 * 1024];
  const char *s = getenv("RAWPEER_COUNT");
  long n = s ? atol(s) : 0;
  size_t total = SB_FRAME_HEADER + cfg->max_bytes - 2; /* header + body - 1 */
  uint64_t took = 0;
  uint8_t hdr[SB_FRAME_HEADER];
  if (n <= 0 || n > MAX_FDS)
    return 1;
  sb_frame_header(hdr, SB_KIND_CONTROL, cfg->max_bytes - 1);
  memset(body, '[', sizeof body); /* JSON that never ends; no token */
  for (long i = 0; i < n; i++) {
    if ((pfd[i].fd = dial(cfg)) < 0)
      return 1;
    fcntl(pfd[i].fd, F_SETFL, O_NONBLOCK);
  }
  bool reported = false;
  for (;;) {
    long open = 0;
    for (long i = 0; i < n; i++) {
      pfd[i].events = 0;
      if (pfd[i].fd < 0)
        continue;
      open++;
      pfd[i].events = POLLIN | (sent[i] < total ? POLLOUT : 0);
    }
    if (open == 0)
      break;
    int r = poll(pfd, (nfds_t)n, reported ? -1 : 1000);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == 0 && !reported) {
      printf("stalled %llu\n", (unsigned long long)took);
      fflush(stdout);
      reported = true;
      continue;
    }
    for (long i = 0; i < n; i++) {
      if (pfd[i].fd < 0 || pfd[i].revents == 0)
        continue;
      if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        /* An answer (a reject) or the end: this one is done. */
        close(pfd[i].fd);
        pfd[i].fd = -1;
        continue;
      }
      const uint8_t *p = sent[i] < SB_FRAME_HEADER ? hdr + sent[i] : body;
      size_t len = sent[i] < SB_FRAME_HEADER       ? SB_FRAME_HEADER - sent[i]
                   : total - sent[i] < sizeof body ? total - sent[i]
                                                   : sizeof body;
      ssize_t k = send(pfd[i].fd, p, len, MSG_NOSIGNAL);
      if (k > 0) {
        sent[i] += (size_t)k;
        took += (uint64_t)k;
      } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
        close(pfd[i].fd);
        pfd[i].fd = -1;
      }
    }
  }
  if (!reported)
    printf("stalled %llu\n", (unsigned long long)took);
  printf("closed\n");
  return 0;
}

int main(int argc, char **argv) {
  sb_config cfg;
  sb_diag diag;
  if (argc != 2 || sb_config_from_env(NULL, &cfg, &diag) != 0)
    return 1;
  const char *mode = argv[1];
  if (strcmp(mode, "churn") == 0 || strcmp(mode, "stalled") == 0 ||
      strcmp(mode, "hog") == 0) {
    int r = mode[0] == 'c' ? churn(&cfg) : mode[0] == 's' ? stalled(&cfg) : hog(&cfg);
    sb_config_free(&cfg);
    return r;
  }
  int fd = dial(&cfg);
  if (fd < 0)
    return 1;
  static const char other[] =
      "0000000000000000000000000000000000000000000000000000000000000000";
  if (strcmp(mode, "badtoken") == 0) {
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, other);
  } else if (strcmp(mode, "badversion") == 0) {
    send_hello(fd, &cfg, 99, cfg.token);
  } else if (strcmp(mode, "oversize") == 0) {
    /* length max+1, and a first body byte that is not the token prefix:
     * only a hello that begins with a live token may exceed max_bytes. */
    uint8_t hdr[SB_FRAME_HEADER + 1];
    sb_frame_header(hdr, SB_KIND_CONTROL, cfg.max_bytes);
    hdr[SB_FRAME_HEADER] = '[';
    send_all(fd, hdr, sizeof hdr);
  } else if (strcmp(mode, "silent") == 0) {
    /* Says nothing: the handshake timeout must end it. */
  } else if (strcmp(mode, "garbage") == 0) {
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, junk, sizeof junk - 1);
  } else if (strcmp(mode, "datafirst") == 0) {
    send_hello_as_kind(fd, cfg.token, SB_KIND_STDIN);
  } else if (strcmp(mode, "hellotwice") == 0) {
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, cfg.token);
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, cfg.token);
  } else if (strcmp(mode, "badjson") == 0) {
    send_frame(fd, SB_KIND_CONTROL, "{\"type\":", 8);
  } else if (strcmp(mode, "unknownkind") == 0) {
    send_hello_as_kind(fd, cfg.token, (sb_kind)9);
  } else if (strcmp(mode, "envtoken") == 0) {
    const char *t = getenv("RAWPEER_TOKEN");
    if (!t)
      return 1;
    send_raw_hello(fd, t, "rawpeer", NULL);
  } else if (strcmp(mode, "shorttoken") == 0) {
    char t[SB_TOKEN_HEX + 1];
    snprintf(t, sizeof t, "%s", cfg.token);
    t[SB_TOKEN_HEX - 1] = '\0';
    send_raw_hello(fd, t, "rawpeer", NULL);
  } else if (strcmp(mode, "zerolen") == 0) {
    static const uint8_t zero[4] = {0, 0, 0, 0};
    send_all(fd, zero, sizeof zero);
  } else if (strcmp(mode, "maxlen") == 0) {
    static const uint8_t max[5] = {0xff, 0xff, 0xff, 0xff, SB_KIND_CONTROL};
    send_all(fd, max, sizeof max);
  } else if (strcmp(mode, "badutf8") == 0) {
    send_raw_hello(fd, cfg.token, "raw\xc0\xafpeer", NULL);
  } else if (strcmp(mode, "deepjson") == 0) {
    send_deep(fd, &cfg);
  } else if (strcmp(mode, "flood") == 0) {
    send_flood(fd);
  } else if (strcmp(mode, "drip") == 0) {
    drip(fd, &cfg);
  } else if (strcmp(mode, "deaf") == 0) {
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, cfg.token);
    poll(NULL, 0, 60000); /* never reads; the test ends it */
    printf("deaf\n");
    return 0;
  } else {
    return 1;
  }
  int r = report(fd);
  close(fd);
  sb_config_free(&cfg);
  return r;
}
