/* SPDX-License-Identifier: MIT */
/* allowlist.c - which peer addresses a TCP listener accepts. */
#include "allowlist.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The longest entry worth looking at: an IPv6 literal and a /128. */
#define SB_ENTRY_MAX (INET6_ADDRSTRLEN + 4)

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Parses one entry, text[0..len), "addr" or "addr/prefix". */
static int parse_entry(const char *text, size_t len, sb_allow_entry *e, sb_diag *diag) {
  char buf[SB_ENTRY_MAX + 1], quoted[80];

  if (len > SB_ENTRY_MAX) {
    memcpy(buf, text, SB_ENTRY_MAX);
    buf[SB_ENTRY_MAX] = '\0';
    sb__quote(quoted, sizeof quoted, buf);
    return sb_diag_set(diag, SB_EINVAL, "allowlist entry %s: too long", quoted);
  }
  memcpy(buf, text, len);
  buf[len] = '\0';
  sb__quote(quoted, sizeof quoted, buf);

  char *slash = strchr(buf, '/');
  if (slash != NULL)
    *slash = '\0';
  memset(e, 0, sizeof *e);
  if (inet_pton(AF_INET, buf, e->addr) == 1) {
    e->family = AF_INET;
    e->prefix = 32;
  } else if (inet_pton(AF_INET6, buf, e->addr) == 1) {
    e->family = AF_INET6;
    e->prefix = 128;
  } else {
    return sb_diag_set(diag, SB_EINVAL, "allowlist entry %s: not an IPv4 or IPv6 address",
                       quoted);
  }
  uint64_t prefix = e->prefix;
  if (slash != NULL && !sb__parse_uint(slash + 1, e->prefix, &prefix))
    return sb_diag_set(diag, SB_EINVAL, "allowlist entry %s: prefix must be 0..%u",
                       quoted, e->family == AF_INET ? 32u : 128u);
  e->prefix = (unsigned)prefix;
  return 0;
}

static bool is_space(char c) {
  return c == ' ' || c == '\t';
}

int sb_allowlist_parse(const char *text, sb_allowlist *out, sb_diag *diag) {
  size_t count = 1;
  int r = 0;

  out->v = NULL;
  out->n = 0;
  if (text == NULL || *text == '\0')
    return 0;
  for (const char *p = text; *p != '\0'; p++)
    count += *p == ',';
  out->v = calloc(count, sizeof *out->v);
  if (out->v == NULL)
    return SB_ENOMEM;

  for (const char *p = text;;) {
    const char *end = strchr(p, ',');
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    /* Spaces around entries are forgiven ("10.0.0.0/8, ::1"). */
    while (len > 0 && is_space(*p)) {
      p++;
      len--;
    }
    while (len > 0 && is_space(p[len - 1]))
      len--;
    if (len == 0) {
      r = sb_diag_set(diag, SB_EINVAL, "allowlist entry %zu is empty", out->n + 1);
      goto fail;
    }
    r = parse_entry(p, len, &out->v[out->n], diag);
    if (r < 0)
      goto fail;
    out->n++;
    if (end == NULL)
      break;
    p = end + 1;
  }
  return 0;

fail:
  sb_allowlist_free(out);
  return r;
}

void sb_allowlist_free(sb_allowlist *l) {
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits) {
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(a, b, whole) != 0)
    return false;
  if (rest == 0)
    return true;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

/* A v4 address in its v4-mapped v6 form, for matching v6 entries. */
static void map_v4(const uint8_t v4[4], uint8_t v6[16]) {
  memcpy(v6, v4mapped_prefix, 12);
  memcpy(v6 + 12, v4, 4);
}

bool sb_allowlist_match(const sb_allowlist *l, const void *sockaddr) {
  const struct sockaddr *sa = sockaddr;
  uint8_t v4[4], v6[16];
  bool has_v4 = false;

  if (l == NULL || sa == NULL)
    return false;
  if (sa->sa_family == AF_INET) {
    memcpy(v4, &((const struct sockaddr_in *)sockaddr)->sin_addr, 4);
    map_v4(v4, v6);
    has_v4 = true;
  } else if (sa->sa_family == AF_INET6) {
    memcpy(v6, &((const struct sockaddr_in6 *)sockaddr)->sin6_addr, 16);
    if (memcmp(v6, v4mapped_prefix, 12) == 0) {
      memcpy(v4, v6 + 12, 4);
      has_v4 = true;
    }
  } else {
    return false;
  }
  for (size_t i = 0; i < l->n; i++) {
    const sb_allow_entry *e = &l->v[i];
    if (e->family == AF_INET6 && prefix_match(e->addr, v6, e->prefix))
      return true;
    if (e->family == AF_INET && has_v4 && prefix_match(e->addr, v4, e->prefix))
      return true;
  }
  return false;
}
