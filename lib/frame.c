/* SPDX-License-Identifier: MIT */
/* frame.c - the frame codec: headers out, an incremental decoder in. */
#include "proto.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The largest control buffer a decoder keeps between frames. */
#define SB_CTL_KEEP 65536

int sb_kind_stream(int kind) {
  return (kind >= SB_KIND_STDIN && kind <= SB_KIND_STDERR) ? kind - SB_KIND_STDIN : -1;
}

int sb_stream_kind(int stream) {
  return (stream >= 0 && stream <= 2) ? stream + SB_KIND_STDIN : 0;
}

static const sb__named kind_names[] = {SB_KIND_MAP(SB__NAMED_ROW)};

const char *sb_kind_name(int kind) {
  const char *name = sb__name_of(kind_names, SB__NROWS(kind_names), kind);
  return name != NULL ? name : "unknown";
}

void sb_frame_header(uint8_t out[SB_FRAME_HEADER], sb_kind kind, uint32_t payload_len) {
  assert(payload_len < UINT32_MAX);
  uint32_t length = payload_len + 1;
  out[0] = (uint8_t)(length >> 24);
  out[1] = (uint8_t)(length >> 16);
  out[2] = (uint8_t)(length >> 8);
  out[3] = (uint8_t)length;
  out[4] = (uint8_t)kind;
}

void sb_decoder_init(sb_decoder *d, uint32_t max_bytes) {
  memset(d, 0, sizeof *d);
  d->max_bytes = max_bytes != 0 ? max_bytes : SB_DEFAULT_MAX_BYTES;
  d->ctl_max = d->max_bytes;
}

void sb_decoder_set_ctl_max(sb_decoder *d, uint32_t ctl_max) {
  d->ctl_max = ctl_max > d->max_bytes ? ctl_max : d->max_bytes;
}

size_t sb_decoder_held(const sb_decoder *d) {
  return d->ctl_cap;
}

void sb_decoder_free(sb_decoder *d) {
  free(d->ctl);
  d->ctl = NULL;
  d->ctl_len = d->ctl_cap = 0;
}

bool sb_decoder_idle(const sb_decoder *d) {
  return !d->failed && d->hdr_have == 0 && !d->in_body;
}

static uint32_t hdr_length(const sb_decoder *d) {
  return (uint32_t)d->hdr[0] << 24 | (uint32_t)d->hdr[1] << 16 |
         (uint32_t)d->hdr[2] << 8 | (uint32_t)d->hdr[3];
}

/* Checks what the header holds so far: the length once its 4 bytes are in
 * (so an oversize frame is refused before any byte of its body is read),
 * against the larger bound, then against its kind's once the kind is in.
 * The decoder keeps no error code: a failed decoder keeps the header that
 * failed, and this recomputes the same error (and diag) from it on every
 * later call. */
static int hdr_check(const sb_decoder *d, sb_diag *diag) {
  if (d->hdr_have >= 4) {
    uint32_t length = hdr_length(d);
    if (length == 0)
      return sb_diag_set(diag, SB_EBADMSG,
                         "frame length 0 (a frame holds at least its kind)");
    if (length > d->max_bytes && length > d->ctl_max)
      return sb_diag_set(diag, SB_EMSGSIZE, "frame length %u exceeds %s %u", length,
                         d->ctl_max > d->max_bytes ? "the control frame bound"
                                                   : "max_bytes",
                         d->ctl_max);
  }
  if (d->hdr_have == SB_FRAME_HEADER) {
    uint8_t kind = d->hdr[4];
    if (kind < SB_KIND_CONTROL || kind > SB_KIND_STDERR)
      return sb_diag_set(diag, SB_EBADMSG, "unknown frame kind %u (frame length %u)",
                         kind, hdr_length(d));
    if (kind != SB_KIND_CONTROL && hdr_length(d) > d->max_bytes)
      return sb_diag_set(diag, SB_EMSGSIZE, "frame length %u exceeds max_bytes %u",
                         hdr_length(d), d->max_bytes);
  }
  return 0;
}

static int fail(sb_decoder *d, int err) {
  d->failed = true;
  return err;
}

static void frame_done(sb_decoder *d) {
  d->in_body = false;
  d->hdr_have = 0;
}

/* Fills the header from the input. Returns 1 when it is whole and valid,
 * 0 when more input is needed, or an error. */
