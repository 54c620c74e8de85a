/* SPDX-License-Identifier: MIT */
/* version.c - the library's version and the names of its enums. */
#include "sb_internal.h"

#define SB__STR2(x) #x
#define SB__STR(x) SB__STR2(x)

const char *sb_version_string(void) {
  return SB__STR(SOCKETBRIDGE_VERSION_MAJOR) "." SB__STR(
      SOCKETBRIDGE_VERSION_MINOR) "." SB__STR(SOCKETBRIDGE_VERSION_PATCH);
}

const char *sb_close_reason_name(sb_close_reason r) {
  switch (r) {
  case SB_CLOSE_EXITED:
    return "exited";
  case SB_CLOSE_PEER_LOST:
    return "peer_lost";
  case SB_CLOSE_PROTOCOL:
    return "protocol";
  case SB_CLOSE_SERVER:
    return "server";
  case SB_CLOSE_EXEC:
    return "exec";
  }
  return "unknown";
}
