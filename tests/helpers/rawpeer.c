/* rawpeer MODE: a hostile or broken peer. Connects to the bridge named by the
 * SOCKETBRIDGE_* environment, misbehaves as MODE says, and prints what the
 * supervisor answered: the reject reason ("bad_token"), "welcome", or
 * "closed" when the connection ended without a reject. Exits 0 when it got
 * an answer, 1 on its own failure.
 *
 * Modes: badtoken, badversion, oversize, silent, garbage, datafirst,
 * hellotwice, badjson, unknownkind. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sb_proto.h"

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
      }
      sb_msg_free(&m);
    }
  }
  if (!done)
    printf("%s\n", what);
  sb_decoder_free(&d);
  return 0;
}

int main(int argc, char **argv) {
  sb_config cfg;
  sb_diag diag;
  if (argc != 2 || sb_config_from_env(NULL, &cfg, &diag) != 0)
    return 1;
  int fd = dial(&cfg);
  if (fd < 0)
    return 1;
  const char *mode = argv[1];
  static const char other[] =
      "0000000000000000000000000000000000000000000000000000000000000000";
  if (strcmp(mode, "badtoken") == 0) {
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, other);
  } else if (strcmp(mode, "badversion") == 0) {
    send_hello(fd, &cfg, 99, cfg.token);
  } else if (strcmp(mode, "oversize") == 0) {
    uint8_t hdr[SB_FRAME_HEADER];
    sb_frame_header(hdr, SB_KIND_CONTROL, cfg.max_bytes); /* length max+1 */
    send_all(fd, hdr, sizeof hdr);
  } else if (strcmp(mode, "silent") == 0) {
    /* Says nothing: the handshake timeout must end it. */
  } else if (strcmp(mode, "garbage") == 0) {
    static const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(fd, junk, sizeof junk - 1);
  } else if (strcmp(mode, "datafirst") == 0) {
    send_frame(fd, SB_KIND_STDIN, "hi", 2);
  } else if (strcmp(mode, "hellotwice") == 0) {
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, cfg.token);
    send_hello(fd, &cfg, SB_PROTOCOL_VERSION, cfg.token);
  } else if (strcmp(mode, "badjson") == 0) {
    send_frame(fd, SB_KIND_CONTROL, "{\"type\":", 8);
  } else if (strcmp(mode, "unknownkind") == 0) {
    send_frame(fd, 9, "x", 1);
  } else {
    return 1;
  }
  int r = report(fd);
  close(fd);
  sb_config_free(&cfg);
  return r;
}
