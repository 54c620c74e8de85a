/* SPDX-License-Identifier: MIT */
/* support.c - helpers shared by the unit tests (no tests here). */
#include "unit.h"

#include <stdlib.h>
#include <string.h>

sb_strv unit_strv(char **v) {
  sb_strv s = {v, 0};
  while (v != NULL && v[s.n] != NULL)
    s.n++;
  return s;
}

int unit_parse(const char *json, sb_msg *out, sb_diag *diag) {
  return sb_msg_parse((const uint8_t *)json, strlen(json), out, diag);
}

void unit_roundtrip(const sb_msg *m, sb_msg *out) {
  uint8_t *frame = NULL;
  size_t frame_len = 0;
  int r = sb_msg_encode(m, 0, &frame, &frame_len);
  cr_assert_eq(r, 0, "encoding a %s message failed: %s", sb_msg_type_name(m->type),
               sb_strerror(r));
  cr_assert_geq(frame_len, SB_FRAME_HEADER, "frame of %zu bytes", frame_len);

  sb_decoder d;
  sb_decoder_init(&d, 0);
  const uint8_t *p = frame;
  size_t n = frame_len;
  sb_frame f;
  sb_diag diag = {""};
  r = sb_decoder_next(&d, &p, &n, &f, &diag);
  cr_assert_eq(r, 1, "decoding the encoded frame returned %d (%s)", r, diag.msg);
  cr_assert_eq(n, 0, "%zu bytes left after the frame", n);
  cr_assert_eq(f.kind, SB_KIND_CONTROL, "frame kind %d", f.kind);
  cr_assert(f.end, "control frame not whole");
  cr_assert_eq(f.len, frame_len - SB_FRAME_HEADER, "payload of %zu bytes, frame of %zu",
               f.len, frame_len);

  r = sb_msg_parse(f.data, f.len, out, &diag);
  cr_assert_eq(r, 0, "parsing %.*s failed: %s", (int)f.len, (const char *)f.data,
               diag.msg);
  sb_decoder_free(&d);
  free(frame);
}

static void assert_str_eq(const char *what, const char *want, const char *got) {
  if (want == NULL || got == NULL) {
    cr_assert_eq(want, got, "%s: want %s, got %s", what, want ? want : "NULL",
                 got ? got : "NULL");
    return;
  }
  cr_assert_str_eq(got, want, "%s: want \"%s\", got \"%s\"", what, want, got);
}

static void assert_strv_eq(const char *what, const sb_strv *want, const sb_strv *got) {
  cr_assert_eq(got->n, want->n, "%s: want %zu entries, got %zu", what, want->n, got->n);
  cr_assert_not_null(got->v, "%s: vector is NULL", what);
  cr_assert_null(got->v[got->n], "%s: not NULL-terminated", what);
  for (size_t i = 0; i < want->n; i++) {
    char label[64];
    snprintf(label, sizeof label, "%s[%zu]", what, i);
    assert_str_eq(label, want->v[i], got->v[i]);
  }
}

static void assert_launch_eq(const sb_launch *w, const sb_launch *g, bool run) {
  assert_strv_eq("argv", &w->argv, &g->argv);
  assert_str_eq("path", w->path, g->path);
  assert_str_eq("cwd", w->cwd, g->cwd);
  /* Absent and empty are one on the wire; either way what is parsed is a
   * vector (NULL-terminated, never NULL itself). */
  assert_strv_eq("env", &w->set, &g->set);
  assert_strv_eq("unset", &w->unset, &g->unset);
  if (run)
    cr_assert_eq(g->tee, w->tee, "tee: want %d, got %d", w->tee, g->tee);
}

