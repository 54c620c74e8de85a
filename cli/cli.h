/* SPDX-License-Identifier: MIT */
/* cli.h - the parts of the socketbridge command, one file each. */
#ifndef SB_CLI_H
#define SB_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "options.h"
#include "rules.h"
#include "socketbridge.h"

/* Prints "socketbridge: " and the message as one line on stderr. */
__attribute__((format(printf, 1, 2))) void cli_error(const char *fmt, ...);

/* run.c: runs the command under supervision; returns the exit status. */
int cli_run(const cli_options *o);

/* serve.c: `socketbridge serve` (docs/control.md); send.c: `socketbridge
 * send`. argv[0] is the subcommand; each returns the exit status. */
int cli_serve(int argc, char **argv);
int cli_send(int argc, char **argv);

/* ---- record.c: --record, one JSON line per stub call ----------------------- */

#define CLI_RECORD_CAP (64u * 1024u) /* data kept per stream and call */
#define CLI_RULE_DEFAULT (-1)        /* the call got the rules' default */
#define CLI_RULE_NONE (-2)           /* no rule decided: no --rules, or no match */

/* What a stream of a call carried: every byte counted, the first
 * CLI_RECORD_CAP kept. */
typedef struct cli_rec_stream {
  size_t bytes;
  char *data; /* malloc'd on first use */
  size_t len;
} cli_rec_stream;

/* One stub call, from its connect to its close. */
typedef struct cli_call {
  struct cli_answer *answer;
  uint64_t start_ns;      /* CLOCK_REALTIME at connect */
  uint64_t start_mono_ns; /* uv_hrtime() at connect */
  const char *action;     /* "respond", "delegate", "exec", "run" */
  int rule;               /* index in "rules", or CLI_RULE_* */
  cli_rec_stream io[3];   /* stdin, stdout, stderr */
  /* A delayed respond's output: recorded in io[1..2] only once the stub was
   * told its end (so the output was sent before it). */
  cli_rec_stream planned[2];
  /* A respond waiting for the end of the call's stdin (a copy: the rules
   * may be read again meanwhile), or NULL. */
  struct rule_respond *waiting;
  struct cli_stream *stream; /* a stdout_file being sent, or NULL */
  bool have_status;          /* how the stub ended, when it ended as told */
  int code, signum;
  char *error; /* malloc'd: what went wrong, or NULL */
} cli_call;

void cli_rec_bytes(cli_rec_stream *s, const char *buf, size_t len);
void cli_rec_free(cli_rec_stream *s);
/* The record of a call as one JSON object (no newline), malloc'd; NULL when
 * out of memory. */
char *cli_call_json(const cli_call *c, const sb_call *call, sb_close_reason why);

/* ---- outputs.c: the files of --stdin, --stdout, --stderr, --events, --record */

typedef enum cli_file_use {
  CLI_FILE_READ,   /* --stdin: the child reads it */
  CLI_FILE_CHILD,  /* --stdout, --stderr: the child writes it (blocking) */
  CLI_FILE_STREAM, /* --events, --record: a cli_jsonl writes it (non-blocking) */
} cli_file_use;

typedef struct cli_file {
  const char *option, *path; /* not owned */
  int fd;                    /* -1: no such option */
  bool created;              /* this open made it: removed by cli_file_close */
  bool truncate;             /* a regular file of ours: emptied by cli_file_start */
} cli_file;

/* Opens path (NULL: nothing to open, fd -1) without waiting and without
 * changing a byte of it. Returns 0, or -1 after the one-line error (the
 * caller closes every file and exits 125). */
int cli_file_open(cli_file *f, const char *option, const char *path, cli_file_use use);
/* The run starts: a regular output is emptied now, and kept. */
void cli_file_start(cli_file *f);
/* Hands the fd over (the file then holds -1). */
int cli_file_take(cli_file *f);
/* Closes the fd; a file this open created and the run never started is
 * removed. */
void cli_file_close(cli_file *f);

/* ---- jsonl.c: the writer of --events and --record ---------------------------- */

#define CLI_JSONL_MAX_BYTES (4u << 20) /* queued at most; more is dropped, counted */
#define CLI_JSONL_FLUSH_MS 2000u       /* what is queued at the end gets this long */

typedef struct cli_jsonl cli_jsonl;

/* A writer of fd (owned from now on, also on failure) on loop. option and
 * path name it in messages and must outlive it. Returns 0, or -1 after the
 * one-line error. */
int cli_jsonl_new(uv_loop_t *loop, const char *option, const char *path, int fd,
                  cli_jsonl **out);
/* Queues json and a newline (copied); never waits. w may be NULL. */
void cli_jsonl_write(cli_jsonl *w, const char *json);
/* Writes what is queued, within CLI_JSONL_FLUSH_MS, then closes and frees
 * w on the loop (uv_run returns once it is done). w may be NULL. */
