/* SPDX-License-Identifier: MIT */
/* Proxy mode: the supervisor is the process that ran the stub. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "harness.h"

TestSuite(proxy, .timeout = 60);

/* ---- argv, env, cwd ---------------------------------------------------- */

typedef struct seen {
  bool done;
  sb_strv argv, env;
  char *cwd, *exe;
  int64_t pid, ppid;
  bool saw_token;
} seen;

static void record_and_exit(harness *h, sb_conn *c) {
  seen *s = h->user;
  const sb_call *call = sb_conn_call(c);
  cr_assert_eq(sb_strv_copy(&s->argv, call->argv), 0);
  cr_assert_eq(sb_strv_copy(&s->env, call->env), 0);
  cr_assert_eq(s->argv.n, call->argc);
  cr_assert_eq(s->env.n, call->envc);
  s->cwd = call->cwd ? strdup(call->cwd) : NULL;
  s->exe = call->exe ? strdup(call->exe) : NULL;
  s->pid = call->pid;
  s->ppid = call->ppid;
  s->saw_token = sb_conn_getenv(c, SB_ENV_TOKEN) != NULL;
  s->done = true;
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

static const char *env_value(const sb_strv *env, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; i < env->n; i++)
    if (strncmp(env->v[i], name, n) == 0 && env->v[i][n] == '=')
      return env->v[i] + n + 1;
  return NULL;
}

Test(proxy, passes_argv_env_and_cwd_byte_exact) {
  harness h;
  seen s = {0};
  h_init(&h, NULL);
  h.on_connect = record_and_exit;
  h.user = &s;

  /* A directory whose name is not UTF-8, a 100 KB variable, and arguments
   * that are empty, not UTF-8, or full of spaces. */
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/d\xff\xfe-\xc3\x28", h.dir);
  cr_assert_eq(mkdir(dir, 0700), 0, "mkdir: %s", strerror(errno));
  size_t big_len = 100 * 1000;
  char *big = malloc(big_len + 8);
  memcpy(big, "SB_BIG=", 7);
  for (size_t i = 0; i < big_len; i++)
    big[7 + i] = (char)('a' + i % 26);
  big[7 + big_len] = '\0';
  char *env[] = {big, "SB_WEIRD=\x80\xff=still value", "SB_EMPTY=", NULL};
  char *args[] = {H_STUB, "",  "\xff\x80 not utf-8", "two words", "--flag=\xc3\xbc",
                  "",     NULL};
  h_exit ex;
  sb_child *child =
      h_spawn(&h, &(h_spawn_opts){.args = args, .env = env, .cwd = dir}, &ex);
  pid_t pid = sb_child_pid(child);
  h_wait_exit(&h, &ex);

  cr_assert(s.done, "the stub never connected");
  cr_assert_eq(ex.status, 0, "exit status %lld", (long long)ex.status);
  cr_assert_eq(s.argv.n, 6, "argc %zu", s.argv.n);
  for (size_t i = 0; i < 6; i++)
    cr_assert_str_eq(s.argv.v[i], args[i], "argv[%zu] differs", i);
  cr_assert_str_eq(env_value(&s.env, "SB_BIG"), big + 7, "the 100 KB variable differs");
  cr_assert_str_eq(env_value(&s.env, "SB_WEIRD"), "\x80\xff=still value");
  cr_assert_str_eq(env_value(&s.env, "SB_EMPTY"), "");
  cr_assert_not_null(env_value(&s.env, SB_ENV_STUB));
  cr_assert_null(env_value(&s.env, SB_ENV_TOKEN), "the token was reported in env");
  cr_assert(!s.saw_token, "sb_conn_getenv reported the token");
  cr_assert_not_null(s.cwd);
  cr_assert_str_eq(s.cwd, dir, "cwd differs");
  cr_assert_not_null(s.exe);
  cr_assert_str_eq(s.exe, H_STUB, "exe differs");
  cr_assert_eq(s.pid, pid, "pid %lld, child %d", (long long)s.pid, (int)pid);
  cr_assert_eq(s.ppid, getpid(), "ppid %lld", (long long)s.ppid);

  sb_strv_free(&s.argv);
  sb_strv_free(&s.env);
  free(s.cwd);
  free(s.exe);
  free(big);
  h_fini(&h);
}

/* exe is the path the stub was started by, made absolute: for a shim (a
 * link named like the program it stands in for) the shim's, even when it
 * was run by a relative path. */