static void assert_hello_eq(const sb_hello *w, const sb_hello *g) {
  int wmin = w->min_version != 0 ? w->min_version : w->version;
  cr_assert_eq(g->version, w->version, "version: want %d, got %d", w->version,
               g->version);
  cr_assert_eq(g->min_version, wmin, "min_version: want %d, got %d", wmin,
               g->min_version);
  assert_str_eq("token", w->token, g->token);
  cr_assert_eq(g->pid, w->pid, "pid: want %lld, got %lld", (long long)w->pid,
               (long long)g->pid);
  cr_assert_eq(g->ppid, w->ppid, "ppid: want %lld, got %lld", (long long)w->ppid,
               (long long)g->ppid);
  assert_strv_eq("argv", &w->argv, &g->argv);
  assert_strv_eq("env", &w->env, &g->env);
  assert_str_eq("cwd", w->cwd, g->cwd);
  assert_str_eq("exe", w->exe, g->exe);
  cr_assert_eq(g->tty, w->tty, "tty: want %u, got %u", w->tty, g->tty);
  cr_assert_eq(g->has_winsize, w->has_winsize, "winsize: want %d, got %d", w->has_winsize,
               g->has_winsize);
  cr_assert(g->winsize.rows == w->winsize.rows && g->winsize.cols == w->winsize.cols,
            "winsize: want %ux%u, got %ux%u", w->winsize.rows, w->winsize.cols,
            g->winsize.rows, g->winsize.cols);
}

void unit_assert_msg_eq(const sb_msg *w, const sb_msg *g) {
  cr_assert_eq(g->type, w->type, "type: want %d, got %d", w->type, g->type);
  switch (w->type) {
  case SB_MSG_HELLO:
    assert_hello_eq(&w->u.hello, &g->u.hello);
    break;
  case SB_MSG_WELCOME:
    cr_assert_eq(g->u.welcome.version, w->u.welcome.version, "version: want %d, got %d",
                 w->u.welcome.version, g->u.welcome.version);
    cr_assert_eq(g->u.welcome.hold_stdin, w->u.welcome.hold_stdin,
                 "hold_stdin: want %d, got %d", w->u.welcome.hold_stdin,
                 g->u.welcome.hold_stdin);
    break;
  case SB_MSG_REJECT:
    cr_assert_eq(g->u.reject.reason, w->u.reject.reason, "reason: want %d, got %d",
                 w->u.reject.reason, g->u.reject.reason);
    assert_str_eq("message", w->u.reject.message ? w->u.reject.message : "",
                  g->u.reject.message);
    break;
  case SB_MSG_EXIT:
  case SB_MSG_EXITED:
    cr_assert_eq(g->u.exit.signal, w->u.exit.signal, "signal: want %d, got %d",
                 w->u.exit.signal, g->u.exit.signal);
    if (w->u.exit.signal == 0)
      cr_assert_eq(g->u.exit.code, w->u.exit.code, "code: want %d, got %d",
                   w->u.exit.code, g->u.exit.code);
    break;
  case SB_MSG_SIGNAL:
    cr_assert_eq(g->u.signal.signal, w->u.signal.signal, "signal: want %d, got %d",
                 w->u.signal.signal, g->u.signal.signal);
    break;
  case SB_MSG_STREAM_ERROR:
    cr_assert_eq(g->u.stream_error.stream, w->u.stream_error.stream,
                 "stream: want %d, got %d", w->u.stream_error.stream,
                 g->u.stream_error.stream);
    cr_assert_eq(g->u.stream_error.err, w->u.stream_error.err, "err: want %d, got %d",
                 w->u.stream_error.err, g->u.stream_error.err);
    assert_str_eq("message", w->u.stream_error.message ? w->u.stream_error.message : "",
                  g->u.stream_error.message);
    break;
  case SB_MSG_EXEC:
  case SB_MSG_RUN:
    assert_launch_eq(&w->u.launch, &g->u.launch, w->type == SB_MSG_RUN);
    break;
  case SB_MSG_WINSIZE:
    cr_assert(g->u.winsize.rows == w->u.winsize.rows &&
                  g->u.winsize.cols == w->u.winsize.cols,
              "winsize: want %ux%u, got %ux%u", w->u.winsize.rows, w->u.winsize.cols,
              g->u.winsize.rows, g->u.winsize.cols);
    break;
  case SB_MSG_PTY:
    break;
  }
}
