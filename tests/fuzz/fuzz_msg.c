/* SPDX-License-Identifier: MIT */
/* fuzz_msg.c - the control message parser on any payload.
 *
 * Checks that a parse either fails cleanly (with a diag, leaving the output
 * empty) or gives a message that encodes, decodes as one control frame and
 * parses back to an equal message, whose encoding is then byte for byte the
 * same (the encoding is canonical). */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "msg_eq.h"

/* Encodes m and parses the frame back into *out. */
static void roundtrip(const sb_msg *m, sb_msg *out, uint8_t **frame, size_t *frame_len) {
  int r = sb_msg_encode(m, SB_MAX_MAX_BYTES, frame, frame_len);
  CHECK(r == 0);

  sb_decoder d;
  sb_decoder_init(&d, SB_MAX_MAX_BYTES);
  const uint8_t *p = *frame;
  size_t n = *frame_len;
  sb_frame f;
  sb_diag diag;
  CHECK(sb_decoder_next(&d, &p, &n, &f, &diag) == 1);
  CHECK(n == 0 && f.kind == SB_KIND_CONTROL && f.end);
  CHECK(sb_msg_parse(f.data, f.len, out, &diag) == 0);
  sb_decoder_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sb_msg m, back, again;
  sb_diag diag;
  diag.msg[0] = '\0';

  int r = sb_msg_parse(data, size, &m, &diag);
  if (r < 0) {
    CHECK(r == SB_EBADMSG || r == SB_ENOMEM);
    CHECK(diag.msg[0] != '\0' || r == SB_ENOMEM);
    sb_msg zero;
    memset(&zero, 0, sizeof zero);
    CHECK(memcmp(&m, &zero, sizeof m) == 0);
    return 0;
  }

  uint8_t *f1, *f2;
  size_t n1, n2;
  roundtrip(&m, &back, &f1, &n1);
  CHECK(msg_eq(&m, &back));
  roundtrip(&back, &again, &f2, &n2);
  CHECK(msg_eq(&back, &again));
  CHECK(n1 == n2 && memcmp(f1, f2, n1) == 0);

  free(f1);
  free(f2);
  sb_msg_free(&m);
  sb_msg_free(&back);
  sb_msg_free(&again);
  return 0;
}
