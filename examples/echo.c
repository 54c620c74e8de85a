/* SPDX-License-Identifier: MIT */
/* echo.c - the smallest complete supervisor.
 *
 * It runs a command (by default a shell that runs the stub once:
 * sh -c '"$SOCKETBRIDGE_STUB" hello world'). Every time something in that
 * command runs the stub, the stub connects back here, and this program
 * answers as if it were that process: it writes the arguments the stub got
 * to the stub's stdout, one per line, and tells the stub to exit 0. It exits
 * with the command's own exit status.
 *
 *   $ ./echo
 *   argv[0] = /usr/local/bin/socketbridge-stub
 *   argv[1] = hello
 *   argv[2] = world
 *
 *   $ ./echo sh -c 'x=$("$SOCKETBRIDGE_STUB" a "b c"); echo "the stub printed: $x"'
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <socketbridge.h>

static int exit_code = 125; /* as the CLI: the supervisor itself failed */

/* Writes s to f, showing bytes a terminal would not (argv is bytes). */
static void put_escaped(FILE *f, const char *s) {
  for (; *s != '\0'; s++) {
    unsigned char c = (unsigned char)*s;
    if (c < 0x20 || c == 0x7f)
      fprintf(f, "\\x%02x", c);
    else
      fputc(c, f);
  }
}

static void free_when_written(sb_conn *conn, int status, void *text) {
  (void)conn;
  (void)status;
  free(text);
}

/* A stub connected: this runs once per call of the stub. */
static void on_connect(sb_server *server, sb_conn *conn) {
  const sb_call *call = sb_conn_call(conn);
  char *text = NULL;
  size_t len = 0;
  FILE *f;
  (void)server;

  f = open_memstream(&text, &len);
  if (f == NULL) {
    sb_conn_exit(conn, 1);
    return;
  }
  for (size_t i = 0; i < call->argc; i++) {
    fprintf(f, "argv[%zu] = ", i);
    put_escaped(f, call->argv[i]);
    fputc('\n', f);
  }
  fclose(f);

  /* The library does not copy text: it stays ours until the callback. */
  if (sb_conn_write(conn, 1, text, len, free_when_written, text) != 0)
    free(text);
  /* Sent after the text, and the stub exits only once it has written it. */
  sb_conn_exit(conn, 0);
}

static void on_exit_cb(sb_child *child, int64_t exit_status, int term_signal) {
  sb_server *server = sb_child_data(child);
  exit_code = term_signal != 0 ? 128 + term_signal : (int)exit_status;
  /* Done: closing the server lets uv_run return. */
  sb_server_close(server, NULL);
}

int main(int argc, char **argv) {
  static char *default_cmd[] = {"sh", "-c", "\"$SOCKETBRIDGE_STUB\" hello world", NULL};
  char **cmd = argc > 1 ? argv + 1 : default_cmd;
  uv_loop_t loop;
  sb_server *server;
  sb_child *child;
  int r;

  uv_loop_init(&loop);
  r = sb_server_new(&loop, &(sb_server_options){.on_connect = on_connect}, &server);
  if (r < 0) {
    fprintf(stderr, "echo: cannot start the bridge: %s\n", strerror(-r));
    return 125;
  }

  sb_spawn_options spawn = {.file = cmd[0], .args = cmd, .on_exit = on_exit_cb};
  spawn.data = server;
  r = sb_spawn(server, &spawn, &child);
  if (r < 0) {
    fprintf(stderr, "echo: cannot run %s: %s\n", cmd[0], strerror(-r));
    exit_code = r == -ENOENT ? 127 : 126;
    sb_server_close(server, NULL);
  }

  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return exit_code;
}
