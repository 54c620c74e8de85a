/* SPDX-License-Identifier: MIT */
/* allowlist.h - which peer addresses a TCP listener accepts (allowlist.c):
 * the supervisor's, and the command's --allow check. */
#ifndef SB_ALLOWLIST_H
#define SB_ALLOWLIST_H

#include "proto.h"

/* An allowlist of peer addresses: IPv4/IPv6 literals, each with an optional
 * /prefix ("127.0.0.1,::1,10.0.0.0/8"). */
typedef struct sb_allow_entry {
  int family;       /* AF_INET or AF_INET6 */
  uint8_t addr[16]; /* network order; 4 bytes used for AF_INET */
  unsigned prefix;  /* bits that must match */
} sb_allow_entry;

typedef struct sb_allowlist {
  sb_allow_entry *v;
  size_t n;
} sb_allowlist;

/* Parses a comma-separated list. Returns 0, SB_EINVAL (diag names the bad
 * entry) or SB_ENOMEM. An empty string gives an empty list. */
int sb_allowlist_parse(const char *text, sb_allowlist *out, sb_diag *diag);
void sb_allowlist_free(sb_allowlist *l);
/* True when the address (a struct sockaddr_in or sockaddr_in6; a v4-mapped
 * v6 address counts as its v4 address) matches an entry. */
bool sb_allowlist_match(const sb_allowlist *l, const void *sockaddr);

#endif
