/* SPDX-License-Identifier: MIT */
/* askpass.c - answer a command's password prompts from this program, as an
 * SSH_ASKPASS helper would, without writing and installing one: ssh and git
 * run "$SSH_ASKPASS 'Password for ...: '" and read the answer from its
 * stdout; that call reaches answer() below, which is that helper.
 * SSH_ASKPASS_REQUIRE=force: ssh asks the helper even with a terminal, or
 * without X.
 *
 *   $ ASKPASS_PASSWORD=s3cret ./askpass git clone https://example.com/private.git
 *   $ ./askpass           # a demo command: prints the length of what it got
 *   7
 */
#include <socketbridge.h>
#include <stdlib.h>
#include <string.h>

static void answer(sb_server *server, sb_conn *conn) {
  const char *password = sb_server_data(server);
  sb_conn_respond(conn, &(sb_response){.out = password, .out_len = strlen(password)});
}

int main(int argc, char **argv) {
  char *demo[] = {"sh", "-c", "pw=$(\"$SSH_ASKPASS\" 'Password: ') && echo ${#pw}", NULL};
  char *password = getenv("ASKPASS_PASSWORD");
  sb_run_options o = {
      .server = {.on_connect = answer, .data = password ? password : "hunter2"},
      .spawn = {.stub_vars = (char *[]){"SSH_ASKPASS", NULL},
                .env = (char *[]){"SSH_ASKPASS_REQUIRE=force", NULL}}};
  sb_run_result res;
  int r = sb_run(argc > 1 ? argv + 1 : demo, &o, &res);
  return r < 0 ? 125 : res.signal ? 128 + res.signal : (int)res.status;
}