void cli_jsonl_close(cli_jsonl *w);

/* ---- answer.c: what each stub call gets -------------------------------------- */

typedef struct cli_answer cli_answer;

/* Loads --rules, before anything runs. Returns 0, or -1 after writing the
 * one-line error (the caller exits 125). */
int cli_answer_new(const cli_options *o, cli_answer **out);
/* Where calls are recorded (NULL: nowhere); set before the first call. */
void cli_answer_start(cli_answer *a, cli_jsonl *record);
void cli_answer_free(cli_answer *a);
/* Answers a stub that connected (from on_connect). */
void cli_answer_call(cli_answer *a, sb_conn *conn);
/* cb(data) runs once, when no call is open (at once if none is). */
void cli_answer_when_idle(cli_answer *a, void (*cb)(void *), void *data);

/* ---- answer_file.c: a respond's stdout_file, streamed --------------------------- */

typedef struct cli_stream cli_stream;

/* Answers the call as rr says, its stdout read from rr->out_fd as it is
 * sent (c->stream is set). Returns 0, or a negative errno with the call
 * untouched. */
int cli_stream_start(cli_call *c, sb_conn *conn, const rule_respond *rr);
/* The call is gone (from its on_close): the stream stops, and frees itself
 * once libuv has let go of it. */
void cli_stream_detach(cli_stream *s);

/* ---- shim.c: PATH shims (the library's sb_shim_dir_make), errors printed ---- */

/* Adds a shim for each name to DIR (made if needed). Returns 0, or -1 after
 * writing the error. */
int cli_shim_make(const char *dir, char *const *names, const char *stub);
/* A fresh directory of shims for one run (in $TMPDIR, else /tmp), with
 * ticket's variables in its SB_SHIM_BRIDGE_FILE, or NULL after writing the
 * error. */
char *cli_shim_dir_new(char *const *names, const char *stub, const sb_ticket *ticket);
void cli_shim_dir_remove(const char *dir, char *const *names);
/* DIR (made if needed, one level) with a shim for each name, kept after
 * the run (--shim-dir, and `shim`), and with ticket's bridge (may be NULL:
 * `shim`) as its bridge file: dir's absolute path, malloc'd, or NULL after
 * writing the error. */
char *cli_shim_dir_keep(const char *dir, char *const *names, const char *stub,
                        const sb_ticket *ticket);
/* Removes DIR's bridge file (a kept --shim-dir, once the run is over). */
void cli_shim_bridge_remove(const char *dir);
/* `socketbridge shim DIR NAME...`; argv[0] is "shim". The exit status. */
int cli_shim(int argc, char **argv);

/* ---- env.c: -i, -u: socketbridge's environment as COMMAND gets it --------- */

/* Under -i or -u, *out is COMMAND's whole environment before the bridge's
 * variables (ours, edited, then added: an added name replaces ours, and of
 * two added for one name the last is kept), a malloc'd array of pointers into
 * environ and added; else NULL (ours is kept, added are added). 0, or -1
 * when out of memory. */
int cli_env_edit(const cli_options *o, char *const *added, char ***out);

/* ---- trace.c: -v, a human-readable line on stderr per event and call -------- */

typedef struct cli_trace cli_trace;

/* NULL without -v (every call below then does nothing), or when out of
 * memory (then without a trace). Holds a timer on loop: cli_trace_close. */
cli_trace *cli_trace_new(const cli_options *o, uv_loop_t *loop);
/* One line for ev, written at once if stderr takes it without waiting,
 * else queued and retried on the timer (bounded: past it lines are counted
 * and dropped). */
void cli_trace_event(cli_trace *t, const sb_event *ev);
/* Closes the timer (when the run closes its handles). */
void cli_trace_close(cli_trace *t);
/* After the loop: writes what is queued, waiting at most a moment, and
 * frees t. */
void cli_trace_free(cli_trace *t);

/* stubpath.c: rel (a path relative to the running executable's directory)
 * made absolute, malloc'd; NULL when out of memory or /proc is missing. */
char *cli_exe_relative(const char *rel);
/* The socketbridge-stub next to the running executable
 * (malloc'd, absolute), or NULL when there is none there, meaning the
 * library's default. */
char *cli_stub_sibling(void);
/* The stub run hands to children: the sibling, else the library's default
 * (malloc'd); NULL after writing the error (prefixed with who) when there
 * is none. */
char *cli_stub_resolve(const char *who);
/* `socketbridge stub-path`: prints what run would use; the exit status. */
int cli_stub_path(void);

/* compiledb.c: `socketbridge compile-db`; argv[0] is "compile-db". */
int cli_compile_db(int argc, char **argv);

#endif
