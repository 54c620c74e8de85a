/* SPDX-License-Identifier: MIT */
/* msg.c - control messages: their type and reason names, and freeing one.
 * No JSON here: the parser is msg_parse.c, the encoder msg_encode.c. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

static const sb__named type_names[] = {SB_MSG_TYPE_MAP(SB__NAMED_ROW)};
static const sb__named reason_names[] = {SB_REASON_MAP(SB__NAMED_ROW)};

const char *sb_msg_type_name(sb_msg_type t) {
  return sb__name_of(type_names, SB__NROWS(type_names), (int)t);
}

const char *sb_reason_name(sb_reason r) {
  return sb__name_of(reason_names, SB__NROWS(reason_names), (int)r);
}

sb_msg_type sb__msg_type_from_name(const char *name) {
  return (sb_msg_type)sb__value_of(type_names, SB__NROWS(type_names), name);
}

sb_reason sb_reason_from_name(const char *name) {
  return (sb_reason)sb__value_of(reason_names, SB__NROWS(reason_names), name);
}

void sb_msg_free(sb_msg *m) {
  switch (m->type) {
  case SB_MSG_HELLO:
    sb_strv_free(&m->u.hello.argv);
    sb_strv_free(&m->u.hello.env);
    free(m->u.hello.cwd);
    free(m->u.hello.exe);
    break;
  case SB_MSG_REJECT:
    free(m->u.reject.message);
    break;
  case SB_MSG_STREAM_ERROR:
    free(m->u.stream_error.message);
    break;
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    sb_strv_free(&m->u.launch.argv);
    sb_strv_free(&m->u.launch.set);
    sb_strv_free(&m->u.launch.unset);
    free(m->u.launch.path);
    free(m->u.launch.cwd);
    break;
  default:
    break;
  }
  /* A hello holds a token; zeroing clears it from memory too. */
  explicit_bzero(m, sizeof *m);
}
