/* SPDX-License-Identifier: MIT */
/* record.c - --record: one JSON line per stub call, written when the call
 * ends, however it ends (answered, exec'd, cut off, refused by a rule).
 *
 * Bytes (argv, env, cwd, and the data of stdin, stdout, stderr) are encoded
 * as the protocol encodes them (lib/'s JSON writer): a JSON string when they
 * are UTF-8 without a NUL, else {"base64": ...}. The data of each stream is kept up to
 * CLI_RECORD_CAP bytes; "bytes" counts all of it. */
#include "proto.h"
#include "cli.h"

#include <stdlib.h>
#include <string.h>

void cli_rec_bytes(cli_rec_stream *s, const char *buf, size_t len) {
  size_t keep = len;

  s->bytes += len;
  if (s->len + keep > CLI_RECORD_CAP)
    keep = CLI_RECORD_CAP - s->len;
  if (keep == 0)
    return;
  if (s->data == NULL && (s->data = malloc(CLI_RECORD_CAP)) == NULL)
    return; /* the record keeps the count only */
  memcpy(s->data + s->len, buf, keep);
  s->len += keep;
}

void cli_rec_free(cli_rec_stream *s) {
  free(s->data);
  memset(s, 0, sizeof *s);
}

static void add_stream(sb_jw *w, const char *name, const cli_rec_stream *s) {
  sb_jw_key(w, name);
  sb_jw_open(w, '{');
  sb_jw_add_int(w, "bytes", (int64_t)s->bytes);
  sb_jw_key(w, "data");
  sb_jw_bytes_n(w, s->data != NULL ? s->data : "", s->len);
  if (s->len != s->bytes) {
    sb_jw_key(w, "truncated");
    sb_jw_bool(w, true);
  }
  sb_jw_close(w, '}');
}

static void add_status(sb_jw *w, const cli_call *c) {
  const char *name = sb_signal_name(c->signum);
  sb_jw_key(w, c->have_status && c->signum != 0 ? "signal" : "exit");
  if (!c->have_status)
    sb_jw_null(w);
  else if (c->signum == 0 || name == NULL)
    sb_jw_int(w, c->signum == 0 ? c->code : c->signum);
  else
    sb_jw_str(w, name);
}

static void add_rule(sb_jw *w, const cli_call *c) {
  sb_jw_key(w, "rule");
  if (c->rule >= 0)
    sb_jw_int(w, c->rule);
  else if (c->rule == CLI_RULE_DEFAULT)
    sb_jw_str(w, "default");
  else
    sb_jw_null(w);
}

static void fill(sb_jw *w, const cli_call *c, const sb_call *call, sb_close_reason why,
                 uint64_t end_ns) {
  /* Seconds since the epoch to the microsecond, exactly (as events). */
  sb_jw_key(w, "ts");
  sb_jw_fixed(w, c->start_ns, 9, 6);
  sb_jw_add_int(w, "pid", call->pid);
  sb_jw_add_int(w, "ppid", call->ppid);
  sb_jw_add_bytes_v(w, "argv", call->argv, call->argc);
  sb_jw_key(w, "cwd");
  sb_jw_bytes(w, call->cwd);
  /* The library never hands out SOCKETBRIDGE_TOKEN: not here either. */
  sb_jw_add_bytes_v(w, "env", call->env, call->envc);
  sb_jw_add_str(w, "action", c->action);
  add_rule(w, c);
  add_stream(w, "stdin", &c->io[0]);
  add_stream(w, "stdout", &c->io[1]);
  add_stream(w, "stderr", &c->io[2]);
  add_status(w, c);
  sb_jw_key(w, "duration_ms");
  sb_jw_fixed(w, end_ns - c->start_mono_ns, 6, 3);
  sb_jw_add_str(w, "close_reason", sb_close_reason_name(why));
  if (c->error != NULL) {
    sb_jw_key(w, "error");
    sb_jw_bytes(w, c->error);
  }
}

/* A line holds a hello's argv and env (at most SB_CTL_MAX_BYTES of JSON)
 * and CLI_RECORD_CAP bytes of each stream: bounded by twice that. */
#define RECORD_MAX (2 * ((size_t)SB_CTL_MAX_BYTES + 3 * 6 * (size_t)CLI_RECORD_CAP))

char *cli_call_json(const cli_call *c, const sb_call *call, sb_close_reason why) {
  sb_jw w;
  char *line;
  size_t len;
  sb_jw_init(&w, 0, 1024, RECORD_MAX);
  sb_jw_open(&w, '{');
  fill(&w, c, call, why, uv_hrtime());
  sb_jw_close(&w, '}');
  return sb_jw_end(&w, &line, &len) == 0 ? line : NULL;
}
