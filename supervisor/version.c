/* SPDX-License-Identifier: MIT */
/* version.c - the library's version and the names of its enums. */
#include "sb_internal.h"

#define SB__STR2(x) #x
#define SB__STR(x) SB__STR2(x)

const char *sb_version_string(void) {
  return SB__STR(SOCKETBRIDGE_VERSION_MAJOR) "." SB__STR(
      SOCKETBRIDGE_VERSION_MINOR) "." SB__STR(SOCKETBRIDGE_VERSION_PATCH);
}

static const sb__named close_reason_names[] = {SB_CLOSE_REASON_MAP(SB__NAMED_ROW)};

const char *sb_close_reason_name(sb_close_reason r) {
  const char *name =
      sb__name_of(close_reason_names, SB__NROWS(close_reason_names), (int)r);
  return name != NULL ? name : "unknown";
}
