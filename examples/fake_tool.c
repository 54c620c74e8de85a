/* SPDX-License-Identifier: MIT */
/* fake_tool.c - fake a command-line tool in a test: the program under test
 * finds `git` on its PATH, and every time it runs it, this process decides
 * what that git prints and how it exits, and records how it was called.
 *
 * The fake is a directory holding one symlink, git -> socketbridge-stub,
 * put first on the child's PATH. Any process in the child's tree that runs
 * git reaches on_connect below, with its argv, env and cwd.
 *
 * Here the "program under test" is a small shell script; in a real test it
 * is whatever you test, and the answers come from the test case.
 *
 *   $ ./fake_tool
 *   [fake_tool] call 1: git --version   (in /home/me)
 *   git version 2.99.0 (fake)
 *   [fake_tool] call 2: git commit -m 'first commit'   (in /home/me)
 *   fatal: not a git repository (this git is a fake)
 *   script: git commit failed with exit code 128
 *   [fake_tool] the script called git 2 times and exited 0
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <socketbridge.h>

/* The program under test: it calls git twice and reports what it saw. */
static const char script[] = "git --version || exit\n"
                             "git commit -m 'first commit' || echo \"script: git commit "
                             "failed with exit code $?\"\n";

typedef struct fake {
  unsigned calls;
  bool done;
  int exit_code;
} fake;

/* Prints an argument so that a shell would read it back the same. */
static void print_quoted(const char *s) {
  if (*s != '\0' && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789_-./=:,+@%") == strlen(s)) {
    fputs(s, stdout);
    return;
  }
  putchar('\'');
  for (; *s != '\0'; s++) {
    if (*s == '\'')
      fputs("'\\''", stdout);
    else
      putchar(*s);
  }
  putchar('\'');
}

/* Answers the call whole: its stdout, its stderr, its exit code. The
 * library copies the bytes and sends the exit after them. */
static void answer(sb_conn *conn, const char *out, const char *err, int code) {
  sb_conn_respond(conn, &(sb_response){.out = out,
                                       .out_len = strlen(out),
                                       .err = err,
                                       .err_len = strlen(err),
                                       .code = code});
}

/* One run of the fake git. */
static void on_connect(sb_server *server, sb_conn *conn) {
  fake *f = sb_server_data(server);
  const sb_call *call = sb_conn_call(conn);
  const char *sub = call->argc > 1 ? call->argv[1] : "";

  f->calls++;
  printf("[fake_tool] call %u:", f->calls);
  for (size_t i = 0; i < call->argc; i++) {
    putchar(' ');
    print_quoted(call->argv[i]);
  }
  printf("   (in %s)\n", call->cwd != NULL ? call->cwd : "?");
  /* Our stdout is the script's stdout too: print before answering. */
  fflush(stdout);

  if (strcmp(sub, "--version") == 0)
    answer(conn, "git version 2.99.0 (fake)\n", "", 0);
  else if (strcmp(sub, "commit") == 0)
    answer(conn, "", "fatal: not a git repository (this git is a fake)\n", 128);
  else
    answer(conn, "", "git: this fake knows only --version and commit\n", 1);
}

static void on_exit_cb(sb_child *child, int64_t exit_status, int term_signal) {
  sb_server *server = sb_child_data(child);
  fake *f = sb_server_data(server);
  f->done = true;
  f->exit_code = term_signal != 0 ? 128 + term_signal : (int)exit_status;
  sb_server_close(server, NULL);
}

int main(void) {
  char dir[] = "/tmp/fake_tool-XXXXXX";
  char link[sizeof dir + 8];
  char path_var[8192];
  const char *path = getenv("PATH");
  fake f = {0};
  uv_loop_t loop;
  sb_server *server;
  sb_child *child;
  int r, status = 1;

  uv_loop_init(&loop);
  sb_server_options opts = {.on_connect = on_connect, .data = &f};
#ifdef SB_EXAMPLE_STUB
  opts.stub_path = SB_EXAMPLE_STUB; /* the stub built next to this example */
#endif
  r = sb_server_new(&loop, &opts, &server);
  if (r < 0) {
    fprintf(stderr, "fake_tool: cannot start the bridge: %s\n", strerror(-r));
    return 1;
  }

  /* The fake: a directory with git -> stub, first on the child's PATH. */
  if (mkdtemp(dir) == NULL) {
    fprintf(stderr, "fake_tool: mkdtemp: %s\n", strerror(errno));
    sb_server_close(server, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 1;
  }
  snprintf(link, sizeof link, "%s/git", dir);
  snprintf(path_var, sizeof path_var, "PATH=%s:%s", dir,
           path != NULL ? path : "/usr/bin:/bin");
  if (symlink(sb_server_stub_path(server), link) != 0) {
    fprintf(stderr, "fake_tool: cannot make the fake git: %s\n", strerror(errno));
    sb_server_close(server, NULL);
  } else {
    char *args[] = {"sh", "-c", (char *)script, NULL};
    char *env[] = {path_var, NULL};
    sb_spawn_options spawn = {
        .file = "sh", .args = args, .env = env, .on_exit = on_exit_cb};
    spawn.data = server;
    r = sb_spawn(server, &spawn, &child);
    if (r < 0) {
      fprintf(stderr, "fake_tool: cannot run sh: %s\n", strerror(-r));
      sb_server_close(server, NULL);
    }
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  unlink(link);
  rmdir(dir);

  if (f.done) {
    printf("[fake_tool] the script called git %u times and exited %d\n", f.calls,
           f.exit_code);
    /* What a test would assert. */
    status = (f.calls == 2 && f.exit_code == 0) ? 0 : 1;
  }
  return status;
}
