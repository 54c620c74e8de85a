/* SPDX-License-Identifier: MIT */
/* harness.h - what every integration test needs: a loop with a server on it,
 * children spawned through the library with their exit captured, a private
 * temporary directory, and waiting on an event with a deadline (never a
 * sleep). Each Criterion test runs in its own process, so a harness is
 * per-test state. */
#ifndef SB_TEST_HARNESS_H
#define SB_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include "socketbridge.h"

/* Deadlines are generous: they catch hangs, they do not measure speed. They
 * scale with SB_TEST_TIMEOUT_SCALE (valgrind, slow machines). */
#define H_DEADLINE 20.0

typedef struct harness harness;

/* A child's end, as the exit callback saw it. */
typedef struct h_exit {
  bool done;
  int64_t status;
  int signal;
} h_exit;

typedef void (*h_connect_fn)(harness *h, sb_conn *conn);

struct harness {
  uv_loop_t loop;
  sb_server *server;
  bool closed;
  char dir[256]; /* private temp dir, removed by h_fini */
  int devnull;   /* a child's stdin unless the test gives one */
  h_connect_fn on_connect;
  unsigned connects;
  unsigned rejects[SB_REASON_PROTOCOL + 1];
  unsigned reject_total;
  void *user;
};

/* Starts a server on a fresh loop. opts may be NULL (defaults: TCP); its
 * on_connect/on_reject/stub_path are filled in by the harness. */
void h_init(harness *h, const sb_server_options *opts);
/* Closes the server, runs the loop until everything is freed, asserts the
 * loop closes cleanly, and removes the temp dir. */
void h_fini(harness *h);

/* Runs the loop until *flag is true; fails the test at the deadline. */
void h_wait(harness *h, const bool *flag, const char *what);
/* Runs the loop until *count >= want; fails the test at the deadline. */
void h_wait_count(harness *h, const unsigned *count, unsigned want, const char *what);

/* How to spawn a child: args (NULL-terminated; args[0] is the file), extra
 * env (may be NULL), cwd (NULL: ours), stdin/stdout/stderr fds (0 in a zero
 * value means inherit; set `in`/`out`/`err` to an fd to give one). */
typedef struct h_spawn_opts {
  char *const *args;
  char *const *env;
  const char *cwd;
  int in, out, err;
} h_spawn_opts;

/* Spawns through the library; fails the test if spawning fails. */
sb_child *h_spawn(harness *h, const h_spawn_opts *o, h_exit *ex);
/* Spawns args with stdout and stderr into files of those names in the temp
 * dir (NULL: inherit). */
sb_child *h_spawn_to(harness *h, char *const *args, const char *out, const char *err,
                     h_exit *ex);
/* Spawns the stub with one decimal argument (the tests' usual "what to do"). */
sb_child *h_stub_n(harness *h, long n, h_exit *ex);
/* Runs `sh -c script` with stdout to out, stderr to err (0: inherit). */
sb_child *h_sh(harness *h, const char *script, int out, int err, h_exit *ex);
/* Waits for a child's end. */
void h_wait_exit(harness *h, h_exit *ex);

/* SB_TEST_TIMEOUT_SCALE (default 1): every deadline of the tests is
 * multiplied by it, for loaded hosts. */
double h_scale(void);
/* CLOCK_MONOTONIC in seconds. */
double h_now(void);

/* Path of name inside the test's temp dir: one of 32 static buffers, so a
 * test may hold that many at once. */
const char *h_path(harness *h, const char *name);
/* Creates (truncates) a file in the temp dir, open for writing. */
int h_create(harness *h, const char *name);
/* Reads a whole file from the temp dir; NUL-terminated; *len may be NULL.
 * The caller frees. Fails the test if it cannot. */
char *h_read(harness *h, const char *name, size_t *len);
/* For a state that has no event of its own: runs the loop, checking cond on
 * a 5 ms timer, until it holds or the deadline passes; says which. */
bool h_poll_for(harness *h, bool (*cond)(harness *, const void *), const void *arg);
/* The same, failing the test at the deadline. */
void h_poll_until(harness *h, bool (*cond)(harness *, const void *), const void *arg,
                  const char *what);
/* Waits until a file in the temp dir exists and is not empty. */
void h_wait_file(harness *h, const char *name);
/* Connections the server has open now; a closing one counts until its
 * handles are closed. */
unsigned h_open_conns(harness *h);
/* Waits until exactly `want` connections are open. */
void h_wait_open(harness *h, unsigned want);

/* How many processes on the machine have marker in their command line (a
 * test gives its grandchildren a unique marker, to find any survivor). */
unsigned h_count_marked(const char *marker);
/* Sends SIGKILL to every such process (cleanup; never fails the test). */
void h_kill_marked(const char *marker);

/* A source of test-stream bytes for a stub's stdout: keeps at most
 * H_SOURCE_SLOTS chunks queued (the caller's side of backpressure) and sends
 * exit 0 after the last byte. */
#define H_SOURCE_CHUNK (256 * 1024)
#define H_SOURCE_SLOTS 4

typedef struct h_source {
  uint64_t gen_state;
  uint64_t left;
  unsigned in_flight, next;
  size_t max_queued;
  sb_conn *conn;
  uint8_t buf[H_SOURCE_SLOTS][H_SOURCE_CHUNK];
} h_source;

/* Allocates a source of `bytes` bytes of the stream of seed; free() it. */
h_source *h_source_new(uint64_t bytes, uint64_t seed);
void h_source_start(h_source *s, sb_conn *conn);
/* The expected "BYTES HASH\n" line of helper_sum for that stream. */
void h_source_expect(uint64_t bytes, uint64_t seed, char out[64]);

/* Starts args outside the library (a plain posix_spawnp: args[0] is looked
 * up in PATH when it has no slash), with stdin from in_path (NULL:
 * /dev/null), stdout and stderr to "<tag>.out" and "<tag>.err" in the temp
 * dir, envp as the whole environment, and every signal at its default.
 * Fails the test if it cannot start. */
pid_t h_proc_start(harness *h, char *const *args, const char *in_path, const char *tag,
                   char *const *envp);
/* Waits until pid can be reaped (it is not reaped) or seconds pass; true if
 * it can. A pidfd is the event to wait on; where there is none (valgrind
 * 3.19 does not know pidfd_open) a bounded spin on waitid(WNOWAIT) stands
 * in. */
bool h_wait_reapable(pid_t pid, double seconds);

/* The built stub and helpers. */
#define H_STUB SB_TEST_STUB

#endif
