/* SPDX-License-Identifier: MIT */
/* message_send.c - sb_send: the client side of side-band messages, for a
 * program in a child's tree. Blocking, on a socket of its own, with one
 * deadline for the whole exchange: connect, `send`, then one frame back
 * (reply or reject). The token goes into the send frame only, and is wiped
 * from it and from the config as soon as the frame is built. */
#include "sb_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before deadline for poll(): -1 without one. */
static int ms_left(int64_t deadline) {
  int64_t left;
  if (deadline < 0)
    return -1;
  left = deadline - now_ms();
  if (left <= 0)
    return 0;
  return left > INT_MAX ? INT_MAX : (int)left;
}

/* Waits for events on fd; 0, -ETIMEDOUT or a negative errno. */
static int wait_fd(int fd, short events, int64_t deadline) {
  struct pollfd pfd = {.fd = fd, .events = events};
  int r;
  do
    r = poll(&pfd, 1, ms_left(deadline));
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return -errno;
  return r == 0 ? -ETIMEDOUT : 0;
}

/* A connected, non-blocking, close-on-exec socket to the supervisor. */
static int connect_to(const sb_config *cfg, int64_t deadline, sb_diag *diag) {
  struct sockaddr_storage ss;
  socklen_t sslen;
  int fd, err = 0, r;
  socklen_t elen = sizeof err;

  memset(&ss, 0, sizeof ss);
  if (cfg->socket_path[0] != '\0') {
    struct sockaddr_un *sa = (struct sockaddr_un *)&ss;
    sa->sun_family = AF_UNIX;
    memcpy(sa->sun_path, cfg->socket_path, strlen(cfg->socket_path) + 1);
    sslen = sizeof *sa;
  } else {
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->host, &in4->sin_addr) == 1) {
      in4->sin_family = AF_INET;
      in4->sin_port = htons(cfg->port);
      sslen = sizeof *in4;
    } else if (inet_pton(AF_INET6, cfg->host, &in6->sin6_addr) == 1) {
      in6->sin6_family = AF_INET6;
      in6->sin6_port = htons(cfg->port);
      sslen = sizeof *in6;
    } else {
      return sb_diag_set(diag, -EINVAL, "%s: not an address", SB_ENV_HOST);
    }
  }
  fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return sb_diag_set(diag, -errno, "cannot create a socket: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&ss, sslen) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR) {
      err = -errno;
      goto fail;
    }
    if ((err = wait_fd(fd, POLLOUT, deadline)) < 0)
      goto fail;
    r = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (r < 0 || err != 0) {
      err = r < 0 ? -errno : -err;
      goto fail;
    }
  }
  if (ss.ss_family != AF_UNIX) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
fail:
  close(fd);
  return sb_diag_set(diag, err, "cannot connect to the supervisor at %s: %s",
                     cfg->socket_path[0] != '\0' ? cfg->socket_path : cfg->host,
                     sb_strerror(err));
}

static int send_all(int fd, const uint8_t *p, size_t n, int64_t deadline, sb_diag *diag) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return sb_diag_set(diag, -errno, "sending to the supervisor: %s", strerror(errno));
    int r = wait_fd(fd, POLLOUT, deadline);
    if (r < 0)
      return sb_diag_set(diag, r, "sending to the supervisor: %s", sb_strerror(r));
  }
  return 0;
}

/* Reads until one whole control frame; *json is its payload, malloc'd and
 * NUL-terminated. */
static int recv_control(int fd, uint32_t max_bytes, int64_t deadline, char **json,
                        sb_diag *diag) {
  uint8_t buf[4096];
  sb_decoder dec;
  int r = 0;

  sb_decoder_init(&dec, max_bytes);
  while (*json == NULL && r == 0) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if ((r = wait_fd(fd, POLLIN, deadline)) < 0)
        sb_diag_set(diag, r, "no reply from the supervisor: %s", sb_strerror(r));
      continue;
    }
    if (n <= 0) {
      r = sb_diag_set(diag, SB_EPROTO,
                      "the supervisor closed the connection without a reply%s%s",
                      n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
      break;
    }
    const uint8_t *p = buf;
    size_t left = (size_t)n;
    sb_frame f;
    while (*json == NULL && (r = sb_decoder_next(&dec, &p, &left, &f, diag)) > 0) {
      if (f.kind != SB_KIND_CONTROL) {
        r = sb_diag_set(diag, SB_EPROTO,
                        "the supervisor sent a %s frame instead of a reply",
                        sb_kind_name((int)f.kind));
        break;
      }
      *json = malloc(f.len + 1);
      if (*json == NULL) {
        r = SB_ENOMEM;
        break;
      }
      memcpy(*json, f.data, f.len);
      (*json)[f.len] = '\0';
    }
    if (r > 0)
      r = 0;
  }
  sb_decoder_free(&dec);
  return *json != NULL ? 0 : (r < 0 ? r : SB_EPROTO);
}

/* The send frame's JSON; holds the token until the caller wipes it. Room
 * for all of it is allocated at once (a minified message is no longer than
 * the message): no buffer that grew leaves a copy of the token behind. */
