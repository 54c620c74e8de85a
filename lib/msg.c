/* SPDX-License-Identifier: MIT */
/* msg.c - control messages: their type and reason names, and freeing one.
 * No JSON here: the parser is msg_parse.c, the encoder msg_encode.c. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
    [SB_MSG_HELLO] = "hello",   [SB_MSG_WELCOME] = "welcome",
    [SB_MSG_REJECT] = "reject", [SB_MSG_EXIT] = "exit",
    [SB_MSG_SIGNAL] = "signal", [SB_MSG_STREAM_ERROR] = "stream_error",
    [SB_MSG_EXEC] = "exec",     [SB_MSG_RUN] = "run",
    [SB_MSG_EXITED] = "exited", [SB_MSG_WINSIZE] = "winsize",
    [SB_MSG_PTY] = "pty",
};

static const char *const reason_names[] = {
    [SB_REASON_BAD_TOKEN] = "bad_token", [SB_REASON_VERSION] = "version",
    [SB_REASON_TOO_LARGE] = "too_large", [SB_REASON_NOT_ALLOWED] = "not_allowed",
    [SB_REASON_BUSY] = "busy",           [SB_REASON_TIMEOUT] = "timeout",
    [SB_REASON_PROTOCOL] = "protocol",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *sb_msg_type_name(sb_msg_type t) {
  return ((size_t)t < COUNT(type_names)) ? type_names[t] : NULL;
}

const char *sb_reason_name(sb_reason r) {
  return ((size_t)r < COUNT(reason_names)) ? reason_names[r] : NULL;
}

sb_msg_type sb__msg_type_from_name(const char *name) {
  for (size_t t = SB_MSG_HELLO; t < COUNT(type_names); t++)
    if (strcmp(type_names[t], name) == 0)
      return (sb_msg_type)t;
  return 0;
}

sb_reason sb_reason_from_name(const char *name) {
  for (size_t i = 1; name != NULL && i < COUNT(reason_names); i++)
    if (strcmp(reason_names[i], name) == 0)
      return (sb_reason)i;
  return 0;
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