Test(proxy, reports_the_path_it_was_started_by_as_exe) {
  harness h;
  seen s = {0};
  h_init(&h, NULL);
  h.on_connect = record_and_exit;
  h.user = &s;
  char shim[PATH_MAX];
  snprintf(shim, sizeof shim, "%s/cc", h.dir);
  cr_assert_eq(symlink(H_STUB, shim), 0, "symlink: %s", strerror(errno));
  char *args[] = {"./././cc", "-c", "x.c", NULL};
  h_exit ex;
  h_spawn(&h, &(h_spawn_opts){.args = args, .cwd = h.dir}, &ex);
  h_wait_exit(&h, &ex);
  cr_assert(s.done, "the stub never connected");
  cr_assert_eq(ex.status, 0);
  cr_assert_not_null(s.exe);
  cr_assert_str_eq(s.exe, shim);
  cr_assert_str_eq(s.argv.v[0], "./././cc");
  sb_strv_free(&s.argv);
  sb_strv_free(&s.env);
  free(s.cwd);
  free(s.exe);
  h_fini(&h);
}

/* ---- exit codes and signals -------------------------------------------- */

static void exit_with_argv1(harness *h, sb_conn *c) {
  (void)h;
  const sb_call *call = sb_conn_call(c);
  cr_assert_eq(call->argc, 2);
  cr_assert_eq(sb_conn_exit(c, atoi(call->argv[1])), 0);
}

Test(proxy, relays_every_exit_code_from_0_to_255) {
  harness h;
  h_init(&h, NULL);
  h.on_connect = exit_with_argv1;
  static h_exit ex[256];
  for (int code = 0; code < 256; code++)
    h_stub_n(&h, code, &ex[code]);
  for (int code = 0; code < 256; code++) {
    h_wait_exit(&h, &ex[code]);
    cr_assert_eq(ex[code].signal, 0, "code %d: killed by %d", code, ex[code].signal);
    cr_assert_eq(ex[code].status, code, "want %d, got %lld", code,
                 (long long)ex[code].status);
  }
  cr_assert_eq(h.connects, 256);
  h_fini(&h);
}

static void kill_with_argv1(harness *h, sb_conn *c) {
  (void)h;
  const sb_call *call = sb_conn_call(c);
  cr_assert_eq(sb_conn_kill(c, atoi(call->argv[1])), 0);
}

Test(proxy, makes_the_stub_die_by_the_signal_it_is_told) {
  harness h;
  h_init(&h, NULL);
  h.on_connect = kill_with_argv1;
  int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGKILL, SIGALRM};
  enum { N = sizeof sigs / sizeof sigs[0] };
  h_exit ex[N];
  for (int i = 0; i < N; i++)
    h_stub_n(&h, sigs[i], &ex[i]);
  for (int i = 0; i < N; i++) {
    h_wait_exit(&h, &ex[i]);
    cr_assert_eq(ex[i].signal, sigs[i], "want signal %d, got %d (status %lld)", sigs[i],
                 ex[i].signal, (long long)ex[i].status);
  }
  h_fini(&h);
}

/* ---- stdout, stderr, stdin --------------------------------------------- */

static void write_both_and_exit(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_write_copy(c, 1, "to stdout\n", 10), 0);
  cr_assert_eq(sb_conn_write_copy(c, 2, "to stderr\n", 10), 0);
  cr_assert_eq(sb_conn_write_copy(c, 1, "more out\n", 9), 0);
  cr_assert_eq(sb_conn_exit(c, 3), 0);
  cr_assert_eq(sb_conn_write_copy(c, 1, "late", 4), -EPIPE, "a write after exit");
}

Test(proxy, writes_stdout_and_stderr_to_the_stubs_own_fds) {
  harness h;
  h_init(&h, NULL);
  h.on_connect = write_both_and_exit;
  char *args[] = {H_STUB, NULL};
  h_exit ex;
  h_spawn_to(&h, args, "out", "err", &ex);
  h_wait_exit(&h, &ex);
  cr_assert_eq(ex.status, 3);
  char *o = h_read(&h, "out", NULL), *e = h_read(&h, "err", NULL);
  cr_assert_str_eq(o, "to stdout\nmore out\n");
  cr_assert_str_eq(e, "to stderr\n");
  free(o);
  free(e);
  h_fini(&h);
}

typedef struct collect {
  char buf[256];
  size_t len;
  bool eof;
} collect;

static void collect_stdin(sb_conn *c, const char *buf, size_t len) {
  collect *col = sb_conn_data(c);
  if (len == 0) {
    col->eof = true;
    cr_assert_eq(sb_conn_exit(c, (int)col->len), 0);
    return;
  }
  cr_assert(col->len + len <= sizeof col->buf, "more stdin than sent");
  memcpy(col->buf + col->len, buf, len);
  col->len += len;
}