static int build_send(const char *message, const sb_config *cfg, char **text,
                      sb_diag *diag) {
  size_t n = strlen(message), len;
  sb_jw w;
  sb_jw_init(&w, 0, 256 + n, cfg->max_bytes);
  sb_jw_open(&w, '{');
  sb_jw_key(&w, "type");
  sb_jw_str(&w, "send");
  sb_jw_key(&w, "version");
  sb_jw_int(&w, SB_PROTOCOL_VERSION);
  sb_jw_key(&w, "min_version");
  sb_jw_int(&w, SB_PROTOCOL_MIN_VERSION);
  sb_jw_key(&w, "token");
  sb_jw_str(&w, cfg->token);
  sb_jw_key(&w, "pid");
  sb_jw_int(&w, getpid());
  sb_jw_key(&w, "message");
  sb_jw_json(&w, (const uint8_t *)message, n);
  sb_jw_close(&w, '}');
  if (w.err < 0 && w.buf != NULL)
    explicit_bzero(w.buf, w.len);
  int r = sb_jw_end(&w, text, &len);
  if (r == SB_EMSGSIZE)
    return sb_diag_set(diag, SB_EMSGSIZE,
                       "the message is over the frame bound (%u bytes)",
                       (unsigned)cfg->max_bytes);
  return r;
}

/* A member's string, decoded (NULL when it is not a string). */
static char *string_at(const sb_jr *j, const sb_jr_index *ix, size_t k) {
  char *s = NULL;
  if (ix->count[k] > 0 && sb_jr_kind_at(j, ix->at[k]) == SB_JR_STRING)
    sb_jr_string(j, ix->at[k], &s);
  return s;
}

/* The answer: a reply's message, or a reject as an error. */
static int read_answer(const char *json, char **reply, sb_diag *diag) {
  static const char *const names[] = {"type", "message", "reason"};
  sb_jr j = {(const uint8_t *)json, strlen(json), NULL};
  sb_jr_index ix = {names, 3, {0}, {0}};
  char *type = NULL, *reason = NULL, *message = NULL;
  int r = SB_EPROTO;

  if (sb_jr_document(&j, &ix) == 0)
    type = string_at(&j, &ix, 0);
  if (type != NULL && strcmp(type, "reply") == 0 &&
      sb_jr_kind_at(&j, ix.at[1]) == SB_JR_OBJECT) {
    size_t end = ix.at[1], len;
    sb_jw w;
    sb_jr_skip(&j, &end);
    sb_jw_init(&w, 0, end - ix.at[1] + 1, end - ix.at[1] + 1);
    sb_jw_json(&w, j.p + ix.at[1], end - ix.at[1]);
    r = sb_jw_end(&w, reply, &len);
  } else if (type != NULL && strcmp(type, "reject") == 0) {
    reason = string_at(&j, &ix, 2);
    message = string_at(&j, &ix, 1);
    const char *why = reason != NULL ? reason : "?";
    sb_reason rs = sb_reason_from_name(why);
    r = rs == SB_REASON_BAD_TOKEN || rs == SB_REASON_NOT_ALLOWED ? SB_EACCES
        : rs == SB_REASON_TOO_LARGE                              ? SB_EMSGSIZE
                                                                 : SB_EPROTO;
    sb_diag_set(diag, r, "rejected by the supervisor: %s (%s)%s", why,
                message != NULL ? message : "",
                rs == SB_REASON_PROTOCOL ? "; a supervisor without side-band messages?"
                                         : "");
  } else {
    sb_diag_set(diag, r, "the supervisor answered something that is not a reply");
  }
  free(type);
  free(reason);
  free(message);
  return r;
}

/* True when message is one JSON object with a string "type". */
static bool is_message(const char *message) {
  static const char *const names[] = {"type"};
  sb_jr j = {(const uint8_t *)message, strlen(message), NULL};
  sb_jr_index ix = {names, 1, {0}, {0}};
  return sb_jr_document(&j, &ix) == 0 && ix.count[0] > 0 &&
         sb_jr_kind_at(&j, ix.at[0]) == SB_JR_STRING;
}

int sb_send(const char *message, int timeout_ms, char **reply, sb_diag *diag) {
  int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
  sb_config cfg;
  char *text = NULL, *answer = NULL;
  uint8_t hdr[SB_FRAME_HEADER];
  int fd = -1, r;

  if (reply == NULL || message == NULL)
    return sb_diag_set(diag, -EINVAL, "no message");
  *reply = NULL;
  if (!is_message(message))
    return sb_diag_set(diag, -EINVAL,
                       "the message is not a JSON object with a string "
                       "\"type\"");
  memset(&cfg, 0, sizeof cfg);
  if ((r = sb_config_from_env(NULL, &cfg, diag)) < 0 ||
      (r = sb_config_require(&cfg, diag)) < 0)
    goto out;
  r = build_send(message, &cfg, &text, diag);
  if (r < 0)
    goto out;
  if ((fd = connect_to(&cfg, deadline, diag)) < 0) {
    r = fd;
    goto out;
  }
  sb_frame_header(hdr, SB_KIND_CONTROL, (uint32_t)strlen(text));
  if ((r = send_all(fd, hdr, sizeof hdr, deadline, diag)) < 0 ||
      (r = send_all(fd, (const uint8_t *)text, strlen(text), deadline, diag)) < 0)
    goto out;
  if ((r = recv_control(fd, cfg.max_bytes, deadline, &answer, diag)) < 0)
    goto out;
  r = read_answer(answer, reply, diag);
out:
  if (fd >= 0)
    close(fd);
  if (text != NULL) {
    explicit_bzero(text, strlen(text));
    free(text);
  }
  free(answer);
  sb_config_free(&cfg);
  return r;
}
