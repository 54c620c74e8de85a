/* SPDX-License-Identifier: MIT */
/* peek.c - telling a lost bridge from a finished one while fd 1/2 is full.
 *
 * The stub reads the socket only as fast as it writes fds 1/2. When the
 * supervisor goes away while the stub waits for a slow reader of fd 1, two
 * cases look the same at the socket (POLLHUP/POLLRDHUP): the supervisor
 * died (the stub must fail now, not when the reader wakes up, maybe never),
 * or it sent `exit` and closed (the stub must write everything, then exit
 * as told). The difference is in the bytes not yet decoded. Once the peer
 * has closed nothing more can arrive, so those bytes are bounded by the
 * socket's receive buffer: we peek at them (without consuming) and look
 * for an `exit` control frame. To know where frames start in them we keep
 * our own copy of the decoder's position (stub_track), fed with exactly
 * the bytes the decoder consumed. */
#include "stub.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* Moves over the rest of the current header or body, at most n bytes.
 * Returns the bytes used. */
static size_t track_step(stub_track *t, const uint8_t *p, size_t n) {
  if (t->hdr_have < SB_FRAME_HEADER) {
    size_t k = SB_FRAME_HEADER - t->hdr_have;
    if (k > n)
      k = n;
    memcpy(t->hdr + t->hdr_have, p, k);
    t->hdr_have += k;
    if (t->hdr_have == SB_FRAME_HEADER) {
      uint32_t length = (uint32_t)t->hdr[0] << 24 | (uint32_t)t->hdr[1] << 16 |
                        (uint32_t)t->hdr[2] << 8 | t->hdr[3];
      t->body_left = length > 0 ? length - 1 : 0;
      if (t->body_left == 0)
        t->hdr_have = 0; /* an empty frame ends with its header */
    }
    return k;
  }
  size_t k = n < t->body_left ? n : t->body_left;
  t->body_left -= (uint32_t)k;
  if (t->body_left == 0)
    t->hdr_have = 0;
  return k;
}

void stub_track_feed(stub_track *t, const uint8_t *p, size_t n) {
  while (n > 0) {
    size_t k = track_step(t, p, n);
    p += k;
    n -= k;
  }
}

static bool is_exit(const uint8_t *payload, size_t len) {
  sb_msg m;
  bool yes = sb_msg_parse(payload, len, &m, NULL) == 0 && m.type == SB_MSG_EXIT;
  sb_msg_free(&m);
  return yes;
}

/* Scans buf for a whole control frame that is an exit, starting at t. */
static bool scan_for_exit(stub_track t, const uint8_t *buf, size_t n) {
  /* In the middle of a control frame, its start is out of sight (in the
   * decoder): it may be the exit. Only possible if the decoder stopped
   * inside one, which it does not do while a data piece is pending. */
  if (t.hdr_have == SB_FRAME_HEADER && t.hdr[4] == SB_KIND_CONTROL)
    return true;
  size_t pos = 0;
  while (pos < n) {
    bool in_header = t.hdr_have < SB_FRAME_HEADER;
    pos += track_step(&t, buf + pos, n - pos);
    if (in_header && t.hdr_have == SB_FRAME_HEADER && t.hdr[4] == SB_KIND_CONTROL &&
        t.body_left <= n - pos && is_exit(buf + pos, t.body_left))
      return true;
  }
  return false;
}

bool stub_exit_ahead(const stub_bridge *br) {
  int queued = 0;
  if (ioctl(br->sock, FIONREAD, &queued) < 0 || queued < 0)
    queued = 0;
  size_t total = br->in_len + (size_t)queued;
  if (total == 0)
    return false;
  uint8_t *buf = malloc(total);
  if (buf == NULL)
    return true; /* cannot tell: keep writing rather than drop an exit */
  memcpy(buf, br->in, br->in_len);
  size_t have = br->in_len;
  if (queued > 0) {
    ssize_t n;
    do
      n = recv(br->sock, buf + have, (size_t)queued, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
      have += (size_t)n;
  }
  bool yes = scan_for_exit(br->track, buf, have);
  free(buf);
  return yes;
}
