/* SPDX-License-Identifier: MIT */
/* bridge.c - the socket to the supervisor: bytes in, decoded by lib/ in
 * place (data pieces point into our read buffer); frames out, gathered into
 * one sendmsg() without copying their payloads. */
#include "stub.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void stub_bridge_init(stub_bridge *br, int sock, uint32_t max_bytes) {
  memset(br, 0, sizeof *br);
  br->sock = sock;
  br->max_bytes = max_bytes;
  sb_decoder_init(&br->dec, max_bytes);
  /* exec and run carry a command line as long as the hello's. */
  sb_decoder_set_ctl_max(&br->dec, SB_CTL_MAX_BYTES);
  /* Page-aligned: the kernel copies into a buffer 16 bytes into a page
   * (where malloc puts it) at a third of the speed (measured:
   * docs/performance.md, delegate). Static: one per process, and a
   * mapping of its own would cost an mmap, and a page for its header, in
   * every stub; bss pages are faulted in only as data reaches them. */
  static uint8_t rbuf[STUB_RBUF_SIZE] __attribute__((aligned(4096)));
  br->rbuf = rbuf;
  br->in = br->rbuf;
}

int stub_bridge_next(stub_bridge *br, sb_frame *ev, sb_diag *diag) {
  const uint8_t *before = br->in;
  int r = sb_decoder_next(&br->dec, &br->in, &br->in_len, ev, diag);
  stub_track_feed(&br->track, before, (size_t)(br->in - before));
  return r;
}

ssize_t stub_bridge_recv(stub_bridge *br) {
  for (;;) {
    ssize_t n = recv(br->sock, br->rbuf, STUB_RBUF_SIZE, 0);
    if (n > 0) {
      br->in = br->rbuf;
      br->in_len = (size_t)n;
      return n;
    }
    if (n == 0) {
      br->rd_eof = true;
      return 0;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN)
      return -EAGAIN;
    br->rd_err = -errno;
    return br->rd_err;
  }
}

size_t stub_bridge_room(const stub_bridge *br) {
  return STUB_OUTQ_LEN - br->q_len;
}

/* The slot at the tail of the queue. A full queue is a bug of the relay,
 * which only reads what it has room to queue. */
static stub_outframe *push_slot(stub_bridge *br) {
  if (br->q_len == STUB_OUTQ_LEN)
    stub_fail("internal error: send queue full");
  stub_outframe *f = &br->q[(br->q_head + br->q_len) % STUB_OUTQ_LEN];
  br->q_len++;
  br->q_dirty = true;
  memset(f, 0, sizeof *f);
  return f;
}

void stub_bridge_push_data(stub_bridge *br, sb_kind kind, const uint8_t *payload,
                           size_t len) {
  if (br->wr_dead)
    return;
  stub_outframe *f = push_slot(br);
  sb_frame_header(f->hdr, kind, (uint32_t)len);
  f->iov[0] = (struct iovec){.iov_base = f->hdr, .iov_len = sizeof f->hdr};
  f->iov[1] = (struct iovec){.iov_base = (void *)(uintptr_t)payload, .iov_len = len};
  f->niov = len > 0 ? 2 : 1;
}

void stub_bridge_push_msg(stub_bridge *br, const sb_msg *m) {
  uint8_t *frame;
  size_t len;
  if (br->wr_dead)
    return;
  int r = sb_msg_encode(m, br->max_bytes, &frame, &len);
  if (r < 0)
    stub_fail("cannot encode %s: %s", sb_msg_type_name(m->type), sb_strerror(r));
  stub_outframe *f = push_slot(br);
  f->iov[0] = (struct iovec){.iov_base = frame, .iov_len = len};
  f->niov = 1;
  f->owned = frame;
}

static void pop(stub_bridge *br) {
  stub_outframe *f = &br->q[br->q_head];
  free(f->owned);
  f->owned = NULL;
  br->q_head = (br->q_head + 1) % STUB_OUTQ_LEN;
  br->q_len--;
}

/* Marks n bytes from the head of the queue as sent. */
static void consume(stub_bridge *br, size_t n) {
  while (br->q_len > 0) {
    stub_outframe *f = &br->q[br->q_head];
    for (int i = 0; i < f->niov && n > 0; i++) {
      size_t k = n < f->iov[i].iov_len ? n : f->iov[i].iov_len;
      f->iov[i].iov_base = (uint8_t *)f->iov[i].iov_base + k;
      f->iov[i].iov_len -= k;
      n -= k;
    }
    if (f->iov[f->niov - 1].iov_len > 0)
      return;
    pop(br);
  }
}

/* Gathers the unsent parts of every queued frame. */
static int gather(const stub_bridge *br, struct iovec *iov) {
  int n = 0;
  for (size_t i = 0; i < br->q_len; i++) {
    const stub_outframe *f = &br->q[(br->q_head + i) % STUB_OUTQ_LEN];
    for (int j = 0; j < f->niov; j++)
      if (f->iov[j].iov_len > 0)
        iov[n++] = f->iov[j];
  }
  return n;
}

/* Gives up sending: the queue is dropped, later frames are not queued. */
static void drop(stub_bridge *br) {
  br->wr_dead = true;
  while (br->q_len > 0)
    pop(br);
}

int stub_bridge_flush(stub_bridge *br) {
  br->q_dirty = false;
  while (br->q_len > 0 && !br->wr_dead) {
    struct iovec iov[2 * STUB_OUTQ_LEN];
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = iov;
    mh.msg_iovlen = (size_t)gather(br, iov);
    ssize_t n = sendmsg(br->sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      consume(br, (size_t)n);
      continue;
    }
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN)
      return -EAGAIN;
    /* The supervisor reads no more. Whether that is a lost bridge or a
     * finished one (it sent exit, then closed) the read side tells. */
    int err = -errno;
    drop(br);
    return err;
  }
  return 0;
}

void stub_bridge_drain(stub_bridge *br, int64_t deadline) {
  while (stub_bridge_flush(br) == -EAGAIN) {
    struct pollfd pfd = {.fd = br->sock, .events = POLLOUT};
    int left = stub_ms_left(deadline);
    if (left == 0 || (poll(&pfd, 1, left) < 0 && errno != EINTR))
      return;
  }
}
