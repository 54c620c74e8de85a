/* SPDX-License-Identifier: MIT */
/* askpass.c - answer a command's password prompts from your own program,
 * the way an SSH_ASKPASS or GIT_ASKPASS helper does, without writing and
 * installing a helper executable.
 *
 * The command runs with SSH_ASKPASS and GIT_ASKPASS pointing at the stub
 * (and SSH_ASKPASS_REQUIRE=force, so ssh asks the helper even when it has a
 * terminal). ssh and git run "$SSH_ASKPASS 'Password for ...: '" and read
 * the answer from its stdout; here that call reaches this process, which
 * writes the answer to the stub's stdout and tells it to exit 0.
 *
 * The answer comes from $ASKPASS_PASSWORD (a demo value when unset); a
 * "Username..." prompt from git is answered with $ASKPASS_USERNAME. A real
 * program would ask its user in a dialog, or read a keyring, right in
 * on_connect (or later: the stub waits).
 *
 *   $ ./askpass          # runs a demo command that asks for a password once
 *   askpass: answering "Password for demo@example.com: " (pid 1234)
 *   the command got a password of 28 characters
 *
 *   $ ASKPASS_PASSWORD=s3cret ./askpass git clone https://example.com/private.git
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <socketbridge.h>

static const char *password = "correct horse battery staple"; /* the demo value */
static const char *username = "demo";
static int exit_code = 125;

/* One call of the askpass helper: the prompt is its first argument. */
static void on_connect(sb_server *server, sb_conn *conn) {
  const sb_call *call = sb_conn_call(conn);
  const char *prompt = call->argc > 1 ? call->argv[1] : "";
  const char *kind = sb_conn_getenv(conn, "SSH_ASKPASS_PROMPT");
  const char *answer;
  (void)server;

  /* ssh asks for a yes/no confirmation (a new host key...) this way. Saying
   * yes on someone's behalf is not a demo's call: refuse. */
  if (kind != NULL && strcmp(kind, "confirm") == 0) {
    fprintf(stderr, "askpass: refusing confirmation \"%s\"\n", prompt);
    sb_conn_exit(conn, 1);
    return;
  }
  answer = strncmp(prompt, "Username", 8) == 0 ? username : password;
  fprintf(stderr, "askpass: answering \"%s\" (pid %lld)\n", prompt, (long long)call->pid);

  /* Neither string moves while the program runs, so no copy and no write
   * callback are needed. */
  sb_conn_write(conn, 1, answer, strlen(answer), NULL, NULL);
  sb_conn_write(conn, 1, "\n", 1, NULL, NULL);
  sb_conn_exit(conn, 0);
}

static void on_exit_cb(sb_child *child, int64_t exit_status, int term_signal) {
  exit_code = term_signal != 0 ? 128 + term_signal : (int)exit_status;
  sb_server_close(sb_child_data(child), NULL);
}

int main(int argc, char **argv) {
  static char *default_cmd[] = {
      "sh", "-c",
      "pw=$(\"$SSH_ASKPASS\" 'Password for demo@example.com: ') || exit; "
      "echo \"the command got a password of ${#pw} characters\"",
      NULL};
  char **cmd = argc > 1 ? argv + 1 : default_cmd;
  const char *stub;
  char ssh_askpass[4096], git_askpass[4096];
  char *env[4] = {ssh_askpass, git_askpass, "SSH_ASKPASS_REQUIRE=force", NULL};
  uv_loop_t loop;
  sb_server *server;
  sb_child *child;
  int r;

  if (getenv("ASKPASS_PASSWORD") != NULL)
    password = getenv("ASKPASS_PASSWORD");
  if (getenv("ASKPASS_USERNAME") != NULL)
    username = getenv("ASKPASS_USERNAME");

  uv_loop_init(&loop);
  sb_server_options opts = {.on_connect = on_connect};
#ifdef SB_EXAMPLE_STUB
  opts.stub_path = SB_EXAMPLE_STUB; /* the stub built next to this example */
#endif
  r = sb_server_new(&loop, &opts, &server);
  if (r < 0) {
    fprintf(stderr, "askpass: cannot start the bridge: %s\n", strerror(-r));
    return 125;
  }

  /* The helper variables name the stub; the ticket's own variables (token,
   * address) are added by sb_spawn. */
  stub = sb_server_stub_path(server);
  snprintf(ssh_askpass, sizeof ssh_askpass, "SSH_ASKPASS=%s", stub);
  snprintf(git_askpass, sizeof git_askpass, "GIT_ASKPASS=%s", stub);

  sb_spawn_options spawn = {
      .file = cmd[0], .args = cmd, .env = env, .on_exit = on_exit_cb};
  spawn.data = server;
  r = sb_spawn(server, &spawn, &child);
  if (r < 0) {
    fprintf(stderr, "askpass: cannot run %s: %s\n", cmd[0], strerror(-r));
    exit_code = r == -ENOENT ? 127 : 126;
    sb_server_close(server, NULL);
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return exit_code;
}