static void read_stdin(harness *h, sb_conn *c) {
  sb_conn_set_callbacks(c, &(sb_conn_callbacks){.on_stdin = collect_stdin}, h->user);
}

Test(proxy, reads_the_stubs_stdin_to_its_end) {
  harness h;
  collect col = {0};
  h_init(&h, NULL);
  h.on_connect = read_stdin;
  h.user = &col;
  h_exit ex;
  h_sh(&h, "printf 'line one\\n\\000binary\\377\\n' | \"$SOCKETBRIDGE_STUB\"", 0, 0, &ex);
  h_wait_exit(&h, &ex);
  static const char want[] = "line one\n\0binary\377\n";
  cr_assert(col.eof, "no EOF seen");
  cr_assert_eq(col.len, sizeof want - 1, "stdin length %zu", col.len);
  cr_assert_eq(memcmp(col.buf, want, col.len), 0, "stdin bytes differ");
  cr_assert_eq(ex.status, (int64_t)(sizeof want - 1));
  h_fini(&h);
}

/* Output queued right before exit arrives whole, for many stubs at once. */
#define BURST (3 * 1024 * 1024 + 17)
static uint8_t burst[BURST];

static void burst_then_exit(harness *h, sb_conn *c) {
  (void)h;
  cr_assert_eq(sb_conn_write(c, 1, burst, BURST, NULL, NULL), 0);
  cr_assert_eq(sb_conn_write(c, 2, burst, 1000, NULL, NULL), 0);
  cr_assert_eq(sb_conn_exit(c, 0), 0);
}

Test(proxy, output_written_just_before_exit_arrives_whole) {
  for (size_t i = 0; i < BURST; i++)
    burst[i] = (uint8_t)(i * 7 + (i >> 13));
  harness h;
  h_init(&h, NULL);
  h.on_connect = burst_then_exit;
  enum { N = 8 };
  h_exit ex[N];
  char *args[] = {H_STUB, NULL};
  for (int i = 0; i < N; i++) {
    char name[16], ename[16];
    snprintf(name, sizeof name, "out%d", i);
    snprintf(ename, sizeof ename, "err%d", i);
    h_spawn_to(&h, args, name, ename, &ex[i]);
  }
  for (int i = 0; i < N; i++) {
    char name[16], ename[16];
    snprintf(name, sizeof name, "out%d", i);
    snprintf(ename, sizeof ename, "err%d", i);
    h_wait_exit(&h, &ex[i]);
    cr_assert_eq(ex[i].status, 0);
    size_t len, elen;
    char *o = h_read(&h, name, &len), *e = h_read(&h, ename, &elen);
    cr_assert_eq(len, BURST, "stub %d: stdout has %zu of %d bytes", i, len, BURST);
    cr_assert_eq(memcmp(o, burst, BURST), 0, "stub %d: stdout bytes differ", i);
    cr_assert_eq(elen, 1000, "stub %d: stderr has %zu bytes", i, elen);
    free(o);
    free(e);
  }
  h_fini(&h);
}

/* Closing the stub's stdout lets its reader see EOF while the stub lives. */
typedef struct closer {
  harness *h;
  sb_conn *conn;
} closer;

static void close_stdout_first(harness *h, sb_conn *c) {
  closer *cl = h->user;
  cl->conn = c;
  cr_assert_eq(sb_conn_write_copy(c, 1, "last words\n", 11), 0);
  cr_assert_eq(sb_conn_close_stream(c, 1), 0);
  cr_assert_eq(sb_conn_write_copy(c, 1, "x", 1), -EPIPE, "a write after close");
}

Test(proxy, closing_stdout_gives_its_reader_eof_before_the_stub_exits) {
  harness h;
  closer cl = {&h, NULL};
  h_init(&h, NULL);
  h.on_connect = close_stdout_first;
  h.user = &cl;
  char script[1024];
  snprintf(script, sizeof script,
           "\"$SOCKETBRIDGE_STUB\" | { cat > '%s'; echo eof > '%s'; }; exit 0",
           h_path(&h, "got"), h_path(&h, "eof"));
  h_exit ex;
  h_sh(&h, script, 0, 0, &ex);
  h_wait_file(&h, "eof"); /* written only once cat saw EOF */
  cr_assert_not_null(cl.conn);
  cr_assert(!ex.done, "the child ended before it was told to");
  cr_assert_eq(sb_conn_exit(cl.conn, 0), 0);
  h_wait_exit(&h, &ex);
  char *got = h_read(&h, "got", NULL);
  cr_assert_str_eq(got, "last words\n");
  free(got);
  h_fini(&h);
}
