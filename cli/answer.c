/* SPDX-License-Identifier: MIT */
/* answer.c - what each stub call gets under `socketbridge run`: the first
 * matching rule of --rules (respond, delegate, exec, run), else the rules'
 * default, else exit 127 with one line on the call's stderr. Without
 * --rules every call exits 0 with no output. Each call is recorded with
 * --record when it ends.
 *
 * The rules file is read again when it changes (another inode, size or
 * mtime), so a harness can script the next calls live: write the new file
 * and rename it over the old one. A version that does not load is reported
 * once on stderr, and the rules loaded before stay in force. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct cli_answer {
  const char *rules_path; /* NULL: no --rules */
  rules rules;
  struct stat loaded;      /* the rules file when it was loaded */
  struct stat refused;     /* the last version that did not load */
  cli_jsonl *record;       /* --record, or NULL (owned by run.c) */
  unsigned open;           /* calls answered, not yet closed */
  void (*idle_cb)(void *); /* cli_answer_when_idle */
  void *idle_data;
};

static void maybe_idle(cli_answer *a) {
  void (*cb)(void *) = a->idle_cb;
  if (a->open > 0 || cb == NULL)
    return;
  a->idle_cb = NULL;
  cb(a->idle_data);
}

void cli_answer_when_idle(cli_answer *a, void (*cb)(void *), void *data) {
  a->idle_cb = cb;
  a->idle_data = data;
  maybe_idle(a);
}