static int take_header(sb_decoder *d, const uint8_t **buf, size_t *len, sb_diag *diag) {
  while (d->hdr_have<SB_FRAME_HEADER && * len> 0) {
    d->hdr[d->hdr_have++] = **buf;
    (*buf)++;
    (*len)--;
    if (d->hdr_have >= 4) {
      int r = hdr_check(d, diag);
      if (r < 0)
        return fail(d, r);
    }
  }
  if (d->hdr_have < SB_FRAME_HEADER)
    return 0;
  d->kind = d->hdr[4];
  d->body_left = hdr_length(d) - 1;
  d->in_body = true;
  d->ctl_len = 0;
  /* The control buffer is kept for the next frame, unless one large frame
   * made it large: a long-lived connection should not hold max_bytes. */
  if (d->ctl_cap > SB_CTL_KEEP) {
    free(d->ctl);
    d->ctl = NULL;
    d->ctl_cap = 0;
  }
  return 1;
}

/* Makes room for n more bytes of the control frame being assembled. The
 * buffer grows with what arrives, not with what the header announces, so a
 * peer cannot make us allocate max_bytes by sending a header alone. Up to
 * SB_CTL_KEEP it doubles; past it, it grows to what is needed rounded up to
 * SB_CTL_KEEP (large blocks are remapped, not copied): either way n bytes
 * grow it by at most SB_DECODER_GROWTH(n), which a caller that bounds
 * memory relies on. */
static int ctl_reserve(sb_decoder *d, size_t n) {
  size_t need = d->ctl_len + n;
  if (need <= d->ctl_cap)
    return 0;
  size_t total = d->ctl_len + d->body_left;
  size_t cap = d->ctl_cap < 256 ? 256 : d->ctl_cap * 2;
  if (cap < need)
    cap = need;
  if (cap > SB_CTL_KEEP)
    cap = (need + SB_CTL_KEEP - 1) / SB_CTL_KEEP * SB_CTL_KEEP;
  if (cap > total)
    cap = total;
  uint8_t *p = realloc(d->ctl, cap);
  if (p == NULL)
    return SB_ENOMEM;
  d->ctl = p;
  d->ctl_cap = cap;
  return 0;
}

static void emit(sb_frame *out, uint8_t kind, const uint8_t *data, size_t len, bool end) {
  out->kind = (sb_kind)kind;
  out->data = data;
  out->len = len;
  out->end = end;
}

/* A data frame's payload goes out as it arrives, straight from the input. */
static int take_data(sb_decoder *d, const uint8_t **buf, size_t *len, sb_frame *out) {
  if (d->body_left == 0) {
    emit(out, d->kind, *buf, 0, true);
    frame_done(d);
    return 1;
  }
  if (*len == 0)
    return 0;
  size_t n = *len < d->body_left ? *len : d->body_left;
  d->body_left -= (uint32_t)n;
  emit(out, d->kind, *buf, n, d->body_left == 0);
  *buf += n;
  *len -= n;
  if (d->body_left == 0)
    frame_done(d);
  return 1;
}

/* A control frame goes out whole: straight from the input when it is all
 * there, else assembled in d->ctl. */
static int take_control(sb_decoder *d, const uint8_t **buf, size_t *len, sb_frame *out,
                        sb_diag *diag) {
  if (d->ctl_len == 0 && *len >= d->body_left) {
    size_t n = d->body_left;
    emit(out, d->kind, *buf, n, true);
    *buf += n;
    *len -= n;
    d->body_left = 0;
    frame_done(d);
    return 1;
  }
  size_t n = *len < d->body_left ? *len : d->body_left;
  if (n == 0)
    return 0;
  if (ctl_reserve(d, n) < 0)
    return fail(d, sb_diag_set(diag, SB_ENOMEM,
                               "out of memory buffering a control frame of %u bytes",
                               hdr_length(d)));
  memcpy(d->ctl + d->ctl_len, *buf, n);
  d->ctl_len += n;
  d->body_left -= (uint32_t)n;
  *buf += n;
  *len -= n;
  if (d->body_left > 0)
    return 0;
  emit(out, d->kind, d->ctl, d->ctl_len, true);
  frame_done(d);
  return 1;
}

int sb_decoder_next(sb_decoder *d, const uint8_t **buf, size_t *len, sb_frame *out,
                    sb_diag *diag) {
  if (d->failed) {
    int r = hdr_check(d, diag);
    return r < 0 ? r
                 : sb_diag_set(diag, SB_ENOMEM,
                               "out of memory buffering a control frame of %u bytes",
                               hdr_length(d));
  }
  if (!d->in_body) {
    int r = take_header(d, buf, len, diag);
    if (r <= 0)
      return r;
  }
  if (d->kind == SB_KIND_CONTROL)
    return take_control(d, buf, len, out, diag);
  return take_data(d, buf, len, out);
}
