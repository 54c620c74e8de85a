/* SPDX-License-Identifier: MIT */
/* tinystub.c - the floor's stub: the least a stub must do. Connects to
 * BENCH_ADDR ("tcp:PORT" on 127.0.0.1, or "unix:PATH"), writes one 300-byte
 * frame holding BENCH_TOKEN, reads the 16-byte reply, exits 0 when it is the
 * expected one. Linked statically: its exec costs what a stub's could at
 * best. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define HELLO_LEN 300
#define REPLY_LEN 16

static int dial(const char *addr) {
  int fd;
  if (strncmp(addr, "tcp:", 4) == 0) {
    struct sockaddr_in in;
    int one = 1;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    in.sin_port = htons((uint16_t)atoi(addr + 4));
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&in, sizeof in) < 0)
      return -1;
    return fd;
  }
  if (strncmp(addr, "unix:", 5) == 0) {
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strncpy(un.sun_path, addr + 5, sizeof un.sun_path - 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof un) < 0)
      return -1;
    return fd;
  }
  return -1;
}

int main(void) {
  const char *addr = getenv("BENCH_ADDR"), *token = getenv("BENCH_TOKEN");
  unsigned char hello[HELLO_LEN], reply[REPLY_LEN];
  size_t have = 0, tlen;
  if (addr == NULL || token == NULL)
    return 2;
  int fd = dial(addr);
  if (fd < 0)
    return 3;
  /* u32 BE length | kind 1 | token | zeros */
  memset(hello, 0, sizeof hello);
  hello[2] = (HELLO_LEN - 4) >> 8;
  hello[3] = (HELLO_LEN - 4) & 0xff;
  hello[4] = 1;
  tlen = strlen(token);
  if (tlen > HELLO_LEN - 5)
    tlen = HELLO_LEN - 5;
  memcpy(hello + 5, token, tlen);
  if (write(fd, hello, sizeof hello) != (ssize_t)sizeof hello)
    return 4;
  while (have < sizeof reply) {
    ssize_t n = read(fd, reply + have, sizeof reply - have);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return 5;
    have += (size_t)n;
  }
  return reply[4] == 1 && memcmp(reply + 5, "welcome", 7) == 0 ? 0 : 6;
}
