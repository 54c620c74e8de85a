/* SPDX-License-Identifier: MIT */
/* msg_eq.h - what the message fuzzers share: a check that aborts (so
 * libFuzzer reports it), and field-by-field equality of two messages. */
#ifndef SB_FUZZ_MSG_EQ_H
#define SB_FUZZ_MSG_EQ_H

#include "proto.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static inline bool str_eq(const char *a, const char *b) {
  return (a == NULL || b == NULL) ? a == b : strcmp(a, b) == 0;
}

static inline bool strv_eq(const sb_strv *a, const sb_strv *b) {
  if (a->n != b->n || a->v[a->n] != NULL || b->v[b->n] != NULL)
    return false;
  for (size_t i = 0; i < a->n; i++)
    if (!str_eq(a->v[i], b->v[i]))
      return false;
  return true;
}

static inline bool hello_eq(const sb_hello *a, const sb_hello *b) {
  return a->version == b->version && a->min_version == b->min_version &&
         strcmp(a->token, b->token) == 0 && a->pid == b->pid && a->ppid == b->ppid &&
         strv_eq(&a->argv, &b->argv) && strv_eq(&a->env, &b->env) &&
         str_eq(a->cwd, b->cwd) && str_eq(a->exe, b->exe) && a->tty == b->tty &&
         a->has_winsize == b->has_winsize && a->winsize.rows == b->winsize.rows &&
         a->winsize.cols == b->winsize.cols;
}

static inline bool launch_eq(const sb_launch *a, const sb_launch *b) {
  return strv_eq(&a->argv, &b->argv) && str_eq(a->path, b->path) &&
         str_eq(a->cwd, b->cwd) && strv_eq(&a->set, &b->set) &&
         strv_eq(&a->unset, &b->unset) && a->tee == b->tee;
}

static inline bool msg_eq(const sb_msg *a, const sb_msg *b) {
  if (a->type != b->type)
    return false;
  switch (a->type) {
  case SB_MSG_HELLO:
    return hello_eq(&a->u.hello, &b->u.hello);
  case SB_MSG_WELCOME:
    return a->u.welcome.version == b->u.welcome.version &&
           a->u.welcome.hold_stdin == b->u.welcome.hold_stdin;
  case SB_MSG_REJECT:
    return a->u.reject.reason == b->u.reject.reason &&
           str_eq(a->u.reject.message, b->u.reject.message);
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    return a->u.exit.signal == b->u.exit.signal && a->u.exit.code == b->u.exit.code;
  case SB_MSG_SIGNAL:
    return a->u.signal.signal == b->u.signal.signal;
  case SB_MSG_STREAM_ERROR:
    return a->u.stream_error.stream == b->u.stream_error.stream &&
           a->u.stream_error.err == b->u.stream_error.err &&
           str_eq(a->u.stream_error.message, b->u.stream_error.message);
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    return launch_eq(&a->u.launch, &b->u.launch);
  case SB_MSG_WINSIZE:
    return a->u.winsize.rows == b->u.winsize.rows &&
           a->u.winsize.cols == b->u.winsize.cols;
  case SB_MSG_PTY:
    return true;
  }
  return false;
}

#endif