static bool same_version(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Loads the rules file as it is now (stat first: a change after it is seen
 * by the next call). */
static int load(cli_answer *a, bool first) {
  char err[RULES_ERR_MAX];
  struct stat st;
  rules fresh;

  if (stat(a->rules_path, &st) != 0) {
    if (first)
      cli_error("--rules: %s: %s", a->rules_path, strerror(errno));
    return -1;
  }
  if (!first && (same_version(&st, &a->loaded) || same_version(&st, &a->refused)))
    return 0;
  if (rules_load(a->rules_path, &fresh, err, sizeof err) < 0) {
    cli_error("--rules: %s%s", err,
              first ? "" : " (the rules loaded before stay in force)");
    rules_free(&fresh);
    a->refused = st;
    return -1;
  }
  rules_free(&a->rules);
  a->rules = fresh;
  a->loaded = st;
  return 0;
}

int cli_answer_new(const cli_options *o, cli_answer **out) {
  cli_answer *a = calloc(1, sizeof *a);

  if (a == NULL) {
    cli_error("out of memory");
    return -1;
  }
  a->rules_path = o->rules_path;
  if (a->rules_path != NULL && load(a, true) < 0) {
    cli_answer_free(a);
    return -1;
  }
  *out = a;
  return 0;
}

void cli_answer_start(cli_answer *a, cli_jsonl *record) {
  a->record = record;
}

void cli_answer_free(cli_answer *a) {
  if (a == NULL)
    return;
  rules_free(&a->rules);
  free(a);
}

/* ---- one call's callbacks: what the record needs ------------------------------ */

static void respond_now(cli_call *c, sb_conn *conn, const rule_respond *rr);

static void on_stdin(sb_conn *conn, const char *buf, size_t len) {
  cli_call *c = sb_conn_data(conn);
  rule_respond *rr = c->waiting;
  cli_rec_bytes(&c->io[0], buf, len);
  if (len > 0 || rr == NULL)
    return;
  c->waiting = NULL;
  respond_now(c, conn, rr);
  rule_respond_free(rr);
}

static void on_program_output(sb_conn *conn, int stream, const char *buf, size_t len) {
  cli_call *c = sb_conn_data(conn);
  cli_rec_bytes(&c->io[stream], buf, len);
}

static void record(cli_answer *a, cli_call *c, sb_conn *conn, sb_close_reason why) {
  char *line;
  if (a->record == NULL)
    return;
  line = cli_call_json(c, sb_conn_call(conn), why);
  if (line == NULL)
    cli_error("--record: out of memory: the record of pid %lld is lost",
              (long long)sb_conn_call(conn)->pid);
  else
    cli_jsonl_write(a->record, line);
  free(line);
}

static void on_close(sb_conn *conn, sb_close_reason why, int err) {
  cli_call *c = sb_conn_data(conn);
  cli_answer *a = c->answer;
  bool told = sb_conn_told(conn, &c->code, &c->signum);

  if (c->stream != NULL)
    cli_stream_detach(c->stream);

  /* The status is the call's only when the stub ended as it was told. */
  c->have_status = why == SB_CLOSE_EXITED && told;
  if (why != SB_CLOSE_EXITED && why != SB_CLOSE_EXEC && c->error == NULL)
    c->error = strdup(err < 0 ? sb_strerror(err) : "the stub went away before its end");
  for (int i = 0; i < 2 && told; i++) {
    cli_rec_bytes(&c->io[i + 1], c->planned[i].data, c->planned[i].len);
    c->io[i + 1].bytes += c->planned[i].bytes - c->planned[i].len;
  }
  record(a, c, conn, why);
  rule_respond_free(c->waiting);
  for (int i = 0; i < 3; i++)
    cli_rec_free(&c->io[i]);
  cli_rec_free(&c->planned[0]);
  cli_rec_free(&c->planned[1]);
  free(c->error);
  free(c);
  a->open--;
  maybe_idle(a);
}

/* ---- answering ------------------------------------------------------------------ */

/* A call no rule could answer: one line on its stderr, exit code (127 as a
 * shell for a program it cannot find, 126 for one it cannot run). */
__attribute__((format(printf, 4, 5))) static void refuse(cli_call *c, sb_conn *conn,
                                                         int code, const char *fmt, ...) {
  char msg[512], line[540];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  free(c->error);
  c->error = strdup(msg);
  snprintf(line, sizeof line, "socketbridge: %s\n", msg);
  c->action = "respond";
  if (sb_conn_respond(
          conn, &(sb_response){.err = line, .err_len = strlen(line), .code = code}) == 0)
    cli_rec_bytes(&c->io[2], line, strlen(line));
}

/* The call's argv for a message: printable, one line, cut when long. */
static const char *shown_argv(const sb_call *call, char *buf, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < call->argc && o + 4 < size; i++) {
    if (i > 0)
      buf[o++] = ' ';
    for (const char *p = call->argv[i]; *p != '\0' && o + 4 < size; p++)
      buf[o++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p;
  }
  if (o + 4 >= size)
    memcpy(buf + o, "...", 3), o += 3;
  buf[o] = '\0';
  return buf;
}

static void respond_now(cli_call *c, sb_conn *conn, const rule_respond *rr) {
  if (rr->has_out_file) {
    int e = cli_stream_start(c, conn, rr);
    if (e < 0)
      refuse(c, conn, 125, "respond: stdout_file: %s", sb_strerror(e));
    return;
  }
  sb_response r = {.out = rr->out,
                   .out_len = rr->out_len,
                   .err = rr->err,
                   .err_len = rr->err_len,
                   .code = rr->code,
                   .signum = rr->signal,
                   .delay_ms = rr->delay_ms};
  int e = sb_conn_respond(conn, &r);
  if (e < 0) {
    refuse(c, conn, 125, "respond: %s", sb_strerror(e));
    return;
  }
  /* Sent now, or planned: a call cut off before its delay ends got none. */
  cli_rec_bytes(rr->delay_ms > 0 ? &c->planned[0] : &c->io[1], rr->out, rr->out_len);
  cli_rec_bytes(rr->delay_ms > 0 ? &c->planned[1] : &c->io[2], rr->err, rr->err_len);
}

/* The supervisor is the process. With "stdin": true, like a tool that reads
 * its input before it answers, it answers once the call's stdin has ended,
 * so the record holds all the caller sent (not a terminal's stdin: it ends
 * when someone types ^D). By default it answers at once: a fake must never
 * hang where the real tool, which may not read its stdin, would not; the
 * record then holds what stdin arrived before the end. */
static void respond(cli_call *c, sb_conn *conn, const rule_respond *rr) {
  if (rr->at_once || (sb_conn_call(conn)->tty & SB_TTY_STDIN) != 0) {
    respond_now(c, conn, rr);
    return;
  }
  if ((c->waiting = rule_respond_dup(rr)) == NULL)
    refuse(c, conn, 125, "respond: %s", sb_strerror(-ENOMEM));
}

/* delegate, exec, run: the templates expanded for this call. */
static void launch(cli_call *c, sb_conn *conn, const rule *ru) {
  const sb_call *call = sb_conn_call(conn);
  rule_launch l;
  sb_program p;
  int r = rules_expand(&ru->program, call->argc, call->argv, call->cwd, &l);

  if (r < 0) {
    refuse(c, conn, 125, "%s: %s", c->action, sb_strerror(r));
    return;
  }
  if (l.argc == 0 || l.argv[0][0] == '\0') {
    refuse(c, conn, 127, "%s: the program's argv expands to nothing for this call",
           c->action);
    rule_launch_free(&l);
    return;
  }
  p = (sb_program){
      .argv = l.argv, .cwd = l.cwd, .set = l.set, .unset = l.unset, .tee = l.tee};
  r = ru->action == RULE_DELEGATE ? sb_conn_delegate(conn, &p)
      : ru->action == RULE_EXEC   ? sb_conn_exec(conn, &p)
                                  : sb_conn_run(conn, &p);
  if (r < 0)
    refuse(c, conn, r == -ENOENT || r == -ENOTDIR ? 127 : 126, "%s: %s: %s", c->action,
           l.argv[0], sb_strerror(r));
  rule_launch_free(&l);
}

void cli_answer_call(cli_answer *a, sb_conn *conn) {
  const sb_call *call = sb_conn_call(conn);
  cli_call *c = calloc(1, sizeof *c);
  struct timespec ts;
  const rule *ru;
  char shown[200];

  if (c == NULL) {
    sb_conn_close(conn);
    return;
  }
  clock_gettime(CLOCK_REALTIME, &ts);
  c->start_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  c->start_mono_ns = uv_hrtime();
  c->answer = a;
  a->open++;
  c->action = "respond";
  c->rule = CLI_RULE_NONE;
  sb_conn_set_callbacks(conn,
                        &(sb_conn_callbacks){.on_stdin = on_stdin,
                                             .on_close = on_close,
                                             .on_program_output = on_program_output},
                        c);
  if (a->rules_path == NULL) {
    sb_conn_exit(conn, 0);
    return;
  }
  load(a, false);
  ru = rules_match(&a->rules, call->argc, call->argv, call->cwd, call->envc, call->env);
  if (ru == NULL) {
    refuse(c, conn, 127, "no rule matches: %s", shown_argv(call, shown, sizeof shown));
    return;
  }
  c->rule = ru->index >= 0 ? ru->index : CLI_RULE_DEFAULT;
  c->action = rules_action_name(ru->action);
  if (ru->action == RULE_RESPOND)
    respond(c, conn, &ru->respond);
  else
    launch(c, conn, ru);
}
