/* SPDX-License-Identifier: MIT */
/* conn_hello.c - what a handshake's bytes say: whether the first bytes of a
 * stream begin a hello with a live token, the version both sides speak,
 * and the call a hello describes. Functions of their arguments: conn.c
 * decides what follows. */
#include "sb_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the first bytes: does the hello begin with a live token? ------------- */

uint32_t sb__head_length(const uint8_t *h) {
  return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* Whether body[0..n) can begin SB_HELLO_PREFIX and a token (n at most its
 * length). */
static bool prefix_so_far(const uint8_t *body, size_t n) {
  static const char fixed[] = SB_HELLO_PREFIX;
  const size_t nfixed = sizeof fixed - 1;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = body[i];
    if (i < nfixed                  ? c != (uint8_t)fixed[i]
        : i < nfixed + SB_TOKEN_HEX ? !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                                    : c != '"')
      return false;
  }
  return true;
}

bool sb__head_decided(const uint8_t *head, size_t len, uint32_t ctl_max) {
  uint32_t length;

  if (len < 4)
    return false;
  length = sb__head_length(head);
  if (length == 0 || length > ctl_max)
    return true;
  if (len < SB_FRAME_HEADER)
    return false;
  if (head[4] != SB_KIND_CONTROL || length - 1 < SB_HELLO_PREFIX_LEN)
    return true;
  return !prefix_so_far(head + SB_FRAME_HEADER, len - SB_FRAME_HEADER) ||
         len == SB_FRAME_HEADER + SB_HELLO_PREFIX_LEN;
}

/* Checked as sb__conn_check_peer checks a hello's token. */
bool sb__head_token_live(sb_server *server, const uint8_t *head, size_t len) {
  char token[SB_TOKEN_HEX + 1];
  bool live;

  if (len != SB_FRAME_HEADER + SB_HELLO_PREFIX_LEN ||
      !prefix_so_far(head + SB_FRAME_HEADER, SB_HELLO_PREFIX_LEN))
    return false;
  memcpy(token, head + SB_FRAME_HEADER + sizeof SB_HELLO_PREFIX - 1, SB_TOKEN_HEX);
  token[SB_TOKEN_HEX] = '\0';
  live = sb__ticket_lookup(server, token) != NULL;
  explicit_bzero(token, sizeof token);
  return live;
}

/* ---- the hello -------------------------------------------------------------- */

int sb__version_choose(int version, int min_version, char *msg, size_t len) {
  int lo = min_version > 0 ? min_version : version;
  int hi = version < SB_PROTOCOL_VERSION ? version : SB_PROTOCOL_VERSION;

  if (lo < SB_PROTOCOL_MIN_VERSION)
    lo = SB_PROTOCOL_MIN_VERSION;
  if (hi >= lo)
    return hi;
  snprintf(msg, len,
           "no protocol version in common: the stub speaks %d..%d, the supervisor %d..%d",
           min_version > 0 ? min_version : version, version, SB_PROTOCOL_MIN_VERSION,
           SB_PROTOCOL_VERSION);
  return 0;
}

void sb__hello_call(const sb_hello *h, sb_call *c) {
  static char *const empty[1] = {NULL};
  c->pid = h->pid;
  c->ppid = h->ppid;
  c->argc = h->argv.v != NULL ? h->argv.n : 0;
  c->argv = h->argv.v != NULL ? h->argv.v : empty;
  c->envc = h->env.v != NULL ? h->env.n : 0;
  c->env = h->env.v != NULL ? h->env.v : empty;
  c->cwd = h->cwd;
  c->exe = h->exe;
  c->tty = h->tty;
  c->has_winsize = h->has_winsize;
  c->winsize = h->winsize;
}
